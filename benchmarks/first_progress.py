"""How long `Index.add` leaves its caller without news, with phases against before them (issue 18).

Before phases, the first progress event was the one the embedding pipeline sends when it starts,
and the others came one per finished file; the events still mark both moments (the first
"embedding" event, and each where files_done grows), so one run measures both: the baseline
(seconds until the first of those, the longest gap between them) and the phases (seconds until
the first event, the longest gap between any two events).

A generated folder (`--files` audio+video files of `--seconds` each, 64x48, H.264) is indexed into
a new index with the tiny model (its checkpoint made beforehand: generating it is a once-only
step), then a second folder of the same size is added to that now existing index. Best of
`--repeats` per number (a shared machine's noise only ever adds time).

    python benchmarks/first_progress.py --files 12 --seconds 10 --out benchmarks/results
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path


def make_folder(directory: Path, files: int, seconds: float, seed: int) -> Path:
    from avsearch.media.synth import write_video

    directory.mkdir(parents=True)
    for i in range(files):
        write_video(directory / f"v{i:03d}.mp4", duration_s=seconds, audio=True, tone_hz=200.0 + 40 * i, seed=seed + i)
    return directory


def timed_add(index, folder: Path) -> dict:
    stamps: list[tuple[float, str, int]] = []
    start = time.monotonic()
    index.add([folder], progress=lambda p: stamps.append((time.monotonic() - start, p.phase, p.files_done)))
    total = time.monotonic() - start
    times = [t for t, _, _ in stamps]
    # What a caller heard before phases: the pipeline's first event, then one per finished file.
    embedding = [(t, files) for t, phase, files in stamps if phase == "embedding"]
    old = [embedding[0][0]] + [t for (t, files), (_, before) in zip(embedding[1:], embedding) if files > before]

    def longest_silence(ts: list[float]) -> float:
        edges = [0.0, *ts, total]
        return max(b - a for a, b in zip(edges, edges[1:]))

    return {
        "seconds": total,
        "phases_first_event_s": times[0],
        "phases_longest_silence_s": longest_silence(times),
        "before_first_event_s": old[0],
        "before_longest_silence_s": longest_silence(old),
        "events": len(stamps),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=12)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    from avsearch import Index
    from avsearch.models import load_embedder

    load_embedder("tiny")  # the checkpoint exists before timing starts (and torch is imported)
    work = Path(tempfile.mkdtemp(prefix="first-progress-"))
    try:
        first = make_folder(work / "first", args.files, args.seconds, seed=1)
        second = make_folder(work / "second", args.files, args.seconds, seed=100)
        runs: dict[str, list[dict]] = {"new index": [], "existing index": []}
        for r in range(args.repeats):
            idx_dir = work / f"index-{r}"
            with Index.open(idx_dir, model="tiny", create=True) as index:
                runs["new index"].append(timed_add(index, first))
            with Index.open(idx_dir) as index:  # a fresh process would load the model again too
                runs["existing index"].append(timed_add(index, second))
            shutil.rmtree(idx_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    best = {case: {key: min(run[key] for run in rs) for key in rs[0]} for case, rs in runs.items()}
    result = {"files": args.files, "seconds_each": args.seconds, "repeats": args.repeats,
              "machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "best": best, "runs": runs}
    print(json.dumps(best, indent=2))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "first_progress.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
