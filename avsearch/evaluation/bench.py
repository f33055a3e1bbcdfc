"""`avsearch eval BENCH`: index a benchmark's test media with the chosen settings (the ablation
knobs are the indexer's own: clip length, frame rate, frame skipping, resize path, view), then
score it with runner.py and record everything that made the numbers."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Optional

from avsearch.errors import UsageError
from avsearch.evaluation.benchmarks import READERS, VIEW_MEANING
from avsearch.evaluation.judgements import Problem
from avsearch.evaluation.report import build_report, provenance
from avsearch.evaluation.runner import DEPTH, evaluate
from avsearch.store import IndexSettings


@dataclass(frozen=True)
class Knobs:
    """The indexer settings an evaluation may change (None: the benchmark's or avsearch's default)."""

    clip_s: Optional[float] = None
    fps: Optional[float] = None
    frames: Optional[str] = None
    resize: Optional[str] = None
    view: Optional[str] = None


def run_benchmark(name: str, data_dir: str | Path, *, model: Optional[str] = None, index_dir: Optional[str | Path] = None,
                  knobs: Knobs = Knobs(), depth: int = DEPTH, ann: bool = True, seed: int = 0,
                  device: Optional[str] = None, progress=None) -> dict:
    """The report (see report.py) of benchmark `name` on the media under `data_dir`. The index is
    built in a temporary folder, or in `index_dir` (kept, and reused by a later run with the
    same settings: only new files are embedded)."""
    from avsearch import Index

    if name not in READERS:
        raise UsageError(f"unknown benchmark {name!r}: choose one of {', '.join(READERS)}")
    data_dir = Path(data_dir).expanduser()
    if not data_dir.is_dir():
        raise UsageError(f"--data {data_dir} is not a folder; point it at the data set's metadata and media")
    if knobs.view is not None and name not in VIEW_MEANING:
        raise UsageError(f"--view means nothing for {name} (audio queries, audio gallery): drop it; it changes "
                         + "; ".join(f"{b}: {what}" for b, what in VIEW_MEANING.items()))
    started = time.perf_counter()
    data = READERS[name](data_dir, view=knobs.view)
    if not data.media:
        raise UsageError(f"no {name} test media found under {data_dir} ({len(data.problems)} items missing, e.g. "
                         f"{data.problems[0].error if data.problems else '-'})")
    defaults = IndexSettings()
    clip_s = knobs.clip_s or data.clip_s
    settings = IndexSettings(clip_s=clip_s, min_last_s=min(defaults.min_last_s, clip_s), fps=knobs.fps or defaults.fps,
                             frames=knobs.frames or defaults.frames, resize=knobs.resize or defaults.resize,
                             views=data.views)
    with tempfile.TemporaryDirectory(prefix=f"avsearch-eval-{name}-") as tmp:
        index = Index.open(index_dir or Path(tmp) / "index", model=model, device=device, create=True,
                           settings=settings)
        try:
            _check_settings(index, settings)
            report = index.add(data.media, prune=False, progress=progress)
            indexed = time.perf_counter()
            problems = data.problems + [Problem(f["path"], f"not indexed: {f['error']}") for f in index.failures()]
            # Only this data set's clips: a kept --index may hold another set's, which would be distractors.
            results, query_problems = evaluate(index, data.directions, depth=depth, ann=ann, seed=seed,
                                               paths=set(data.media))
            record = provenance(index, {"benchmark": name, "data": str(data_dir), "protocol": data.protocol,
                                        "items_in_split": data.items, "items_found": len(data.media),
                                        "depth": depth, "ann": ann, "bootstrap": {"resamples": 1000, "seed": seed},
                                        "knobs": {k.name: getattr(knobs, k.name) for k in fields(knobs)}})
            seconds = {"index": round(indexed - started, 3), "evaluate": round(time.perf_counter() - indexed, 3),
                       "files_embedded": len(report.indexed), "clips_embedded": report.clips_added}
            return build_report(name, {"directions": results, "problems": problems + query_problems,
                                       "queries": sum(d.queries for d in results)}, record, seconds)
        finally:
            index.close()


def _check_settings(index, wanted: IndexSettings) -> None:
    """A kept --index made with other settings would silently measure those: refuse."""
    have = index.settings
    differ = [f.name for f in fields(IndexSettings) if getattr(have, f.name) != getattr(wanted, f.name)]
    if index.exists and differ:
        raise UsageError(f"the index at {index.path} was built with other settings ({', '.join(differ)}); "
                         "give another --index (or none: a temporary one) to evaluate these")
