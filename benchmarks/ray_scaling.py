"""Ray scale-out: decode throughput vs decode processes, and clips/s end to end, against the local
pipeline measured in the same run.

Decode: the local pipeline's decoders (`decode_files`: threads, the default count, splitting long
files) against Ray decode tasks (the engine's `decode_chunk`, one per 120 s chunk, results put in
Ray's object store as in a real run) with at most N running at once, N from `--processes`.
End to end: `run_index` into a fresh index, local engine vs Ray engine (`--actors` embed actors),
same model. Runs alternate (local, ray, local, ray...); the best of `--repeats` is kept.

    # this 2-core machine: tiny model on the CPU
    python benchmarks/ray_scaling.py --processes 1,2 --out benchmarks/results
    # a GPU machine: WAVE-7B at full size with random weights (benchmarks/wave_throughput.py), one
    # GPU actor, decode processes up to the cores; reports the GPU's busy fraction (nvidia-smi)
    python benchmarks/ray_scaling.py --gpu --processes 2,4,8,14 --files 8 --seconds 120 --out benchmarks/results

Needs `pip install "avsearch[ray,bench]"`.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from ingest import write_h264  # noqa: E402

from avsearch.media import DecodeOptions, FileToDecode, decode_files, default_decode_workers, plan_clips, probe  # noqa: E402


def make_folder(work: Path, files: int, seconds: float, width: int, height: int) -> list[Path]:
    paths = []
    for i in range(files):
        p = work / f"media/{height}p-{i}.mp4"
        if not p.exists():
            write_h264(p, width=width, height=height, seconds=seconds, seed=i)
        paths.append(p)
    return paths


def decode_local(paths) -> dict:
    files = [FileToDecode(p, plan_clips(m.duration_s, clip_s=10.0, min_last_s=1.0), media=m)
             for p, m in ((p, probe(p)) for p in paths)]
    t0 = time.perf_counter()
    clips = sum(r.kind == "clip" for r in decode_files(files, DecodeOptions()))
    return {"wall_s": time.perf_counter() - t0, "clips": clips}


def decode_ray(ray, paths, processes: int, chunk_s: float = 120.0) -> dict:
    from avsearch.indexer.distributed.work import decode_chunk

    decode = ray.remote(decode_chunk).options(num_cpus=1, max_retries=0)
    work = []
    for p in paths:
        m = probe(p)
        ranges = plan_clips(m.duration_s, clip_s=10.0, min_last_s=1.0)
        chunk: list = []
        for r in ranges:
            if chunk and r[1] - chunk[0][0] > chunk_s:
                work.append((p, m, chunk))
                chunk = []
            chunk.append(r)
        work.append((p, m, chunk))
    t0 = time.perf_counter()
    inflight, clips = [], 0
    while work or inflight:
        while work and len(inflight) < processes:
            p, m, chunk = work.pop(0)
            inflight.append(decode.remote(str(p), chunk, m, DecodeOptions(), True, True, 600.0))
        done, inflight = ray.wait(inflight, num_returns=1)
        got = ray.get(done[0])
        assert got.error is None, got.error
        clips += len(got.clips)
        del got, done
    return {"wall_s": time.perf_counter() - t0, "clips": clips}


class GpuBusy:
    """Mean utilization.gpu over the run, sampled by nvidia-smi every 0.5 s (None without a GPU)."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True) if shutil.which("nvidia-smi") else None

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
                                 capture_output=True, text=True).stdout.split()
            if out:
                self.samples.append(float(out[0]))

    def __enter__(self):
        if self._thread:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()

    @property
    def busy(self):
        return sum(self.samples) / len(self.samples) / 100 if self.samples else None


class PeakRss:
    """Peak resident memory (MB) of this process and of Ray's workers by role, sampled every 0.2 s."""

    def __init__(self) -> None:
        self.peak: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        me = psutil.Process()
        while not self._stop.wait(0.2):
            seen = {"driver": me.memory_info().rss}
            for proc in psutil.process_iter(["name", "cmdline"]):
                try:
                    title = " ".join(proc.info["cmdline"] or [])
                    role = ("decode worker" if "decode_chunk" in title else "embed actor" if "EmbedWorker" in title
                            else None)
                    if role:
                        seen[role] = max(seen.get(role, 0), proc.memory_info().rss)
                except Exception:  # gone between listing and reading
                    continue
            for role, rss in seen.items():
                self.peak[role] = max(self.peak.get(role, 0.0), rss / 2**20)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def index_run(engine: str, paths, work: Path, load, model_id: str, dim: int, actors: int) -> dict:
    from avsearch.indexer import PipelineOptions, run_index
    from avsearch.indexer.distributed import RayOptions
    from avsearch.store import IndexMeta, IndexSettings, Store

    target = work / f"index-{engine}"
    shutil.rmtree(target, ignore_errors=True)
    store = Store.create(target, IndexMeta(model_id, "benchmark", dim, IndexSettings()))
    ray_options = RayOptions(load_embedder=load, model_id=model_id, embed_actors=actors) if engine == "ray" else None
    embedder = None if engine == "ray" else load()  # loaded before the clock: Ray's actors load theirs inside it
    t0 = time.perf_counter()
    with GpuBusy() as gpu, PeakRss() as rss:
        report = run_index(store, [str(p) for p in paths], lambda: embedder, PipelineOptions(), ray=ray_options)
    wall = time.perf_counter() - t0
    assert not report.failed, report.failed
    return {"wall_s": wall, "clips": report.clips_added, "media_s": report.media_s, "gpu_busy": gpu.busy,
            "peak_rss_mb": rss.peak}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--processes", default="1,2", help="decode processes to try, comma-separated")
    p.add_argument("--actors", type=int, default=1, help="embed actors in the end-to-end run")
    p.add_argument("--files", type=int, default=4)
    p.add_argument("--seconds", type=float, default=30.0, help="media per file")
    p.add_argument("--width", type=int, default=854)
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--gpu", action="store_true", help="WAVE-7B at full size, random weights, on cuda")
    p.add_argument("--skip-index", action="store_true", help="decode only")
    p.add_argument("--skip-decode", action="store_true", help="end to end only")
    p.add_argument("--work", type=Path, default=Path("/tmp/avsearch-ray-scaling"))
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)

    # Ray starts its workers at nice 15 (RAY_worker_niceness): on a machine shared with other jobs
    # they would lose the CPU to everything else while the local pipeline, at nice 0, would not.
    os.environ.setdefault("RAY_worker_niceness", "0")
    import ray

    paths = make_folder(args.work, args.files, args.seconds, args.width, args.height)
    media_s = sum(probe(x).duration_s for x in paths)
    # The benchmarks folder on the workers' path: the GPU mode's actors build the random model from it.
    ray.init(include_dashboard=False, logging_level="WARNING", log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(ROOT / "benchmarks")}})
    cpus = int(ray.cluster_resources().get("CPU", 1))
    counts = [int(x) for x in args.processes.split(",")]
    if args.gpu:
        from wave_throughput import build_random_embedder

        load = functools.partial(build_random_embedder, "cuda", None, "sequential")
        model_id, dim = "wave:random-full-size", 3584
    else:
        from avsearch.models import load_embedder

        load = functools.partial(load_embedder, "tiny", device="cpu")
        e = load()
        model_id, dim = e.model_id, e.dim

    decode: dict = {"local": [], **{f"ray-{n}": [] for n in counts}}
    index: dict = {"local": [], "ray": []}
    for _ in range(args.repeats):
        if not args.skip_decode:
            decode["local"].append(decode_local(paths))
            for n in counts:
                decode[f"ray-{n}"].append(decode_ray(ray, paths, n))
        if not args.skip_index:
            for engine in ("local", "ray"):
                index[engine].append(index_run(engine, paths, args.work, load, model_id, dim, args.actors))
                print(engine, index[engine][-1], flush=True)
        print({k: round(media_s / v[-1]["wall_s"], 1) for k, v in decode.items() if v}, flush=True)

    best = {k: min(v, key=lambda r: r["wall_s"]) for k, v in decode.items() if v}
    result = {
        "machine": {"cpus_ray": cpus, "cpu_count": os.cpu_count(), "platform": platform.platform(),
                    "load_avg_start": os.getloadavg()},
        "media": {"files": args.files, "seconds_each": args.seconds, "size": f"{args.width}x{args.height}",
                  "media_s": media_s, "local_decode_workers": default_decode_workers()},
        "decode_media_s_per_s": {k: media_s / r["wall_s"] for k, r in best.items()},
        "decode_runs": decode,
        "index": {k: min(v, key=lambda r: r["wall_s"]) for k, v in index.items() if v},
        "index_runs": index,
        "model": model_id,
    }
    for r in result["index"].values():
        r["clips_per_s"] = r["clips"] / r["wall_s"]
    ray.shutdown()
    print(json.dumps({k: result[k] for k in ("decode_media_s_per_s", "index")}, indent=1))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        name = ("ray-scaling-gpu" if args.gpu else "ray-scaling") + ("-memory" if args.skip_decode else "")
        (args.out / f"{name}.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
