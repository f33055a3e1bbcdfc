"""What serving only committed clips costs (issue 17: a clip counts only while an "ok"/"partial"
files row vouches for it).

The ANN index is rebuilt/updated from `Tables.vouched_row_ids()` (a semi-join of clips with the
files rows, Arrow) instead of `Tables.all_row_ids()`. That runs once per table version change (a
reader after each commit), never per query. A filtered query additionally intersects its allowed
ids with the served ids. This times both against their old counterparts (the baseline, same run,
same store): N synthetic clips in N/10 files, vectors of --dim.

    python benchmarks/vouched_ids.py --clips 200000 --out benchmarks/results
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from avsearch.store import IndexMeta, Store
from avsearch.store.schema import FILES_SCHEMA
from avsearch.store.tables import _clips_table


def build(directory: Path, n: int, dim: int) -> Store:
    store = Store.create(directory, IndexMeta("m", "m", dim))
    rng = np.random.default_rng(0)
    files = n // 10
    file_of = np.arange(n) // 10
    rows = [{"clip_id": f"c{i}", "row_id": i, "fingerprint": f"f{file_of[i]}", "path": f"/media/{file_of[i]}.mp4",
             "start_s": float(i % 10) * 10, "end_s": float(i % 10) * 10 + 10, "view": "av", "file_duration_s": 100.0,
             "indexed_at": 0.0, "model_id": "m"} for i in range(n)]
    vecs = rng.standard_normal((n, dim)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    store.tables.clips.add(_clips_table(rows, vecs, dim))
    f_rows = [{"path": f"/media/{j}.mp4", "fingerprint": f"f{j}", "size": 1, "mtime": 0.0, "status": "ok",
               "n_clips": 10, "indexed_at": 0.0} for j in range(files)]
    store.tables.files.add(pa.Table.from_pylist([{f.name: r.get(f.name) for f in FILES_SCHEMA} for r in f_rows],
                                                schema=FILES_SCHEMA))
    store.finish_writes()
    return store


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=200_000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        store = build(Path(tmp) / "idx", args.clips, args.dim)
        build_s = time.perf_counter() - t
        tables = store.tables
        ann = store.ensure_ann(save=False)
        q = np.random.default_rng(1).standard_normal((1, args.dim)).astype(np.float32)
        allowed = np.arange(0, args.clips, 2, dtype=np.int64)  # a filter passing half the clips
        res = {
            "clips": args.clips, "files": args.clips // 10, "dim": args.dim, "ann_kind": ann.kind,
            "machine": platform.platform(), "build_s": round(build_s, 2),
            "ids_all_row_ids_s (baseline)": timed(tables.all_row_ids, args.repeats),
            "ids_vouched_row_ids_s": timed(tables.vouched_row_ids, args.repeats),
            "filtered_query_ann_only_s (baseline)": timed(
                lambda: ann.search(q, 10, allowed_ids=allowed, fetch_vectors=store.vectors), args.repeats),
            "filtered_query_store_s": timed(lambda: store.search(q, 10, allowed_ids=allowed), args.repeats),
            "unfiltered_query_store_s": timed(lambda: store.search(q, 10), args.repeats),
        }
    args.out.mkdir(parents=True, exist_ok=True)
    name = f"vouched_ids-{args.clips // 1000}k"
    (args.out / f"{name}.json").write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
