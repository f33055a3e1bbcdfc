"""What crash isolation costs: media read in the sandbox child process vs in-process.

The indexer probes every file in a child process (avsearch.media.sandbox) and decodes there only
the files whose probe looks unusual. This times, on generated files, in one run:

  probe   per file, in-process `probe` (the baseline) vs `Sandbox.probe` (child already started),
          and the child's start-up (paid once per indexing process);
  decode  media seconds per second for 10 s clips (2 fps frames + 16 kHz audio), in-process
          `iter_clips` (the baseline) vs `Sandbox.clips` (frames pickled through a pipe);
  index   one `Index.add` of the fuzz corpus (tests/fuzz_corpus.py: 113 good and damaged files)
          with the tiny model, isolate="none" (baseline), "suspect" (the default) and "all".

    python benchmarks/isolation.py --out benchmarks/results
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from avsearch.media import DecodeOptions, iter_clips, plan_clips, probe  # noqa: E402
from avsearch.media.sandbox import Sandbox  # noqa: E402
from avsearch.media.synth import write_audio, write_video  # noqa: E402


def make_files(d: Path) -> list[Path]:
    videos = [write_video(d / f"v{i}.mp4", duration_s=20.0, width=640, height=360, fps=25, seed=i) for i in range(4)]
    audios = [write_audio(d / f"a{i}.wav", duration_s=20.0, seed=10 + i) for i in range(4)]
    return videos + audios


def time_probe(files: list[Path], sandbox: Sandbox, passes: int = 5) -> dict:
    started = time.perf_counter()
    sandbox.probe(files[0])  # starts the child
    startup = time.perf_counter() - started
    inproc, child = [], []
    for _ in range(passes):
        for f in files:
            t = time.perf_counter()
            probe(f)
            inproc.append(time.perf_counter() - t)
            t = time.perf_counter()
            sandbox.probe(f)
            child.append(time.perf_counter() - t)
    return {"child_startup_s": startup, "in_process_ms": 1e3 * statistics.median(inproc),
            "sandbox_ms": 1e3 * statistics.median(child), "files": len(files), "passes": passes}


def time_decode(videos: list[Path], sandbox: Sandbox, passes: int = 3) -> dict:
    options = DecodeOptions()
    media = {v: probe(v) for v in videos}
    ranges = {v: plan_clips(media[v].duration_s, clip_s=10.0, min_last_s=1.0) for v in videos}
    total = sum(m.duration_s for m in media.values())
    best = {"in_process": float("inf"), "sandbox": float("inf")}
    list(sandbox.clips(videos[0], ranges[videos[0]][:1], options, media=media[videos[0]]))  # warm the child
    for _ in range(passes):  # alternating, best of `passes`
        t = time.perf_counter()
        for v in videos:
            for _clip in iter_clips(v, ranges[v], options, media=media[v]):
                pass
        best["in_process"] = min(best["in_process"], time.perf_counter() - t)
        t = time.perf_counter()
        for v in videos:
            for _clip in sandbox.clips(v, ranges[v], options, media=media[v]):
                pass
        best["sandbox"] = min(best["sandbox"], time.perf_counter() - t)
    return {"media_s": total, **{f"{k}_media_s_per_s": total / v for k, v in best.items()}}


def time_index(work: Path) -> dict:
    from avsearch import Index
    from fuzz_corpus import make_fuzz_corpus

    kinds = make_fuzz_corpus(work / "fuzz")
    out = {"files": len(kinds)}
    for isolate in ("none", "suspect", "all"):
        index = Index.open(work / f"idx-{isolate}", model="tiny", create=True)
        index.embedder()
        t = time.perf_counter()
        report = index.add([work / "fuzz"], isolate=isolate)
        out[isolate] = {"seconds": time.perf_counter() - t, "indexed": len(report.indexed) - len(report.partly),
                        "partly": len(report.partly), "failed": len(report.failed)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="avsearch-isolation-"))
    sandbox = Sandbox()
    try:
        files = make_files(work / "media")
        result = {
            "machine": f"{platform.node()} {platform.processor() or platform.machine()}, python {platform.python_version()}",
            "probe": time_probe(files, sandbox),
            "decode": time_decode([f for f in files if f.suffix == ".mp4"], sandbox),
            "index_fuzz_corpus": time_index(work),
        }
    finally:
        sandbox.close()
        shutil.rmtree(work, ignore_errors=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "isolation.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
