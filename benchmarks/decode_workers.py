"""How decoding scales with decode workers on a many-core machine (the indexer's default is 2).

WAVE-7B embeds ~5 audio+video clips of 10 s per second on one H100 (`results/wave_throughput.md`),
so a GPU indexer needs ~50 seconds of media decoded per wall-clock second to keep the GPU busy.
This times `decode_files` (the indexer's decoding: 2 fps frames scaled to WAVE's pixel budget,
16 kHz mono audio, default options, idle workers split long files) on a generated folder -- eight
30 s 1080p files and four 60 s 480p files, H.264 + AAC as in `ingest.py` -- with 2 workers (the
default: the baseline, in the same run) and more. Runs alternate; the best of `--repeats` is kept.
Process CPU time per run says how many cores each count keeps busy.

    python benchmarks/decode_workers.py --workers 2,4,8,16 --out DIR

`--processes 4x2,8x2` also times P decode processes of T threads each (files dealt round-robin,
every clip's arrays sent back to the parent through a multiprocessing queue): whether the threads'
plateau is the GIL (results: `decode_workers-processes.md`).

Needs PyAV and torch only (no ffmpeg CLI, no LanceDB), so it runs on the lent GPU machines.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import av  # noqa: E402
from ingest import decode_folder, write_h264  # noqa: E402

from avsearch.media.probe import probe  # noqa: E402

# (name, width, height, seconds, count)
FOLDER = (("1080p", 1920, 1080, 30.0, 8), ("480p", 854, 480, 60.0, 4))
NEEDED_MEDIA_S_PER_S = 50.0  # ~5 WAVE-7B av clips/s of 10 s on an H100


def make_folder(work: Path, scale: float = 1.0) -> list[Path]:
    jobs = [(work / f"{name}-{i}.mp4", dict(width=w, height=h, seconds=s * scale, seed=i))
            for name, w, h, s, count in FOLDER for i in range(count)]
    missing = [(p, kw) for p, kw in jobs if not p.exists()]
    with ProcessPoolExecutor(max(1, min(len(missing), os.cpu_count() or 1))) as pool:
        for future in [pool.submit(write_h264, p, **kw) for p, kw in missing]:
            future.result()
    # Interleaved as a crawl would meet them, not all long files last.
    return sorted((p for p, _ in jobs), key=lambda p: (p.stem.split("-")[1], p.stem))


def timed(paths: list[Path], workers: int) -> dict:
    cpu0, t0 = os.times(), time.perf_counter()
    facts = decode_folder(paths, min_split_s=30.0, workers=workers)
    wall, cpu1 = time.perf_counter() - t0, os.times()
    return facts | {"wall_s": wall, "cpu_s": (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)}


def _process_loop(tasks, results) -> None:
    """A decode process: for each task (files, threads), decode them with `decode_files` and send
    every clip's arrays back (what a pipeline with its embedder in the parent would have to do)."""
    from avsearch.media.parallel import FileToDecode, decode_files
    from avsearch.media.segment import plan_clips

    while (task := tasks.get()) is not None:
        paths, threads = task
        files = []
        for path in paths:
            media = probe(path)
            files.append(FileToDecode(path, plan_clips(media.duration_s, clip_s=10.0, min_last_s=1.0), media=media))
        for report in decode_files(files, workers=threads, min_split_s=30.0):
            if report.kind == "clip":
                results.put((report.clip.frames, report.clip.audio))
            elif report.kind == "error":
                results.put(str(report.error))
        results.put(None)


class ProcessDecoders:
    """`processes` persistent decode processes (started once, outside the timing), files dealt
    round-robin, each process decoding its share with `threads` threads."""

    def __init__(self, processes: int):
        import multiprocessing as mp

        ctx = mp.get_context("spawn")  # no fork of a process holding threads and torch state
        self.tasks = [ctx.Queue() for _ in range(processes)]
        self.results = ctx.Queue(maxsize=16 * processes)
        self.procs = [ctx.Process(target=_process_loop, args=(q, self.results), daemon=True) for q in self.tasks]
        for proc in self.procs:
            proc.start()

    def decode(self, paths: list[Path], threads: int) -> dict:
        for i, q in enumerate(self.tasks):
            q.put((paths[i:: len(self.tasks)], threads))
        clips, pending = 0, len(self.tasks)
        while pending:
            item = self.results.get()
            if item is None:
                pending -= 1
            elif isinstance(item, str):
                raise RuntimeError(item)
            else:
                clips += 1
        return {"clips": clips}

    def close(self) -> None:
        for q in self.tasks:
            q.put(None)
        for proc in self.procs:
            proc.join(timeout=30)


def timed_processes(pool: ProcessDecoders, paths: list[Path], threads: int) -> dict:
    import psutil

    procs = [psutil.Process(p.pid) for p in pool.procs] + [psutil.Process()]
    cpu = lambda: sum(sum(p.cpu_times()[:2]) for p in procs)  # noqa: E731 - user + system, all processes
    cpu0, t0 = cpu(), time.perf_counter()
    facts = pool.decode(paths, threads)
    return facts | {"wall_s": time.perf_counter() - t0, "cpu_s": cpu() - cpu0}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workers", default="2,4,8,16")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--work", type=Path, default=Path("/tmp/avsearch-decode-workers"))
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    p.add_argument("--only", default="", help="only the files of this kind (1080p or 480p)")
    p.add_argument("--processes", default="", help="also time P decode processes x T threads each, e.g. 2x2,4x2 "
                   "(clips sent back to this process, as a pipeline would need)")
    p.add_argument("--scale", type=float, default=1.0, help="file lengths times this (a quick trial: 0.1)")
    args = p.parse_args(argv)
    counts = sorted({int(w) for w in args.workers.split(",")} | {2})

    t0 = time.perf_counter()
    paths = make_folder(args.work / f"x{args.scale:g}", args.scale)
    paths = [p for p in paths if p.stem.startswith(args.only)]
    media_s = sum(probe(p).duration_s for p in paths)
    print(f"{len(paths)} files, {media_s:.0f} s of media, made in {time.perf_counter() - t0:.1f} s", flush=True)

    timed(paths[:1], 2)  # warm-up: first-use costs (imports, torch kernels) would land on the first count
    variants = {str(w): (lambda w=w: timed(paths, w)) for w in counts}
    pools = {}
    for spec in filter(None, args.processes.split(",")):
        procs, threads = (int(x) for x in spec.split("x"))
        pools[spec] = ProcessDecoders(procs)
        pools[spec].decode(paths[:procs], threads)  # warm-up: imports in each process
        variants[spec] = (lambda spec=spec, threads=threads: timed_processes(pools[spec], paths, threads))
    runs: dict[str, list[dict]] = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, run in variants.items():
            runs[name].append(run())
            print(f"{name}: {runs[name][-1]['wall_s']:.2f} s, {runs[name][-1]['cpu_s']:.1f} CPU-s", flush=True)
    for pool in pools.values():
        pool.close()
    rows = {}
    for name, rs in runs.items():
        best = min(rs, key=lambda r: r["wall_s"])
        rows[name] = {"best_s": best["wall_s"], "all_s": [r["wall_s"] for r in rs], "media_s_per_s": media_s / best["wall_s"],
                      "cores_busy": best["cpu_s"] / best["wall_s"], "clips": best["clips"]}
    base = rows["2"]["best_s"]
    for r in rows.values():
        r["speedup_vs_2"] = base / r["best_s"]
    res = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.node()} {os.cpu_count()} CPUs",
           "pyav": av.__version__, "files": [p.name for p in paths], "media_s": media_s,
           "needed_media_s_per_s": NEEDED_MEDIA_S_PER_S, "workers": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "decode_workers" + (args.only and "-" + args.only) + ("-processes" if pools else "")
    (args.out / f"{stem}.json").write_text(json.dumps(res, indent=2) + "\n")
    lines = [f"# Decode workers on {os.cpu_count()} CPUs ({res['date']}, PyAV {res['pyav']})", "",
             f"{len(paths)} files ({media_s:.0f} s of media: "
             + ", ".join(f"{c} x {s * args.scale:g} s {n}" for n, _, _, s, c in FOLDER) + "), decoded as the indexer "
             f"does; best of {args.repeats}. WAVE-7B on an H100 needs ~{NEEDED_MEDIA_S_PER_S:.0f} media-s/s.", "",
             "Workers N: N threads in the indexing process (as `avsearch index` decodes); PxT: P decode processes of "
             "T threads each, every clip's arrays sent back to the parent.", "",
             "| workers | best s | media-s/s | vs 2 workers | cores busy |", "|---:|---:|---:|---:|---:|"]
    lines += [f"| {w} | {r['best_s']:.2f} | {r['media_s_per_s']:.1f} | {r['speedup_vs_2']:.2f}x | {r['cores_busy']:.1f} |"
              for w, r in rows.items()]
    (args.out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
