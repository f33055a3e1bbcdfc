"""The ANN rebuild after a large run: streamed (sample + blocks, `Store._build_streamed`) against
reading every vector at once (the path below `flat_threshold`, and every rebuild before issue 14),
on the same table in the same run. Each build runs in a fresh process: peak RSS is its own.

    python benchmarks/ann_stream_build.py --n 100000 --dim 1024 --train 20000 --out benchmarks/results

With --base-python (the interpreter of another checkout, e.g. the commit before a change) the
streamed build and the save that follows it (`streamed+save`) run alternately under that
checkout's code and this one's, on one existing index (--store):

    python benchmarks/ann_stream_build.py --store /tmp/e2e-3584/index --base-python /work/base/.venv/bin/python
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def make_store(path: Path, n: int, dim: int) -> None:
    from avsearch.store import FileCommit, IndexMeta, Store

    store = Store.create(path, IndexMeta("m", "m", dim))
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((256, dim)).astype(np.float32)
    for start in range(0, n, 20_000):  # one file per 20k clips, as commits of a real run
        k = min(20_000, n - start)
        v = centers[rng.integers(0, 256, k)] + 0.5 * rng.standard_normal((k, dim)).astype(np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        path_s = f"/f{start}.mp4"
        rows = [{"clip_id": f"c{start + i}", "row_id": start + i + 1, "fingerprint": "f", "path": path_s,
                 "start_s": float(i), "end_s": float(i + 1), "view": "av", "file_duration_s": float(k),
                 "indexed_at": 0.0, "model_id": "m"} for i in range(k)]
        store.commit([FileCommit({"path": path_s, "fingerprint": "f", "size": 1, "mtime": 0.0, "status": "ok",
                                  "n_clips": k}, rows, v)])


def build(path: str, mode: str, train: int) -> None:
    """In a child process: one rebuild, then its wall time and peak RSS as JSON on stdout."""
    from avsearch.store import AnnConfig, Store

    store = Store.open(Path(path), ann_config=AnnConfig(train_size=train))
    ids = store.tables.vouched_row_ids()
    t0 = time.perf_counter()
    if mode == "streamed+save":  # the save writes the float16 re-scoring rows the build added
        ann = store._build_streamed(ids)
        store._save_ann(ann, ids, store._version_key())
    elif mode == "streamed":
        ann = store._build_streamed(ids)
    else:
        from avsearch.store.ann import AnnIndex

        all_ids, vectors = store.tables.all_vectors()
        ann = AnnIndex.build(vectors, all_ids, store.ann_config)
    wall = time.perf_counter() - t0
    print(json.dumps({"mode": mode, "wall_s": wall, "ntotal": int(ann.ntotal), "kind": ann.kind,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--dim", type=int, default=1024)
    p.add_argument("--train", type=int, default=20_000)
    p.add_argument("--work", type=Path, default=Path("/tmp/avsearch-ann-stream"))
    p.add_argument("--out", type=Path)
    p.add_argument("--child", nargs=3)
    p.add_argument("--store", type=Path, help="an existing index to rebuild (with --base-python)")
    p.add_argument("--base-python", help="the python of another checkout: its code against this one's")
    p.add_argument("--rounds", type=int, default=1)
    args = p.parse_args()
    if args.child:
        build(args.child[0], args.child[1], int(args.child[2]))
        return
    if args.base_python:
        return compare_checkouts(args)
    path = args.work / f"store-{args.n}-{args.dim}"
    if not path.exists():
        make_store(path, args.n, args.dim)
    runs = []
    for mode in ("in-memory", "streamed", "in-memory", "streamed")[: 2 if args.n > 200_000 else 4]:
        out = subprocess.run([sys.executable, __file__, "--child", str(path), mode, str(args.train)],
                             capture_output=True, text=True, check=True)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(runs[-1], flush=True)
    result = {"n": args.n, "dim": args.dim, "train": args.train, "runs": runs}
    if args.out:
        (args.out / f"ann-stream-build-{args.n}-{args.dim}.json").write_text(json.dumps(result, indent=1))


def compare_checkouts(args) -> None:
    import os

    runs = []
    for _ in range(args.rounds):
        for label, python in (("base", args.base_python), ("this", sys.executable)):
            out = subprocess.run([python, __file__, "--child", str(args.store), "streamed+save", str(args.train)],
                                 capture_output=True, text=True, check=True)
            runs.append({"code": label, "python": python, "load_avg": os.getloadavg()[0],
                         **json.loads(out.stdout.strip().splitlines()[-1])})
            print(runs[-1], flush=True)
    if args.out:
        (args.out / f"ann-stream-build-save-{runs[-1]['ntotal']}.json").write_text(
            json.dumps({"store": str(args.store), "train": args.train, "runs": runs}, indent=1))


if __name__ == "__main__":
    main()
