"""faiss-gpu check of the ANN index: the same OPQ+IVF-PQ index searched on the CPU and on the GPU.

Shows that `AnnIndex` picks the GPU copy when faiss has GPUs, that the GPU answers agree with the
CPU answers (recall@10 of each against exact search), and the batched queries/s of each.
Never run in CI (needs faiss-gpu and a CUDA GPU).

    python benchmarks/faiss_gpu_check.py [--n 200000] [--dim 1024]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))


def clustered(n: int, d: int, seed: int, centers: int = 1000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centers, d), dtype=np.float32)
    x = c[rng.integers(0, centers, n)] + 0.6 * rng.standard_normal((n, d), dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)]))


def describe(index) -> str:
    """Class names down the chain (IndexPreTransform > GpuIndexIVFPQ, say)."""
    import faiss

    names = []
    while index is not None:
        index = faiss.downcast_index(index)
        names.append(type(index).__name__)
        index = getattr(index, "index", None)
    return " > ".join(names)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=200_000)
    p.add_argument("--dim", type=int, default=1024)
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--out", type=Path, default=ROOT / "results")
    args = p.parse_args(argv)
    import faiss

    from avsearch.store.ann import AnnConfig, AnnIndex

    gpus = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
    res = {"faiss": faiss.__version__, "gpus": gpus, "n": args.n, "dim": args.dim}
    if not gpus:
        print(json.dumps(res | {"error": "this faiss sees no GPU"}))
        return 2
    x = clustered(args.n, args.dim, 0)
    q = clustered(args.queries, args.dim, 1)
    ids = np.arange(args.n, dtype=np.int64)
    fetch = lambda wanted: x[wanted]  # noqa: E731 - exact re-scoring from the stored vectors
    t0 = time.perf_counter()
    ann = AnnIndex.build(x, ids, AnnConfig(flat_threshold=10_000))
    res["build_s"] = time.perf_counter() - t0
    exact = faiss.IndexFlatIP(args.dim)
    exact.add(x)
    _, truth = exact.search(q, 10)
    for name, use_gpu in (("cpu", False), ("gpu", True)):
        ann.config = replace(ann.config, use_gpu=use_gpu)
        ann._gpu_coarse = None
        ann.search(q[:10], 10, fetch_vectors=fetch)  # warm-up (GPU copy made here)
        t0 = time.perf_counter()
        _, found = ann.search(q, 10, fetch_vectors=fetch)
        elapsed = time.perf_counter() - t0
        res[name] = {"recall@10": recall(found, truth), "qps_batched": args.queries / elapsed,
                     "index_type": describe(ann._coarse_index())}
    res["passed"] = "Gpu" in res["gpu"]["index_type"] and abs(res["gpu"]["recall@10"] - res["cpu"]["recall@10"]) < 0.02
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "faiss_gpu_check.json").write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res, indent=2))
    return 0 if res["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
