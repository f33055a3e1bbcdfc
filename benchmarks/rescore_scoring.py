"""How fast one query's candidates are re-scored from the float16 re-scoring file (issue 19):
`RescoreVectors.get` (float16 rows -> float32 by numpy) then an einsum dot — the search path
before — against `RescoreVectors.inner_products` (faiss's float16 scalar quantizer scores the rows
as stored), alternating pool by pool in one run, on the same ids. Page cache warm: the file is
read once before timing.

Run: python benchmarks/rescore_scoring.py --n 200000 --dim 3584
Writes benchmarks/results/rescore-scoring.json (and prints a Markdown table).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import faiss  # noqa: E402

from metrics import percentiles_ms  # noqa: E402

from avsearch.store.rescore_vectors import RescoreVectors  # noqa: E402


def before(rv, ids, q):
    return np.einsum("nd,d->n", rv.get(ids), q)


def after(rv, ids, q):
    return rv.inner_products(ids, q)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=200_000)
    p.add_argument("--dim", type=int, default=3584)
    p.add_argument("--pools", default="20,256,1024,2048")
    p.add_argument("--reps", type=int, default=40)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "rescore-scoring.json"))
    args = p.parse_args(argv)
    faiss.omp_set_num_threads(1)  # as a single query runs (store/ann.py: _one_omp_thread)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        rv = RescoreVectors(args.dim)
        for start in range(0, args.n, 50_000):
            rows = min(50_000, args.n - start)
            x = rng.standard_normal((rows, args.dim), dtype=np.float32)
            rv.add(x / np.linalg.norm(x, axis=1, keepdims=True), np.arange(start, start + rows))
        rv.save(Path(tmp))
        rv = RescoreVectors.load(Path(tmp), args.dim)
        rv.get(np.arange(args.n))[:0]  # page cache warm
        result = {"n": args.n, "dim": args.dim, "reps": args.reps, "load_avg_start": os.getloadavg(), "pools": {}}
        for pool in (int(v) for v in args.pools.split(",")):
            lat = {"get_then_einsum (before)": [], "inner_products (faiss fp16)": []}
            worst = 0.0
            for _ in range(args.reps):
                ids = rng.choice(args.n, pool, replace=False)
                q = rng.standard_normal(args.dim).astype(np.float32)
                q /= np.linalg.norm(q)
                got = {}
                for name, fn in zip(lat, (before, after)):
                    t = time.perf_counter()
                    got[name] = fn(rv, ids, q)
                    lat[name].append(time.perf_counter() - t)
                worst = max(worst, float(np.abs(got["get_then_einsum (before)"] - got["inner_products (faiss fp16)"]).max()))
            result["pools"][pool] = {name: percentiles_ms(v) for name, v in lat.items()} | {"max_abs_score_diff": worst}
        result["load_avg_end"] = os.getloadavg()
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"{args.n} x {args.dim}, {args.reps} reps, load {result['load_avg_start'][0]:.1f} -> {result['load_avg_end'][0]:.1f}")
    print("| candidates | before p50 / p99 ms | faiss fp16 p50 / p99 ms | max abs score diff |")
    print("|---|---|---|---|")
    for pool, r in result["pools"].items():
        b, a = r["get_then_einsum (before)"], r["inner_products (faiss fp16)"]
        print(f"| {pool} | {b['p50_ms']:.2f} / {b['p99_ms']:.2f} | {a['p50_ms']:.2f} / {a['p99_ms']:.2f} | "
              f"{r['max_abs_score_diff']:.1e} |")


if __name__ == "__main__":
    main()
