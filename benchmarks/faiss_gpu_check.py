"""faiss-gpu check of the ANN index: the same OPQ+IVF-PQ index searched on the CPU and on the GPU.

Shows that `AnnIndex` picks the GPU copy when faiss has GPUs, that the GPU answers agree with the
CPU answers (recall@10 of each against exact search, for queries near the data and for queries far
from it), the batched queries/s of each, and of choosing the lists alone (the part on the GPU).
Never run in CI (needs faiss-gpu and a CUDA GPU). On the lent CUDA-13 machines it runs through
`gpu/faiss_gpu_on_device.sh`; results and how to read them: `results/faiss_gpu.md`.

    python benchmarks/faiss_gpu_check.py [--n 200000] [--dim 1024]
    python benchmarks/faiss_gpu_check.py --no-gpu   # faiss-gpu installed, no GPU: what can be checked

`--no-gpu` is for a machine with the faiss-gpu wheel but no usable GPU (the wheel imports without
a driver): it checks that such a faiss is left alone (the CPU path answers), and runs the GPU
branch of `AnnIndex` with faiss told it has a GPU, to show that faiss-gpu's bindings accept every
call the branch makes, up to the point where a device is needed ("Invalid GPU device"); a call
they did not accept fails with a TypeError instead. Results: `results/faiss_gpu_no_device.json`.
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


def check_without_device(out: Path) -> int:
    import faiss

    from avsearch.store.ann import AnnConfig, AnnIndex

    res = {"faiss": faiss.__version__, "faiss_file": faiss.__file__, "gpus": faiss.get_num_gpus(),
           "has_gpu_api": hasattr(faiss, "StandardGpuResources")}
    x = clustered(20_000, 256, 0)
    q = clustered(100, 256, 1)
    exact = faiss.IndexFlatIP(256)
    exact.add(x)
    _, truth = exact.search(q, 10)
    ann = AnnIndex.build(x, np.arange(len(x), dtype=np.int64), AnnConfig(flat_threshold=5_000))
    _, found = ann.search(q, 10, fetch_vectors=lambda wanted: x[wanted])
    # recall@10 is only reported (the queries come from other clusters than the data, as in the
    # GPU check): faiss-cpu gives the same figure for the same build.
    res["cpu_path"] = {"index_type": describe(ann._coarse_index()), "recall@10": recall(found, truth)}
    # The GPU branch with faiss told it has one GPU: every binding call up to the device.
    real = faiss.get_num_gpus
    faiss.get_num_gpus = lambda: 1
    try:
        ann._gpu_coarse = None
        ann._coarse_index()
        res["gpu_branch"] = "built a GPU index?! (a GPU was there after all)"
    except TypeError as err:
        res["gpu_branch"] = f"REFUSED by the bindings: {err}"
    except RuntimeError as err:
        res["gpu_branch"] = f"accepted, stopped for want of a device: {str(err).splitlines()[0][:300]}"
    finally:
        faiss.get_num_gpus = real
    res["passed"] = (res["has_gpu_api"] and res["gpus"] == 0 and "Gpu" not in res["cpu_path"]["index_type"]
                     and res["gpu_branch"].startswith("accepted")
                     and "Invalid GPU device" in res["gpu_branch"])
    out.mkdir(parents=True, exist_ok=True)
    (out / "faiss_gpu_no_device.json").write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res, indent=2))
    return 0 if res["passed"] else 1


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=200_000)
    p.add_argument("--dim", type=int, default=1024)
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--out", type=Path, default=ROOT / "results")
    p.add_argument("--no-gpu", action="store_true", help="check what can be checked without a GPU (see above)")
    args = p.parse_args(argv)
    import faiss

    from avsearch.store.ann import AnnConfig, AnnIndex

    if args.no_gpu:
        return check_without_device(args.out)

    gpus = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
    res = {"faiss": faiss.__version__, "gpus": gpus, "n": args.n, "dim": args.dim}
    if not gpus:
        print(json.dumps(res | {"error": "this faiss sees no GPU"}))
        return 2
    x = clustered(args.n, args.dim, 0)
    rng = np.random.default_rng(2)
    near = x[rng.integers(0, args.n, args.queries)] + 0.3 * rng.standard_normal((args.queries, args.dim), dtype=np.float32) / np.sqrt(args.dim)
    queries = {"near": near / np.linalg.norm(near, axis=1, keepdims=True),  # same-modality: among the data
               "off": clustered(args.queries, args.dim, 1)}  # other clusters: neighbours nearly tied (hard)
    ids = np.arange(args.n, dtype=np.int64)
    fetch = lambda wanted: x[wanted]  # noqa: E731 - exact re-scoring from the stored vectors
    t0 = time.perf_counter()
    ann = AnnIndex.build(x, ids, AnnConfig(flat_threshold=10_000))
    res["build_s"] = time.perf_counter() - t0
    res["nlist"] = int(ann._ivf.nlist)
    res["nprobe"] = ann.config.choose_nprobe(ann._ivf.nlist)
    exact = faiss.IndexFlatIP(args.dim)
    exact.add(x)
    truth = {name: exact.search(q, 10)[1] for name, q in queries.items()}
    for name, use_gpu in (("cpu", False), ("gpu", True)):
        ann.config = replace(ann.config, use_gpu=use_gpu)
        ann._gpu_coarse = None
        ann.search(queries["near"][:10], 10, fetch_vectors=fetch)  # warm-up (GPU copy made here)
        out = {"index_type": describe(ann._coarse_index()), "recall@10": {}, "qps_batched": {}}
        for qname, q in queries.items():
            t0 = time.perf_counter()
            _, found = ann.search(q, 10, fetch_vectors=fetch)
            out["qps_batched"][qname] = args.queries / (time.perf_counter() - t0)
            out["recall@10"][qname] = recall(found, truth[qname])
        # The part that runs on the GPU: choosing the lists to probe, alone.
        t0 = time.perf_counter()
        ann._coarse_index().search(queries["near"], res["nprobe"])
        out["coarse_qps_batched"] = args.queries / (time.perf_counter() - t0)
        res[name] = out
    res["passed"] = "Gpu" in res["gpu"]["index_type"] and all(
        abs(res["gpu"]["recall@10"][q] - res["cpu"]["recall@10"][q]) < 0.02 for q in queries)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "faiss_gpu_check.json").write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res, indent=2))
    return 0 if res["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
