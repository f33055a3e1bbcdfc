"""What a Ray run sends the driver per clip row, and its wall time: this checkout (embed actors write
Lance fragments, the driver gets clip ids + fragment metadata) against a base checkout (actors
return vectors, the driver writes the rows), on the same folder in the same run.

Each measurement is a child process of its own (Ray started there, `--cpus` CPUs), alternating
base, this, base, this...; in a child, a warm-up run loads the embed actor, then `--repeats` runs
into fresh indexes are timed (best kept). Bytes: every result the driver takes from an embed actor,
pickled as Ray ships it, summed, over the clip rows (clip x view) committed.

    git worktree add /tmp/base-frag <base commit>       # the code before the change
    python benchmarks/ray_driver_bytes.py --base /tmp/base-frag --out benchmarks/results

Needs `pip install "avsearch[ray]"`. The base runs from a throwaway package folder that maps
avsearch.indexer etc. onto the base worktree, as its install would.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"indexer": "indexer", "cli": "cli", "retriever": "retriever", "server": "server"}


def base_site(base: Path, where: Path) -> Path:
    """A folder whose `avsearch` package is the base worktree's, laid out as installed."""
    pkg = where / "avsearch"
    pkg.mkdir(parents=True, exist_ok=True)
    for entry in (base / "avsearch").iterdir():
        link = pkg / entry.name
        if not link.exists():
            link.symlink_to(entry)
    for name, folder in PACKAGES.items():
        if (base / folder).is_dir() and not (pkg / name).exists():
            (pkg / name).symlink_to(base / folder)
    return where


def make_folder(folder: Path, files: int, seconds: float) -> None:
    from avsearch.media.synth import write_video

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        p = folder / f"v{i}.mp4"
        if not p.exists():
            write_video(p, duration_s=seconds, seed=100 + i, tone_hz=220.0 + 40 * i)


def child(args) -> None:
    import ray

    from avsearch import Index
    from avsearch.indexer.distributed import engine
    from avsearch.store import IndexSettings

    ray.init(num_cpus=args.cpus, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    got = {"bytes": 0, "rows": 0, "results": 0}
    real_take = engine._Run.take

    def take(self, j, idxs, result):
        got["bytes"] += len(pickle.dumps(result, protocol=5))
        got["rows"] += len(result.clip_ids) if hasattr(result, "clip_ids") else len(result.vectors)
        got["results"] += 1
        return real_take(self, j, idxs, result)

    engine._Run.take = take
    settings = IndexSettings(clip_s=args.clip_s)
    ray_settings = {"chunk_s": args.chunk_s, "actor_cpus": 0}
    work = Path(args.work)
    walls = []
    for n in range(args.repeats + 1):  # the first run loads the actor's model: not timed
        got.update(bytes=0, rows=0, results=0)
        index = Index.open(work / f"idx-{os.getpid()}-{n}", model="tiny", create=True, settings=settings)
        t0 = time.perf_counter()
        report = index.add([args.folder], engine="ray", ray_settings=ray_settings)
        wall = time.perf_counter() - t0
        assert not report.failed, report.failed
        if n:
            walls.append(wall)
    worker_file = ray.get(ray.remote(lambda: __import__("avsearch.indexer.distributed.work",
                                                        fromlist=["x"]).__file__).remote())
    print(json.dumps({"wall_s": walls, "bytes": got["bytes"], "rows": got["rows"], "results": got["results"],
                      "clips_added": report.clips_added, "worker_code": worker_file}))
    ray.shutdown()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", type=Path, required=True, help="a git worktree of the code to compare against")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    ap.add_argument("--files", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=24.0)
    ap.add_argument("--clip-s", type=float, default=2.0)
    ap.add_argument("--chunk-s", type=float, default=24.0, help="12 clips a chunk, as 120 s of 10 s clips")
    ap.add_argument("--rounds", type=int, default=2, help="base/this pairs, alternating")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per child")
    ap.add_argument("--cpus", type=int, default=2)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--folder", help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)

    work = Path(tempfile.mkdtemp(prefix="ray-driver-bytes-"))
    folder = work / "media"
    make_folder(folder, args.files, args.seconds)
    site = base_site(args.base.resolve(), work / "base-site")
    runs = {"base": [], "this": []}
    for _ in range(args.rounds):
        for name in ("base", "this"):
            env = dict(os.environ)
            env.pop("PYTHONPATH", None)
            if name == "base":
                env["PYTHONPATH"] = str(site)
            cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "--base", str(args.base),
                   "--folder", str(folder), "--work", str(work), "--clip-s", str(args.clip_s),
                   "--chunk-s", str(args.chunk_s), "--repeats", str(args.repeats), "--cpus", str(args.cpus)]
            # cwd outside the checkout: the base's package must not be shadowed by this one's
            out = subprocess.run(cmd, env=env, cwd=work, capture_output=True, text=True, check=True)
            runs[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(name, runs[name][-1], flush=True)
    summary = {}
    for name, rs in runs.items():
        summary[name] = {
            "bytes_per_row": rs[0]["bytes"] / rs[0]["rows"],
            "bytes_per_result": rs[0]["bytes"] / rs[0]["results"],
            "rows": rs[0]["rows"], "results": rs[0]["results"],
            "best_wall_s": min(w for r in rs for w in r["wall_s"]),
            "walls_s": [w for r in rs for w in r["wall_s"]],
            "worker_code": rs[0]["worker_code"],
        }
    result = {"files": args.files, "seconds": args.seconds, "clip_s": args.clip_s, "chunk_s": args.chunk_s,
              "cpus": args.cpus, "model": "tiny (dim 64)", "summary": summary, "runs": runs}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ray-driver-bytes.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
