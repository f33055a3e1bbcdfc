"""How long `avsearch eval` takes per 1,000 benchmark items, beside plain indexing of the same
media (the baseline, measured in the same run).

Generates an AudioCaps-format data set (test.csv, five captions per item, `<id>_30.wav` of
`--seconds` each) or a VGGSound-format one (vggsound.csv, `<id>_000030.mp4` with sound), indexes
it once with `Index.add` (baseline), then runs the benchmark end to end (`run_benchmark`: index
again into a fresh index + score exact and IVF-PQ). The data is synthetic: only the time means
anything, never the quality figures (with random weights they are chance).

    python benchmarks/eval_speed.py --model tiny --items 40                  # anywhere (CPU)
    python benchmarks/eval_speed.py --model random-full-size --items 1000    # a CUDA GPU: WAVE-7B size,
                                                                            # random weights (nothing downloaded)
    python benchmarks/eval_speed.py --model /models/WAVE-7B --kind vggsound

Writes benchmarks/results/eval_speed-<model>-<kind>.json and .md.
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional, Sequence

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
sys.path.insert(0, str(ROOT.parent))  # runs from a source tree without installing (the GPU machine)
sys.path.insert(0, str(ROOT))


def make_data(root: Path, kind: str, items: int, seconds: float) -> Path:
    from avsearch.media.synth import write_audio, write_video

    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(items):
        key = f"item{i:07d}"
        tone = 150.0 + 7.0 * (i % 300)
        if kind == "audiocaps":
            write_audio(root / "audio" / f"{key}_30.wav", duration_s=seconds, tone_hz=tone, noise=True, seed=i)
            rows += [[str(5 * i + c), key, "30", f"synthetic sound {i} caption {c}"] for c in range(5)]
        else:
            write_video(root / "video" / f"{key}_000030.mp4", duration_s=seconds, width=320, height=240, fps=10,
                        tone_hz=tone, seed=i)
            rows.append([key, "30", "synthetic", "test"])
    name, header = (("test.csv", ["audiocap_id", "youtube_id", "start_time", "caption"]) if kind == "audiocaps"
                    else ("vggsound.csv", None))
    with open(root / name, "w", newline="") as f:
        w = csv.writer(f)
        if header:
            w.writerow(header)
        w.writerows(rows)
    return root


def register_random_full_size(device: Optional[str]) -> None:
    """`--model random-full-size`: the WAVE-7B-sized random embedder of wave_throughput.py, built
    once and shared by the baseline and the evaluation."""
    from avsearch.models.registry import register

    @functools.lru_cache(maxsize=1)
    def build():
        from wave_throughput import build_random_embedder

        return build_random_embedder(device or "cuda", None, "sequential")

    register("random-full-size", lambda device=None: build())


def run(model: str, kind: str, items: int, seconds: float, device: Optional[str], ann: bool) -> dict:
    from avsearch import Index
    from avsearch.evaluation.bench import run_benchmark
    from avsearch.models import load_embedder
    from avsearch.store import IndexSettings

    with tempfile.TemporaryDirectory(prefix="avsearch-eval-speed-") as tmp:
        tmp = Path(tmp)
        t = time.perf_counter()
        data = make_data(tmp / "data", kind, items, seconds)
        generate_s = time.perf_counter() - t
        load_embedder(model, device=device)  # load once outside the timings (cached for the full-size one)

        media = sorted(str(p) for p in data.rglob("*") if p.suffix in (".wav", ".mp4"))
        settings = IndexSettings(clip_s=10.0, views=("audio",))
        t = time.perf_counter()
        with Index.open(tmp / "baseline", model=model, device=device, create=True, settings=settings) as index:
            index.add(media)
        baseline_s = time.perf_counter() - t

        t = time.perf_counter()
        report = run_benchmark(kind, data, model=model, device=device, ann=ann)
        eval_s = time.perf_counter() - t
    per_k = 1000.0 / items
    return {
        "model": model, "model_id": report["model_id"], "kind": kind, "items": items, "seconds_per_item": seconds,
        "queries": report["queries"], "ann": ann, "generate_s": round(generate_s, 2),
        "baseline_index_s": round(baseline_s, 2), "eval_total_s": round(eval_s, 2),
        "eval_index_s": report["seconds"]["index"], "eval_score_s": report["seconds"]["evaluate"],
        "per_1000_items": {"baseline_index_s": round(baseline_s * per_k, 1), "eval_total_s": round(eval_s * per_k, 1),
                           "eval_score_s": round(report["seconds"]["evaluate"] * per_k, 1)},
        "device": report["machine"]["device"], "platform": platform.platform(), "python": platform.python_version(),
        "avsearch_version": report["avsearch_version"], "created_at": report["created_at"],
        "note": "synthetic media; with random or tiny weights only the times mean anything",
    }


def markdown(r: dict) -> str:
    p = r["per_1000_items"]
    return "\n".join([
        f"# avsearch eval speed: {r['kind']}, model {r['model']} ({r['model_id']})", "",
        f"{r['items']} synthetic items of {r['seconds_per_item']:g} s ({r['queries']} queries), {r['device']}, "
        f"{r['platform']}, avsearch {r['avsearch_version']}, {r['created_at']}", "",
        "| | this run (s) | per 1,000 items (s) |", "|---|---|---|",
        f"| baseline: `Index.add` of the same media | {r['baseline_index_s']} | {p['baseline_index_s']} |",
        f"| `avsearch eval {r['kind']}` end to end | {r['eval_total_s']} | {p['eval_total_s']} |",
        f"| of which scoring (queries embedded, exact + IVF-PQ) | {r['eval_score_s']} | {p['eval_score_s']} |", "",
        r["note"] + ".", ""])


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="tiny", help="tiny, random-full-size (CUDA), or a checkpoint path / hub id")
    ap.add_argument("--kind", choices=("audiocaps", "vggsound"), default="audiocaps")
    ap.add_argument("--items", type=int, default=40)
    ap.add_argument("--seconds", type=float, default=10.0, help="length of each generated item")
    ap.add_argument("--device", default=None)
    ap.add_argument("--no-ann", dest="ann", action="store_false")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    if args.model == "random-full-size":
        register_random_full_size(args.device)
    result = run(args.model, args.kind, args.items, args.seconds, args.device, args.ann)
    stem = f"eval_speed-{Path(args.model).name}-{args.kind}"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / f"{stem}.md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
