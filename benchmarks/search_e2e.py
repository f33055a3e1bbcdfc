"""End-to-end search benchmark (issue 19): `Index.search` on a real index directory against exact
flat search, LanceDB's IVF_PQ tuned to equal recall and faiss HNSW32, measured in one run with the
systems' single queries interleaved (query i of every system, then query i+1), so a busy machine
slows all of them alike.

The index is built by the code `avsearch index` runs after embedding: `Store.commit` of per-file
FileCommits (a "file" is 20 consecutive clips) and `Store.finish_writes` (compaction, ANN build,
save). Only the embedding is replaced, by a generator (`hard_data`) with the structure the issue
names: clusters of uneven size (Pareto) with per-cluster noise scales, a shared low-rank part
(benchmarks/ann.py's model), 5% of the rows in near-duplicate groups of 20 (cosine ~0.999 inside a
group: consecutive clips of one video) and two query sets, in-distribution ("in") and pushed off
the data by a common offset ("cross", a text query against video clips).

The query embedding is not timed: queries are vectors (`Index.search(numpy_vector)`), the entry
point for applications that cache query vectors. Timed per query: `Index.search(v, k=10,
merge_adjacent=False)` (ANN + re-score + hits' metadata + Hit objects), and its parts; also
`Index.search(v, k=10)` as the CLI runs it ("avsearch_merging": adjacent clips merged, which asks
the ANN index for 4x k candidates).

Run: python benchmarks/search_e2e.py --n 100000 --dim 1024
Writes benchmarks/results/search-e2e.json (and is rewritten after each phase).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import faiss  # noqa: E402

from ann import RANK, LOWRANK_NORM, NOISE_NORM, CROSS_NOISE, CROSS_OFFSET, _generator  # noqa: E402
from metrics import percentiles_ms, recall_at_k  # noqa: E402

K = 10
GROUP = 20  # clips per "file"; the near-duplicate groups are whole files
DUP_SHARE = 0.05
DUP_COS = 0.999


# -- data --------------------------------------------------------------------------------------

def hard_data(n, d, seed, out=None, fill=True):
    """(vectors (n, d) unit, centers, basis, offset, sample) — see the module doc. The vectors are
    written into `out` when given (a float16 memory map at large n: 1M x 3584 float32 would take 14 GB
    of this machine's 23), and not made at all with fill=False (an earlier run's file is reused)."""
    centers, basis, offset = _generator(seed, n, d)
    rng = np.random.default_rng([seed, d, 7])
    weights = rng.pareto(1.1, len(centers)) + 0.05  # uneven cluster sizes
    weights /= weights.sum()
    noise = rng.uniform(0.4, 1.6, len(centers)).astype(np.float32) * NOISE_NORM  # per-cluster noise

    def sample(rows, r):
        cl = r.choice(len(centers), rows, p=weights)
        low = r.standard_normal((rows, RANK), dtype=np.float32) @ basis * (LOWRANK_NORM / math.sqrt(RANK))
        iso = r.standard_normal((rows, d), dtype=np.float32) * (noise[cl, None] / math.sqrt(d))
        x = centers[cl] + low + iso
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    x = np.empty((n, d), np.float32) if out is None else out
    if not fill:
        return x, centers, basis, offset, sample
    for start in range(0, n, 65_536):
        x[start : start + 65_536] = sample(min(65_536, n - start), np.random.default_rng([seed, d, 8, start]))
    # near-duplicate groups: every 20th file's clips are one clip plus a little noise
    spread = math.sqrt(2 * (1 - DUP_COS))  # chord length at that cosine
    for g in range(int(n * DUP_SHARE) // GROUP):
        s = (g * int(1 / DUP_SHARE)) * GROUP
        jitter = rng.standard_normal((GROUP, d), dtype=np.float32) * (spread / math.sqrt(2 * d))
        group = np.asarray(x[s], np.float32) + jitter
        x[s : s + GROUP] = group / np.linalg.norm(group, axis=1, keepdims=True)
    return x, centers, basis, offset, sample


def data_on_disk(path: Path, n, d, seed, log):
    """hard_data in a float16 .npy memory map at `path`, generated once and reused by later runs
    (a `.done` file beside it says the generation finished)."""
    done = path.with_suffix(".done")
    if done.is_file():
        x = np.load(path, mmap_mode="r")
        if x.shape != (n, d):
            raise SystemExit(f"{path} holds {x.shape}, not {(n, d)}: remove it or pass another --data-file")
        log(f"data: reusing {path}")
        return hard_data(n, d, seed, out=x, fill=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    x = np.lib.format.open_memmap(path, mode="w+", dtype=np.float16, shape=(n, d))
    got = hard_data(n, d, seed, out=x)
    x.flush()
    done.write_text("ok")
    return got


def exact_top_k(x, queries, k, block=65_536):
    """(scores, ids) of the exact top k of every query, reading x block by block (float16 rows
    converted per block): the ground truth where x does not fit in RAM as float32."""
    best_s = np.full((len(queries), k), -np.inf, np.float32)
    best_i = np.full((len(queries), k), -1, np.int64)
    for start in range(0, len(x), block):
        scores = queries @ np.asarray(x[start : start + block], np.float32).T
        s = np.concatenate([best_s, scores], axis=1)
        i = np.concatenate([best_i, np.broadcast_to(np.arange(start, start + scores.shape[1]), scores.shape)], axis=1)
        top = np.argpartition(-s, k - 1, axis=1)[:, :k]
        best_s, best_i = np.take_along_axis(s, top, 1), np.take_along_axis(i, top, 1)
    order = np.argsort(-best_s, axis=1)
    return np.take_along_axis(best_s, order, 1), np.take_along_axis(best_i, order, 1)


def make_queries(sample, offset, nq, seed, d):
    r = np.random.default_rng([seed, d, 9])
    near = sample(nq, r)
    cross = near + CROSS_OFFSET * offset + r.standard_normal((nq, d), dtype=np.float32) * (CROSS_NOISE / math.sqrt(d))
    cross /= np.linalg.norm(cross, axis=1, keepdims=True)
    return {"in": np.ascontiguousarray(near, np.float32), "cross": np.ascontiguousarray(cross, np.float32)}


# -- building the avsearch index ---------------------------------------------------------------

def build_index(directory: Path, x: np.ndarray, log):
    from avsearch.store import FileCommit, IndexMeta, Store

    shutil.rmtree(directory, ignore_errors=True)
    n, d = x.shape
    store = Store.create(directory, IndexMeta("bench", "bench", d))
    t0 = time.perf_counter()
    files_per_commit = 400
    for f0 in range(0, n // GROUP, files_per_commit):
        commits = []
        for f in range(f0, min(f0 + files_per_commit, n // GROUP)):
            path = f"/media/v{f:06d}.mp4"
            rows = [{"clip_id": f"c{r}", "row_id": r, "fingerprint": f"fp{f}", "path": path, "start_s": 2.0 * j,
                     "end_s": 2.0 * j + 2, "view": "av", "file_duration_s": 2.0 * GROUP, "indexed_at": 0.0,
                     "model_id": "bench"} for j, r in enumerate(range(f * GROUP, (f + 1) * GROUP))]
            row = {"path": path, "fingerprint": f"fp{f}", "size": 1, "mtime": 0.0, "status": "ok", "n_clips": GROUP}
            # a fresh index: nothing to supersede (the indexer's per-path clean-up would only scan)
            commits.append(FileCommit(row, rows, x[f * GROUP : (f + 1) * GROUP], replace_clips=False))
        store.commit(commits)
    write_s = time.perf_counter() - t0
    del store
    # In a process of its own, so its peak RSS is the build's (issue 14, item 4: the streamed ANN
    # build's memory at the largest N this machine holds), not this process's data.
    done = subprocess.run([sys.executable, __file__, "--finish-writes", str(directory)], check=True,
                          capture_output=True, text=True)
    finish = json.loads(done.stdout.strip().splitlines()[-1])
    log(f"  avsearch index: tables written in {write_s:.0f}s, finish_writes (compact + ANN) "
        f"{finish['finish_writes_s']:.0f}s, peak RSS {finish['finish_writes_peak_rss_mb']:.0f} MB")
    return {"table_write_s": write_s, **finish}


def finish_writes_alone(directory: Path) -> None:
    """What `avsearch index` does after its last commit (compaction, ANN build, save), timed, with
    this process's peak RSS: printed as one JSON line."""
    import resource

    from avsearch.store import Store

    store = Store.open(directory)
    t0 = time.perf_counter()
    store.finish_writes()
    print(json.dumps({"finish_writes_s": time.perf_counter() - t0,
                      "finish_writes_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "ann": store.ann_state()}, default=float))


# -- the other systems -------------------------------------------------------------------------

def build_lance(directory: Path, x: np.ndarray, log):
    import lancedb
    import pyarrow as pa

    shutil.rmtree(directory, ignore_errors=True)
    n, d = x.shape
    db = lancedb.connect(str(directory))
    t = pa.table({"id": np.arange(n, dtype=np.int64),
                  "vector": pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), d)})
    tbl = db.create_table("v", t)
    t0 = time.perf_counter()
    parts = int(round(math.sqrt(n)))
    tbl.create_index(metric="dot", num_partitions=parts, num_sub_vectors=d // 16, num_bits=8, index_type="IVF_PQ",
                     vector_column_name="vector")
    build_s = time.perf_counter() - t0
    idx_bytes = sum(f.stat().st_size for f in directory.rglob("*") if f.is_file() and "_indices" in f.parts)
    log(f"  lance IVF_PQ({parts}, {d // 16}) built in {build_s:.0f}s")

    def search(nprobes, rf):
        def one(q):
            got = (tbl.search(q, vector_column_name="vector").distance_type("dot").nprobes(nprobes)
                   .refine_factor(rf).limit(K).select(["id"]).to_arrow())["id"].to_numpy()
            out = np.full(K, -1, np.int64)
            out[: len(got)] = got
            return out
        return one

    return search, {"build_s": build_s, "num_partitions": parts, "num_sub_vectors": d // 16,
                    "index_bytes_per_vector": idx_bytes / n, "stored_vector_bytes": 4 * d}


def build_hnsw(x, log):
    t0 = time.perf_counter()
    hnsw = faiss.IndexHNSWFlat(x.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
    hnsw.add(x)
    build_s = time.perf_counter() - t0
    log(f"  faiss HNSW32 built in {build_s:.0f}s")
    links = hnsw.hnsw.neighbors.size() * 4 + hnsw.hnsw.offsets.size() * 8
    return hnsw, {"build_s": build_s, "bytes_per_vector": (links + x.nbytes) / len(x)}


# -- measuring ---------------------------------------------------------------------------------

def recall(found, truth):
    return recall_at_k(np.asarray(found), truth[1], K)


def interleaved_latencies(systems: dict, queries: np.ndarray, warm: int = 3):
    """{name: p50/p99} with query i of every system run before query i+1 of any."""
    for q in queries[:warm]:
        for fn in systems.values():
            fn(q)
    lat = {name: [] for name in systems}
    for q in queries:
        for name, fn in systems.items():
            t = time.perf_counter()
            fn(q)
            lat[name].append(time.perf_counter() - t)
    return {name: percentiles_ms(v) | {"max_ms": float(np.max(v)) * 1e3} for name, v in lat.items()}


def codes_baseline(codes, ann, x, qsets, truth, work, log):
    """The served index against one built with other codes (`AnnConfig.codes`) over the same
    vectors, lists and re-scoring vectors, in this run: recall of `AnnIndex.search(q, 10)` and
    single-query latency, interleaved. What the choice of codes alone changes."""
    from avsearch.store.ann import AnnIndex, training_rows

    config = replace(ann.config, codes=codes)
    n = len(x)
    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    sample = np.asarray(x[np.sort(rng.choice(n, training_rows(n, config), replace=False))], np.float32)
    blocks = ((np.arange(s, min(s + 65_536, n)), x[s : s + 65_536]) for s in range(0, n, 65_536))
    other = AnnIndex.build_streamed(n, sample, blocks, config, spill_dir=work)
    out = {"codes": codes, "build_s": time.perf_counter() - t0}
    del sample
    other.rescore = ann.rescore  # the same re-scoring vectors (its own spilled copy is dropped)
    for name, a in ((ann.config.codes, ann), (codes, other)):
        out[name] = {"bytes_per_vector": a.memory_bytes() / n}
        for s, q in qsets.items():
            out[name][f"recall_at_10_{s}"] = recall(a.search(q, K)[1], truth[s])
    for s, q in qsets.items():
        lat = interleaved_latencies({name: (lambda v, a=a: a.search(v[None], K))
                                     for name, a in ((ann.config.codes, ann), (codes, other))}, q)
        for name, v in lat.items():
            out[name].update({f"{key.replace('_ms', '')}_ms_{s}": val for key, val in v.items()})
    log(f"  codes: {json.dumps(out)}")
    return out


def rescore_fetch_costs(store, n, reps=50, pool=256):
    """What one query's re-score costs to read its candidates' vectors three ways (item 1), and to
    read and score them from the float16 file (what a search does since the scoring moved to faiss)."""
    from avsearch.store.ann import _one_omp_thread
    from avsearch.store.schema import sql_in

    ann = store._ann
    rng = np.random.default_rng(0)
    query = np.random.default_rng(1).standard_normal(ann.dim).astype(np.float32)

    def scored_alone(ids):
        with _one_omp_thread():  # as a single query's search runs it (store/ann.py)
            return ann.rescore.inner_products(ids, query)
    out = {"pool": pool, "reps": reps}
    ways = {
        "rescore_file_f16_mmap": lambda ids: ann.rescore.get(ids),
        "rescore_file_f16_scored_by_faiss": lambda ids: scored_alone(ids),
        "lance_take_by_row_address": lambda ids: store.tables.vectors_by_row_ids(ids),
        "lance_row_id_IN_scan": lambda ids: store.tables._scan(store.tables.clips, ["row_id", "vector"],
                                                               sql_in("row_id", ids.tolist())),
    }
    lat = {k: [] for k in ways}
    for _ in range(reps):
        ids = rng.choice(n, pool, replace=False).astype(np.int64)
        for k, fn in ways.items():
            t = time.perf_counter()
            fn(ids)
            lat[k].append(time.perf_counter() - t)
    for k, v in lat.items():
        out[k] = percentiles_ms(v)
    return out


def parts_of_a_search(index, queries, reps=100):
    """p50 of the parts of Index.search (ANN incl. re-score, hits' metadata, the rest)."""
    store = index.store
    t_ann, t_ann10, t_meta, t_all, t_fresh = [], [], [], [], []
    for q in queries[:reps]:
        t = time.perf_counter()
        store.ensure_ann(save=False)  # what every search does first: is the ANN index current?
        t_fresh.append(time.perf_counter() - t)
        t = time.perf_counter()
        store.search(q[None], K)  # what Index.search asks without merging (retriever/search.py)
        t_ann10.append(time.perf_counter() - t)
        t = time.perf_counter()
        _, ids = store.search(q[None], K * 4)  # ... and with merging adjacent clips
        t_ann.append(time.perf_counter() - t)
        t = time.perf_counter()
        store.clip_meta_by_row_ids(ids[0])
        t_meta.append(time.perf_counter() - t)
        t = time.perf_counter()
        index.search(q, k=K, merge_adjacent=False)
        t_all.append(time.perf_counter() - t)
    # the hits' metadata copy (store/tables.py), rebuilt as after a commit: its cost and size
    store.tables._meta = None
    t = time.perf_counter()
    store.clip_meta_by_row_ids(ids[0])
    build_ms = (time.perf_counter() - t) * 1e3
    served = len(store._served_ids(store.ensure_ann(save=False)))
    return {"ensure_ann_freshness_check": percentiles_ms(t_fresh), "store_search_10": percentiles_ms(t_ann10),
            "store_search_40": percentiles_ms(t_ann), "clip_meta_40": percentiles_ms(t_meta),
            "index_search": percentiles_ms(t_all), "meta_copy_build_ms": build_ms,
            "meta_copy_bytes_per_clip": store.tables.meta_cache_bytes() / max(served, 1)}


def merging_with(index, **options):
    """Index.search(q, k=10) as the CLI runs it (adjacent clips merged), with other candidate
    options: the retriever's entry point under the same reading snapshot."""
    from avsearch import Query
    from avsearch.retriever import SearchOptions, search

    def run(q):
        with index.store.reading():
            return search(Query(vector=q), index.store, index.embedder, SearchOptions(k=K, **options),
                          index._decode_options()).hits
    return run


def merging_work(index, ann, qsets, policies):
    """Per candidate policy of the merging path, what a query costs independent of the machine's
    load: ANN searches, PQ scans of the probed lists, vectors re-scored, and queries left with
    fewer than k hits."""
    store, out = index.store, {}
    counts = {"searches": 0, "scans": 0, "rescored": 0}
    real_search, real_get, real_scan = store.search, ann.rescore.get, ann._scan
    real_products = ann.rescore.inner_products

    def counted_search(*a, **kw):
        counts["searches"] += 1
        return real_search(*a, **kw)

    def counted_get(ids):
        counts["rescored"] += len(ids)
        return real_get(ids)

    def counted_products(ids, query):
        counts["rescored"] += len(ids)
        return real_products(ids, query)

    def counted_scan(*a, **kw):
        counts["scans"] += 1
        return real_scan(*a, **kw)

    store.search, ann.rescore.get, ann._scan = counted_search, counted_get, counted_scan
    ann.rescore.inner_products = counted_products
    try:
        for name, fn in policies.items():
            row = {}
            for s, q in qsets.items():
                per = []
                for v in q:
                    counts.update(searches=0, scans=0, rescored=0)
                    hits = fn(v)
                    per.append((counts["searches"], counts["scans"], counts["rescored"], len(hits)))
                a = np.asarray(per, dtype=np.float64)
                row[s] = {"ann_searches_mean": float(a[:, 0].mean()), "ann_searches_max": int(a[:, 0].max()),
                          "pq_scans_mean": float(a[:, 1].mean()), "pq_scans_max": int(a[:, 1].max()),
                          "rescored_mean": float(a[:, 2].mean()), "rescored_p99": float(np.percentile(a[:, 2], 99)),
                          "queries_with_fewer_than_k_hits": int((a[:, 3] < K).sum())}
            out[name] = row
    finally:
        del store.search, ann.rescore.get, ann._scan  # the instance attributes: the class methods again
        del ann.rescore.inner_products
    return out


def omp_check(args, log):
    """Single-query Index.search with faiss's default OpenMP team, with and without the search
    running faiss on the calling thread (ann._FEW_QUERIES), alternating query by query. Added to
    the JSON of an earlier run on the same index directory."""
    import avsearch.store.ann as ann_mod
    from avsearch import Index

    out = Path(args.out)
    result = json.loads(out.read_text())
    faiss.omp_set_num_threads(os.cpu_count())
    _, _, _, offset, sample = hard_data(args.n, args.dim, args.seed, fill=False)
    q = make_queries(sample, offset, args.queries, args.seed, args.dim)["in"]
    index = Index.open(Path(args.work_dir) / "index")
    few = ann_mod._FEW_QUERIES

    def with_few(value):
        def run(v):
            ann_mod._FEW_QUERIES = value
            try:
                index.search(v, k=K, merge_adjacent=False)
            finally:
                ann_mod._FEW_QUERIES = few
        return run

    lat = interleaved_latencies({"calling_thread_only": with_few(few), "omp_team": with_few(0)}, q)
    result["omp_check"] = {"faiss_threads": faiss.omp_get_max_threads(), "load_avg": os.getloadavg(),
                           "queries": len(q), **lat}
    out.write_text(json.dumps(result, indent=2, default=float))
    log(f"omp check: {json.dumps(result['omp_check'])}")


# -- main --------------------------------------------------------------------------------------

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--dim", type=int, default=1024)
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work-dir", default="/tmp/avsearch-search-e2e")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "search-e2e.json"))
    p.add_argument("--lance-nprobes", default="20,50,100,200")
    p.add_argument("--lance-refine", default="1,10,20,50")
    p.add_argument("--hnsw-ef", default="64,128,256,512")
    p.add_argument("--reuse-index", action="store_true", help="use the index an earlier run left in --work-dir")
    p.add_argument("--ours-only", action="store_true", help="skip LanceDB and HNSW (ours and exact flat only)")
    p.add_argument("--no-hnsw", action="store_true", help="skip HNSW (its build takes long at 3584-d)")
    p.add_argument("--omp-check", action="store_true",
                   help="only: re-time Index.search on the index an earlier run built, with faiss's OpenMP team")
    p.add_argument("--data-file", default=None,
                   help="keep the vectors in this float16 .npy memory map (made once, reused), for N that do not "
                        "fit in RAM as float32; implies --ours-only, and exact search is run for the ground truth only")
    p.add_argument("--baseline-codes", default=None, choices=["pq", "rabitq"],
                   help="also build an ANN index with these codes over the same vectors and compare it with "
                        "the served one (AnnIndex.search, same run)")
    p.add_argument("--finish-writes", default=None, help=argparse.SUPPRESS)  # the build's child process
    args = p.parse_args(argv)
    if args.finish_writes:
        return finish_writes_alone(Path(args.finish_writes))
    if args.data_file:
        args.ours_only = True
    if args.omp_check:
        return omp_check(args, lambda m: print(m, flush=True))
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    out = Path(args.out)
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    def log(msg):
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)

    result = {"env": {"started": started, "cpus": os.cpu_count(), "machine": platform.platform(),
                      "faiss_threads": faiss.omp_get_max_threads(), "load_avg_start": os.getloadavg()},
              "data": {"n": args.n, "dim": args.dim, "queries_per_set": args.queries, "dup_share": DUP_SHARE,
                       "dup_group": GROUP, "dup_cos": DUP_COS, "seed": args.seed}, "systems": {}}

    def save():
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2, default=float))

    n, d = args.n, args.dim
    t0 = time.perf_counter()
    if args.data_file:
        x, centers, basis, offset, sample = data_on_disk(Path(args.data_file), n, d, args.seed, log)
        result["data"]["stored_as"] = "float16 memory map (the generator's float32 rows rounded)"
    else:
        x, centers, basis, offset, sample = hard_data(n, d, args.seed)
    qsets = make_queries(sample, offset, args.queries, args.seed, d)
    g = np.asarray(x[:GROUP], np.float32)
    result["data"]["measured_within_group_cos"] = float((g @ g.T)[np.triu_indices(GROUP, 1)].mean())
    log(f"data {n}x{d} in {time.perf_counter() - t0:.0f}s")

    t0 = time.perf_counter()
    if args.data_file:
        flat = None  # 14 GB as float32: exact search only for the ground truth, block by block
        cached = Path(args.data_file).with_suffix(f".truth-{args.queries}.npz")
        if cached.is_file():  # the same data and queries (both seeded): an earlier run's truth
            got = np.load(cached)
            truth = {s: (got[f"{s}_scores"], got[f"{s}_ids"]) for s in qsets}
        else:
            truth = {s: exact_top_k(x, q, K) for s, q in qsets.items()}
            result["exact_ground_truth_s"] = time.perf_counter() - t0
            np.savez(cached, **{f"{s}_{part}": v for s, t in truth.items() for part, v in zip(("scores", "ids"), t)})
    else:
        flat = faiss.IndexFlatIP(d)
        flat.add(x)
        truth = {s: flat.search(q, K) for s, q in qsets.items()}

    from avsearch import Index

    if args.reuse_index and (work / "index" / "ann").is_dir():
        result["build"] = {"reused": str(work / "index")}
    else:
        result["build"] = build_index(work / "index", x, log)
    save()
    index = Index.open(work / "index")
    store = index.store
    ann = store.ensure_ann(save=False)

    def ours(q):
        return index.search(q, k=K, merge_adjacent=False)

    def ours_ids(q):
        return [int(h.clip_id[1:]) for h in ours(q)]

    # recall through Index.search, and of AnnIndex.search(q, 10) itself (no 4x over-fetch)
    sys_ours = {"path": "Index.search", "n": n, "dim": d}
    for s, q in qsets.items():
        sys_ours[f"recall_at_10_{s}"] = recall([ours_ids(v) for v in q], truth[s])
        sys_ours[f"ann_search_k10_recall_{s}"] = recall(ann.search(q, K)[1], truth[s])
    log(f"  ours recall in/cross {sys_ours['recall_at_10_in']:.3f}/{sys_ours['recall_at_10_cross']:.3f} "
        f"(AnnIndex.search k=10: {sys_ours['ann_search_k10_recall_in']:.3f}/{sys_ours['ann_search_k10_recall_cross']:.3f})")
    sys_ours["bytes_per_vector"] = ann.memory_bytes() / n
    sys_ours["rescore_file_bytes_per_vector"] = ann.rescore_bytes() / n
    result["systems"]["avsearch"] = sys_ours
    if args.baseline_codes:
        result["codes_baseline"] = codes_baseline(args.baseline_codes, ann, x, qsets, truth, work, log)
        save()
    result["rescore_fetch"] = rescore_fetch_costs(store, n)
    log(f"  re-score fetch of 256: {json.dumps(result['rescore_fetch'])}")
    save()

    others = not args.ours_only
    if others:
        # LanceDB IVF_PQ: the cheapest sweep point reaching our recall on both sets
        lance_search, lance_info = build_lance(work / "lance", x, log)
        want = min(sys_ours["recall_at_10_in"], sys_ours["recall_at_10_cross"])
        sweep, chosen = [], None
        sub = {s: q[:50] for s, q in qsets.items()}
        for npb in [int(v) for v in args.lance_nprobes.split(",")]:
            for rf in [int(v) for v in args.lance_refine.split(",")]:
                fn = lance_search(npb, rf)
                t = time.perf_counter()
                rec = {s: recall([fn(v) for v in q], (None, truth[s][1][:50])) for s, q in sub.items()}
                ms = (time.perf_counter() - t) * 1e3 / 100
                sweep.append({"nprobes": npb, "refine_factor": rf, "recall_in": rec["in"], "recall_cross": rec["cross"],
                              "mean_ms": ms})
                log(f"    lance nprobes={npb} rf={rf}: {rec['in']:.3f}/{rec['cross']:.3f} {ms:.1f} ms")
                if chosen is None and min(rec.values()) >= want:
                    chosen = (npb, rf)
        if chosen is None:  # none reached it: the best recall point
            best = max(sweep, key=lambda s: min(s["recall_in"], s["recall_cross"]))
            chosen = (best["nprobes"], best["refine_factor"])
        lance_info.update({"sweep_on_first_50": sweep, "nprobes": chosen[0], "refine_factor": chosen[1]})
        lance_fn = lance_search(*chosen)
        result["systems"]["lancedb_ivf_pq"] = lance_info
        save()

    hnsw = None
    if others and not args.no_hnsw:
        hnsw, hnsw_info = build_hnsw(x, log)
        ef_pick = None
        for ef in [int(v) for v in args.hnsw_ef.split(",")]:
            hnsw.hnsw.efSearch = ef
            rec = {s: recall(hnsw.search(q, K)[1], truth[s]) for s, q in qsets.items()}
            hnsw_info.setdefault("sweep", []).append({"efSearch": ef, "recall_in": rec["in"], "recall_cross": rec["cross"]})
            if ef_pick is None and min(rec.values()) >= want:
                ef_pick = ef
        hnsw.hnsw.efSearch = ef_pick or int(args.hnsw_ef.split(",")[-1])
        hnsw_info["efSearch"] = hnsw.hnsw.efSearch
        result["systems"]["faiss_hnsw32"] = hnsw_info

    merging_fixed = merging_with(index, candidate_factor=4, max_candidate_factor=4)
    result["merging_work"] = merging_work(index, ann, qsets, {
        "adaptive (default: 2 x k, more while < k hits left)": lambda q: index.search(q, k=K),
        "fixed 4 x k (before)": merging_fixed})
    log(f"  merging work: {json.dumps(result['merging_work'])}")
    save()
    def one_scan_thread(q):  # the list scan on the calling thread alone (AnnConfig.scan_threads=1)
        default = ann.config
        ann.config = replace(default, scan_threads=1)
        try:
            return ours(q)
        finally:
            ann.config = default

    systems = {"avsearch": ours, "avsearch_merging": lambda q: index.search(q, k=K),  # default: merges adjacent clips
               "avsearch_merging_fixed_4k": merging_fixed, "avsearch_one_scan_thread": one_scan_thread}
    if flat is not None:
        systems["exact_flat"] = lambda q: flat.search(q[None], K)
    if others:
        systems["lancedb_ivf_pq"] = lance_fn
    if hnsw is not None:
        systems["faiss_hnsw32"] = lambda q: hnsw.search(q[None], K)
    for s, q in qsets.items():
        lat = interleaved_latencies(systems, q)
        for name, v in lat.items():
            for key, val in v.items():
                result["systems"].setdefault(name, {})[f"{key.replace('_ms', '')}_ms_{s}"] = val
    # recall and batched throughput of the others
    for name, fn in (("lancedb_ivf_pq", lance_fn),) if others else ():
        for s, q in qsets.items():
            result["systems"][name][f"recall_at_10_{s}"] = recall([fn(v) for v in q], truth[s])
    for name, idx in (("faiss_hnsw32", hnsw), ("exact_flat", flat)):
        if idx is None:
            continue
        for s, q in qsets.items():
            result["systems"].setdefault(name, {})[f"recall_at_10_{s}"] = recall(idx.search(q, K)[1], truth[s])
    allq = np.concatenate(list(qsets.values()))
    batched = {
        "avsearch": lambda: store.clip_meta_by_row_ids(store.search(allq, K)[1].ravel()),
    }
    if flat is not None:
        batched["exact_flat"] = lambda: flat.search(allq, K)
    if others:
        batched["lancedb_ivf_pq"] = lambda: [lance_fn(v) for v in allq]
    if hnsw is not None:
        batched["faiss_hnsw32"] = lambda: hnsw.search(allq, K)
    for name, fn in batched.items():
        t = time.perf_counter()
        fn()
        result["systems"][name]["qps_batched"] = len(allq) / (time.perf_counter() - t)
    result["systems"]["avsearch"]["qps_batched_path"] = "Store.search(batch) + clip_meta_by_row_ids"
    if others:
        result["systems"]["lancedb_ivf_pq"]["qps_batched_path"] = "one query after another (no multi-vector query)"
        result["systems"]["lancedb_ivf_pq"]["bytes_per_vector"] = result["systems"]["lancedb_ivf_pq"]["index_bytes_per_vector"]
    if flat is not None:
        result["systems"]["exact_flat"]["bytes_per_vector"] = 4 * d
    for name, v in result["systems"].items():
        v.setdefault("n", n)
        v.setdefault("dim", d)
        for key in ("p50_ms", "p99_ms"):
            if f"{key}_in" in v:
                v[key] = max(v[f"{key}_in"], v[f"{key}_cross"])
    result["parts_of_index_search"] = parts_of_a_search(index, qsets["in"])
    result["env"]["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    result["env"]["load_avg_end"] = os.getloadavg()
    save()
    for name, v in result["systems"].items():
        log(f"{name:16s} R@10 {v.get('recall_at_10_in', float('nan')):.3f}/{v.get('recall_at_10_cross', float('nan')):.3f}"
            f"  p50 {v.get('p50_ms', float('nan')):.2f}  p99 {v.get('p99_ms', float('nan')):.2f} ms"
            f"  qps {v.get('qps_batched', float('nan')):.0f}")


if __name__ == "__main__":
    main()
