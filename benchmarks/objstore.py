"""What an index on an object store costs against the same index in a local folder (issue 14).

Both stores get the same N synthetic clips (N/10 files, --dim): a local folder, and `s3://` on an
S3 server on loopback (moto's, in this process: it measures avsearch's and Lance's request
pattern with near-zero network latency, not a real S3's, whose round trips are ~10-50 ms). Same
run, alternating local / s3 per repeat, best of --repeats:

* write: one commit of every clip and files row, then `finish_writes` (compaction, ANN build, cleanup);
* cold query: open the index with an empty cache folder and answer one query (the ANN index is
  built from the tables: a fresh machine);
* warm query: a query as `Index.search` reads the store (the reader lock, the version check,
  ANN search, the hits' metadata), median of --queries.

    python benchmarks/objstore.py --clips 20000 --dim 256 --out benchmarks/results
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from avsearch.locations import IndexURI
from avsearch.store import FileCommit, IndexMeta, Store

BUCKET = "avsearch-bench"


def commits(n: int, dim: int) -> list[FileCommit]:
    rng = np.random.default_rng(0)
    vecs = rng.standard_normal((n, dim)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    out = []
    for f in range(n // 10):
        ids = range(f * 10, f * 10 + 10)
        rows = [{"clip_id": f"c{i}", "row_id": i, "fingerprint": f"f{f}", "path": f"/media/{f}.mp4",
                 "start_s": float(i % 10) * 10, "end_s": float(i % 10) * 10 + 10, "view": "av",
                 "file_duration_s": 100.0, "indexed_at": 0.0, "model_id": "m"} for i in ids]
        file_row = {"path": f"/media/{f}.mp4", "fingerprint": f"f{f}", "size": 1, "mtime": 0.0, "status": "ok",
                    "n_clips": 10, "indexed_at": 0.0}
        out.append(FileCommit(file_row, rows, vecs[f * 10 : f * 10 + 10]))
    return out


def write(location, batch: list[FileCommit], dim: int) -> float:
    t = time.perf_counter()
    store = Store.create(location, IndexMeta("m", "m", dim))
    with store.write_lock():
        store.commit(batch)
        store.finish_writes()
    return time.perf_counter() - t


def query_once(store: Store, q: np.ndarray) -> None:
    with store.reading():
        _, ids = store.search(q, 10)
        store.clip_meta_by_row_ids(ids[0])


def cold_query(location, q: np.ndarray) -> float:
    t = time.perf_counter()
    query_once(Store.open(location), q)
    return time.perf_counter() - t


def warm_queries(location, queries: np.ndarray) -> float:
    store = Store.open(location)
    query_once(store, queries[:1])
    times = []
    for q in queries:
        t = time.perf_counter()
        query_once(store, q[None])
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=20_000)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--queries", type=int, default=50)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args()

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from s3_fixtures import start_s3

    server, _, options = start_s3(BUCKET)
    os.environ["AVSEARCH_STORAGE_OPTIONS"] = json.dumps(options)
    batch = commits(args.clips, args.dim)
    queries = np.random.default_rng(1).standard_normal((args.queries, args.dim)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    results: dict[str, dict[str, list[float]]] = {"local": {}, "s3": {}}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["AVSEARCH_INDEX_CACHE"] = str(Path(tmp) / "cache")
        for r in range(args.repeats):
            for kind in ("local", "s3"):  # alternating: the machine's other load hits both alike
                location = Path(tmp) / f"local-{r}" if kind == "local" else IndexURI(f"s3://{BUCKET}/idx-{r}")
                got = results[kind]
                got.setdefault("write_s", []).append(write(location, batch, args.dim))
                cache = Path(tmp) / f"cold-{r}"
                os.environ["AVSEARCH_INDEX_CACHE"] = str(cache)  # an empty cache: a fresh machine
                if kind == "local":  # no cache to empty: the ANN folder is what a fresh copy lacks
                    shutil.rmtree(location / "ann")
                got.setdefault("cold_query_s", []).append(cold_query(location, queries[:1]))
                got.setdefault("warm_query_median_s", []).append(warm_queries(location, queries))
    server.stop()
    best = {kind: {name: round(min(values), 4) for name, values in got.items()} for kind, got in results.items()}
    res = {"clips": args.clips, "files": args.clips // 10, "dim": args.dim, "repeats": args.repeats,
           "queries": args.queries, "machine": platform.platform(), "cpus": os.cpu_count(),
           "server": "moto ThreadedMotoServer on 127.0.0.1 (in process)", "best": best, "all": results}
    args.out.mkdir(parents=True, exist_ok=True)
    name = f"objstore-{args.clips // 1000}k-{args.dim}"
    (args.out / f"{name}.json").write_text(json.dumps(res, indent=2))
    print(json.dumps(best, indent=2))


if __name__ == "__main__":
    main()
