"""ANN benchmark (issue #5, items 3-4): exact flat vs avsearch's AnnIndex (OPQ+IVF-PQ + exact re-score)
vs LanceDB's own IVF_PQ index, measured side by side in one run.

Data: synthetic clustered unit vectors (seeded, generated in chunks into a float16 memmap under
--data-dir), with a shared low-rank component like real embeddings. Two query sets:

* ``near``  -- drawn from the data distribution (same-modality search);
* ``cross`` -- the same kind of query pushed off the data by one common offset direction plus
  noise (a text query against video clips: it sits in none of the data clusters).

Systems, per (N, dim):

* ``flat``  -- FAISS IndexFlatIP over float32 blocks converted from the float16 store: the ground
  truth and the speed baseline;
* ``ours``  -- avsearch.store.ann.AnnIndex with its defaults; k*refine_factor candidates are re-scored
  exactly with vectors gathered row by row from the float16 memmap (never a scan);
* ``lance`` -- a LanceDB table of the same float16 vectors with ``create_index(metric="dot",
  index_type="IVF_PQ")``, queried with ``nprobes`` and ``refine_factor``.

Reported: recall@10 (plain and tie-aware, against exact), p50/p99 single-query latency (index +
exact re-score, query embedding excluded), batched queries/s, build time, index bytes per vector
beside the stored vectors. nprobe x refine_factor are swept for both ANN systems and drawn as
recall-vs-latency curves (PNG). Results go to <out>/ann.json, ann.md, ann.png and are rewritten after
every phase, so an interrupted run still leaves what it measured.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import resource
import shutil
import sys
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import faiss  # noqa: E402

from avsearch.store.ann import AnnConfig, AnnIndex  # noqa: E402
from metrics import percentiles_ms, recall_at_k, tie_aware_recall_at_k  # noqa: E402

K = 10
CHUNK = 65_536
RANK = 48  # shared low-rank component of the data
LOWRANK_NORM = 0.7  # norm of the low-rank part (cluster centre has norm 1)
NOISE_NORM = 0.5  # norm of the isotropic part
CROSS_OFFSET = 1.0  # norm of the common offset added to cross-modal queries
CROSS_NOISE = 0.5  # extra isotropic noise of cross-modal queries


# -- data ------------------------------------------------------------------------------------

def _generator(seed, n, d):
    rng = np.random.default_rng([seed, d, 0])
    n_clusters = max(64, n // 500)
    centers = rng.standard_normal((n_clusters, d), dtype=np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    basis = rng.standard_normal((RANK, d), dtype=np.float32) / math.sqrt(d)
    offset = rng.standard_normal(d, dtype=np.float32)
    offset /= np.linalg.norm(offset)
    return centers, basis, offset


def _sample(rng, centers, basis, rows):
    d = centers.shape[1]
    cl = rng.integers(0, len(centers), rows)
    low = rng.standard_normal((rows, RANK), dtype=np.float32) @ basis * (LOWRANK_NORM / math.sqrt(RANK))
    iso = rng.standard_normal((rows, d), dtype=np.float32) * (NOISE_NORM / math.sqrt(d))
    x = centers[cl] + low + iso
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def make_data(data_dir: Path, n: int, d: int, seed: int, log):
    """A float16 memmap of n unit vectors (cached on disk by n, d, seed)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / f"vec_{n}x{d}_s{seed}.f16"
    done = path.with_suffix(".done")
    centers, basis, offset = _generator(seed, n, d)
    if not done.exists():
        t0 = time.perf_counter()
        mm = np.memmap(path, dtype=np.float16, mode="w+", shape=(n, d))

        def fill(ci):
            start = ci * CHUNK
            rows = min(CHUNK, n - start)
            rng = np.random.default_rng([seed, d, 1, ci])
            mm[start : start + rows] = _sample(rng, centers, basis, rows).astype(np.float16)

        with ThreadPoolExecutor(2) as pool:
            list(pool.map(fill, range(math.ceil(n / CHUNK))))
        mm.flush()
        del mm
        done.write_text("ok")
        log(f"  generated {n}x{d} float16 in {time.perf_counter() - t0:.1f}s -> {path}")
    mm = np.memmap(path, dtype=np.float16, mode="r", shape=(n, d))
    return mm, centers, basis, offset


def make_queries(centers, basis, offset, nq, seed):
    d = centers.shape[1]
    rng = np.random.default_rng([seed, d, 2])
    near = _sample(rng, centers, basis, nq)
    cross = near + CROSS_OFFSET * offset + rng.standard_normal((nq, d), dtype=np.float32) * (CROSS_NOISE / math.sqrt(d))
    cross /= np.linalg.norm(cross, axis=1, keepdims=True)
    return {"near": np.ascontiguousarray(near), "cross": np.ascontiguousarray(cross.astype(np.float32))}


# -- exact -----------------------------------------------------------------------------------

def exact_topk(mm, queries, k):
    """Exact inner-product top-k by FAISS IndexFlatIP over float32 blocks of the float16 store."""
    n, d = mm.shape
    nq = len(queries)
    best_s = np.full((nq, k), -np.inf, dtype=np.float32)
    best_i = np.full((nq, k), -1, dtype=np.int64)
    for start in range(0, n, CHUNK):
        blk = np.asarray(mm[start : start + CHUNK], dtype=np.float32)
        flat = faiss.IndexFlatIP(d)
        flat.add(blk)
        s, i = flat.search(queries, k)
        s_all = np.concatenate([best_s, s], axis=1)
        i_all = np.concatenate([best_i, i + start], axis=1)
        order = np.argsort(-s_all, axis=1, kind="stable")[:, :k]
        best_s = np.take_along_axis(s_all, order, 1)
        best_i = np.take_along_axis(i_all, order, 1)
    return best_s, best_i


def exact_scores_of(mm, queries, ids):
    out = np.full(ids.shape, -np.inf, dtype=np.float32)
    for r in range(len(ids)):
        ok = ids[r] >= 0
        if ok.any():
            out[r, ok] = np.asarray(mm[ids[r][ok]], dtype=np.float32) @ queries[r]
    return out


def quality(mm, queries, ids, truth):
    true_s, true_i = truth
    ids = np.asarray(ids, dtype=np.int64)
    ex = exact_scores_of(mm, queries, ids)
    return {"recall": recall_at_k(ids, true_i, K), "recall_tie": tie_aware_recall_at_k(ex, ids, true_s, K)}


# -- ours ------------------------------------------------------------------------------------

def bench_ours(mm, qsets, truths, args, log):
    n, d = mm.shape
    cfg = AnnConfig(use_gpu=False, **({"train_size": args.train_size} if args.train_size else {}))
    ids = np.arange(n, dtype=np.int64)
    t0 = time.perf_counter()
    ann = AnnIndex.build(mm, ids, cfg)
    build_s = time.perf_counter() - t0
    nlist = faiss.extract_index_ivf(ann.index).nlist if ann.kind == "ivf" else 0
    default_nprobe = cfg.choose_nprobe(nlist) if nlist else 0
    mem = ann.memory_bytes()
    info = {"kind": ann.kind, "build_s": build_s, "nlist": nlist, "default_nprobe": default_nprobe,
            "default_refine_factor": cfg.refine_factor, "trained_on": ann.trained_on,
            "index_bytes_per_vector": mem / n,
            "config": {k: v for k, v in dataclasses.asdict(cfg).items()}}
    ivf = faiss.extract_index_ivf(ann.index) if nlist else None
    if ivf is not None:
        info["code_size"] = int(ivf.code_size)
        info["pq_nbits"] = int(faiss.downcast_index(ivf).pq.nbits)
    log(f"  ours: {ann.kind} nlist={nlist} built in {build_s:.1f}s, {mem / n:.1f} B/vector")

    def fetch(idx):
        return mm[idx]

    probes = sorted({p for p in args.nprobes + [default_nprobe] if 0 < p <= nlist}) if nlist else [0]
    points = []
    for p in probes:
        for rf in args.refine:
            ann.config = dataclasses.replace(cfg, nprobe=p or None, refine_factor=rf)
            pt = {"nprobe": p, "refine_factor": rf, "default": p == default_nprobe and rf == cfg.refine_factor}
            for name, q in qsets.items():
                pt[name] = measure(lambda x: ann.search(x, K, fetch_vectors=fetch)[1], mm, q, truths[name], args)
            points.append(pt)
            log("    ours nprobe=%d rf=%d  %s" % (p, rf, _fmt_pt(pt)))
    ann.config = cfg
    info["points"] = points
    return info


def measure(search, mm, q, truth, args):
    """Batched run (recall + queries/s), then single-query latencies on the first args.single queries."""
    t0 = time.perf_counter()
    ids = search(q)
    batch_s = time.perf_counter() - t0
    res = quality(mm, q, ids, truth)
    res["batch_qps"] = len(q) / batch_s
    for i in range(min(3, len(q))):  # warm-up
        search(q[i : i + 1])
    lat = []
    for i in range(min(args.single, len(q))):
        t = time.perf_counter()
        search(q[i : i + 1])
        lat.append(time.perf_counter() - t)
    res.update(percentiles_ms(lat))
    return res


def _fmt_pt(pt):
    return "  ".join(f"{s}: R={pt[s]['recall']:.3f}/{pt[s]['recall_tie']:.3f} p50={pt[s]['p50_ms']:.2f} "
                     f"p99={pt[s]['p99_ms']:.2f}ms qps={pt[s]['batch_qps']:.0f}" for s in ("near", "cross") if s in pt)


# -- lance -----------------------------------------------------------------------------------

def bench_lance(mm, qsets, truths, args, log):
    import lancedb
    import pyarrow as pa

    n, d = mm.shape
    root = Path(args.data_dir) / f"lance_{n}x{d}"
    shutil.rmtree(root, ignore_errors=True)
    db = lancedb.connect(str(root))
    schema = pa.schema([pa.field("id", pa.int64()), pa.field("vector", pa.list_(pa.float16(), d))])

    def batches():
        for start in range(0, n, CHUNK):
            blk = np.ascontiguousarray(mm[start : start + CHUNK])
            vec = pa.FixedSizeListArray.from_arrays(pa.array(blk.reshape(-1), type=pa.float16()), d)
            yield pa.RecordBatch.from_arrays([pa.array(np.arange(start, start + len(blk), dtype=np.int64)), vec],
                                             schema=schema)

    t0 = time.perf_counter()
    tbl = db.create_table("clips", data=pa.RecordBatchReader.from_batches(schema, batches()), mode="overwrite")
    write_s = time.perf_counter() - t0
    parts = args.lance_partitions or max(1, int(round(math.sqrt(n))))
    sub = max(1, d // args.lance_sub_dims)
    t0 = time.perf_counter()
    tbl.create_index(metric="dot", num_partitions=parts, num_sub_vectors=sub, num_bits=8, index_type="IVF_PQ",
                     max_iterations=args.lance_max_iter, sample_rate=args.lance_sample_rate,
                     vector_column_name="vector")
    build_s = time.perf_counter() - t0
    idx_bytes = sum(f.stat().st_size for f in root.rglob("*") if f.is_file() and "_indices" in f.parts)
    info = {"table_write_s": write_s, "build_s": build_s, "num_partitions": parts, "num_sub_vectors": sub,
            "num_bits": 8, "max_iterations": args.lance_max_iter, "sample_rate": args.lance_sample_rate,
            "index_bytes_per_vector": idx_bytes / n, "stored_dtype": "float16"}
    log(f"  lance: table written in {write_s:.1f}s, IVF_PQ({parts}, {sub}) built in {build_s:.1f}s, "
        f"{idx_bytes / n:.1f} B/vector")

    def make_search(nprobes, rf):
        def one(qv):
            t = (tbl.search(qv, vector_column_name="vector").distance_type("dot").nprobes(nprobes)
                 .refine_factor(rf).limit(K).select(["id"]).to_arrow())
            out = np.full(K, -1, np.int64)
            got = t["id"].to_numpy()
            out[: len(got)] = got
            return out

        def search(q):
            if len(q) == 1:
                return one(q[0])[None]
            return np.stack([one(v) for v in q])
        return search

    points = []
    for p in sorted({p for p in args.lance_nprobes if p <= parts}):
        for rf in args.refine:
            s = make_search(p, rf)
            pt = {"nprobes": p, "refine_factor": rf}
            for name, q in qsets.items():
                pt[name] = measure(s, mm, q, truths[name], args)
            points.append(pt)
            log("    lance nprobes=%d rf=%d  %s" % (p, rf, _fmt_pt(pt)))
    info["points"] = points
    info["batched_note"] = "lancedb queries issued one after another (no multi-vector query in this API)"
    return info


# -- summary ---------------------------------------------------------------------------------

def speedups(rec):
    """At each recall level: the fastest p50 (and qps) of each system reaching it on both query sets."""
    out = []
    ours, lance = rec.get("ours", {}).get("points", []), rec.get("lance", {}).get("points", [])
    for level in (0.90, 0.95, 0.97, 0.98, 0.99):
        row = {"recall": level}
        for name, pts in (("ours", ours), ("lance", lance)):
            ok = [p for p in pts if min(p["near"]["recall"], p["cross"]["recall"]) >= level]
            if ok:
                best = min(ok, key=lambda p: max(p["near"]["p50_ms"], p["cross"]["p50_ms"]))
                row[name] = {"p50_ms": max(best["near"]["p50_ms"], best["cross"]["p50_ms"]),
                             "p99_ms": max(best["near"]["p99_ms"], best["cross"]["p99_ms"]),
                             "qps": min(best["near"]["batch_qps"], best["cross"]["batch_qps"]),
                             "setting": {k: best[k] for k in ("nprobe", "nprobes", "refine_factor") if k in best}}
        if "ours" in row and "lance" in row:
            row["p50_speedup"] = row["lance"]["p50_ms"] / row["ours"]["p50_ms"]
            row["qps_speedup"] = row["ours"]["qps"] / row["lance"]["qps"]
        out.append(row)
    return out


def write_results(out: Path, results: dict, log):
    out.mkdir(parents=True, exist_ok=True)
    for rec in results["runs"]:
        if "ours" in rec and "points" in rec["ours"]:
            rec["at_equal_recall"] = speedups(rec)
    (out / "ann.json").write_text(json.dumps(results, indent=2, default=float))
    (out / "ann.md").write_text(render_md(results))
    try:
        plot(out / "ann.png", results)
    except Exception as err:  # noqa: BLE001 - the plot is optional, the numbers are not
        log(f"  plot failed: {err}")


def _default_point(rec):
    pts = rec.get("ours", {}).get("points", [])
    return next((p for p in pts if p.get("default")), None)


def render_md(results):
    L = ["# ANN benchmark: exact flat vs avsearch AnnIndex (OPQ+IVF-PQ + exact re-score) vs LanceDB IVF_PQ", ""]
    e = results["env"]
    L += [f"Run {e['started']} - {e.get('finished', 'unfinished')}, {e['cpus']} CPU cores (shared), "
          f"faiss {e['faiss']} ({e['threads']} threads), lancedb {e.get('lancedb', '?')}, numpy {e['numpy']}. "
          f"Command: `{e['command']}`.", "",
          f"k = {K}; {results['params']['queries']} queries per set (recall, batched queries/s), latency percentiles "
          f"over the first {results['params']['single']} of each set issued one at a time. Latency = ANN search + "
          "exact re-score of the candidates gathered from the float16 store (query embedding excluded). "
          "Recall = plain id-overlap recall@10 vs exact (tie-aware in brackets). Index bytes/vector are beside "
          "the stored float16 vectors. Everything below was measured in this one run; nothing is extrapolated.", ""]
    L += ["## Summary at each system's default / chosen setting", "",
          "| N | dim | system | setting | build s | index B/vec | recall near | recall cross | p50 ms (near/cross) | p99 ms (near/cross) | batched q/s (near/cross) |",
          "|---|---|---|---|---|---|---|---|---|---|---|"]
    for rec in results["runs"]:
        n, d = rec["n"], rec["dim"]
        if "flat" in rec:
            f = rec["flat"]
            L.append(f"| {n:,} | {d} | flat (exact) | float16->float32 blocks | - | {d * 2} (stored only) | 1.000 | 1.000 | "
                     f"{f['single_p50_ms']:.1f} (n={f['single_count']}) | - | {f['batch_qps']:.1f} |")
        dp = _default_point(rec)
        if dp:
            o = rec["ours"]
            L.append(f"| {n:,} | {d} | ours (defaults) | nlist={o['nlist']} nprobe={dp['nprobe']} rf={dp['refine_factor']} | "
                     f"{o['build_s']:.1f} | {o['index_bytes_per_vector']:.1f} | {dp['near']['recall']:.3f} ({dp['near']['recall_tie']:.3f}) | "
                     f"{dp['cross']['recall']:.3f} ({dp['cross']['recall_tie']:.3f}) | {dp['near']['p50_ms']:.2f} / {dp['cross']['p50_ms']:.2f} | "
                     f"{dp['near']['p99_ms']:.2f} / {dp['cross']['p99_ms']:.2f} | {dp['near']['batch_qps']:.0f} / {dp['cross']['batch_qps']:.0f} |")
        if "lance" in rec and "points" in rec["lance"]:
            la = rec["lance"]
            best = max(la["points"], key=lambda p: (min(p["near"]["recall"], p["cross"]["recall"]), -p["near"]["p50_ms"]))
            L.append(f"| {n:,} | {d} | lance (best recall) | P={la['num_partitions']} sub={la['num_sub_vectors']} nprobes={best['nprobes']} rf={best['refine_factor']} | "
                     f"{la['build_s']:.1f} | {la['index_bytes_per_vector']:.1f} | {best['near']['recall']:.3f} ({best['near']['recall_tie']:.3f}) | "
                     f"{best['cross']['recall']:.3f} ({best['cross']['recall_tie']:.3f}) | {best['near']['p50_ms']:.2f} / {best['cross']['p50_ms']:.2f} | "
                     f"{best['near']['p99_ms']:.2f} / {best['cross']['p99_ms']:.2f} | {best['near']['batch_qps']:.0f} / {best['cross']['batch_qps']:.0f} |")
        for what in ("ours", "lance"):
            if what in rec and "error" in rec[what]:
                L.append(f"| {n:,} | {d} | {what} | FAILED: {rec[what]['error'][:120]} | | | | | | | |")
    L.append("")
    for rec in results["runs"]:
        n, d = rec["n"], rec["dim"]
        L += [f"## N = {n:,}, dim = {d}", ""]
        if "data_s" in rec:
            L.append(f"Data: {rec['data_s']:.1f}s to generate/open; ground truth (flat, both query sets batched) "
                     f"{rec.get('flat', {}).get('batch_s', float('nan')):.1f}s.")
        if "ours" in rec and "build_s" in rec["ours"]:
            o = rec["ours"]
            L.append(f"Ours: {o['kind']}, nlist={o['nlist']}, PQ {o.get('code_size', '?')} B/code x {o.get('pq_nbits', '?')} bits, "
                     f"trained on a sample of the {o['trained_on']:,}, build {o['build_s']:.1f}s, {o['index_bytes_per_vector']:.1f} B/vector.")
        if "lance" in rec and "build_s" in rec["lance"]:
            la = rec["lance"]
            L.append(f"LanceDB: IVF_PQ num_partitions={la['num_partitions']}, num_sub_vectors={la['num_sub_vectors']}, "
                     f"max_iterations={la['max_iterations']}, sample_rate={la['sample_rate']}, table write {la['table_write_s']:.1f}s, "
                     f"index build {la['build_s']:.1f}s, {la['index_bytes_per_vector']:.1f} B/vector (index files on disk).")
        L.append("")
        if rec.get("at_equal_recall"):
            L += ["At equal recall (both query sets must reach the level; slowest set's p50 / p99, lowest q/s):", "",
                  "| recall@10 >= | ours setting | ours p50 / p99 ms | ours q/s | lance setting | lance p50 / p99 ms | lance q/s | p50 speed-up | q/s speed-up |",
                  "|---|---|---|---|---|---|---|---|---|"]
            for r in rec["at_equal_recall"]:
                o, la = r.get("ours"), r.get("lance")
                fo = f"{o['setting']} | {o['p50_ms']:.2f} / {o['p99_ms']:.2f} | {o['qps']:.0f}" if o else "not reached | - | -"
                fl = f"{la['setting']} | {la['p50_ms']:.2f} / {la['p99_ms']:.2f} | {la['qps']:.0f}" if la else "not reached | - | -"
                sp = f"{r['p50_speedup']:.1f}x | {r['qps_speedup']:.1f}x" if "p50_speedup" in r else "- | -"
                L.append(f"| {r['recall']:.2f} | {fo} | {fl} | {sp} |")
            L.append("")
        for what, key in (("ours", "nprobe"), ("lance", "nprobes")):
            pts = rec.get(what, {}).get("points")
            if not pts:
                continue
            L += [f"Sweep, {what}:", "", f"| {key} | refine | recall near (tie) | recall cross (tie) | p50 near/cross ms | p99 near/cross ms | q/s near/cross |",
                  "|---|---|---|---|---|---|---|"]
            for p in pts:
                L.append(f"| {p[key]}{' (default)' if p.get('default') else ''} | {p['refine_factor']} | {p['near']['recall']:.3f} ({p['near']['recall_tie']:.3f}) | "
                         f"{p['cross']['recall']:.3f} ({p['cross']['recall_tie']:.3f}) | {p['near']['p50_ms']:.2f} / {p['cross']['p50_ms']:.2f} | "
                         f"{p['near']['p99_ms']:.2f} / {p['cross']['p99_ms']:.2f} | {p['near']['batch_qps']:.0f} / {p['cross']['batch_qps']:.0f} |")
            L.append("")
    if results.get("notes"):
        L += ["## Notes", ""] + [f"- {x}" for x in results["notes"]] + [""]
    return "\n".join(L)


def plot(path, results):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [r for r in results["runs"] if r.get("ours", {}).get("points")]
    if not runs:
        return
    fig, axes = plt.subplots(len(runs), 2, figsize=(12, 4.2 * len(runs)), squeeze=False)
    for row, rec in zip(axes, runs):
        for ax, qs in zip(row, ("near", "cross")):
            for what, key, marker in (("ours", "nprobe", "o"), ("lance", "nprobes", "s")):
                pts = rec.get(what, {}).get("points", [])
                for rf in sorted({p["refine_factor"] for p in pts}):
                    sel = sorted((p for p in pts if p["refine_factor"] == rf), key=lambda p: p[key])
                    xs = [p[qs]["p50_ms"] for p in sel]
                    ys = [p[qs]["recall"] for p in sel]
                    ax.plot(xs, ys, marker=marker, ls="-" if what == "ours" else "--", label=f"{what} rf={rf}")
                    for p, x, y in zip(sel, xs, ys):
                        ax.annotate(str(p[key]), (x, y), fontsize=6, xytext=(2, -7), textcoords="offset points")
            if "flat" in rec:
                ax.plot([rec["flat"]["single_p50_ms"]], [1.0], "k*", ms=10, label="flat exact")
            ax.axhline(0.97, color="grey", lw=0.8, ls=":")
            ax.axvline(5.0, color="grey", lw=0.8, ls=":")
            ax.set_xscale("log")
            ax.set_xlabel("single-query p50 latency, ms (log)")
            ax.set_ylabel("recall@10")
            ax.set_title(f"N={rec['n']:,} d={rec['dim']} — {qs} queries (labels: nprobe(s))")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- main ------------------------------------------------------------------------------------

def _ints(s):
    return [int(float(x)) for x in str(s).split(",") if x.strip()]


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dims", default="1024,3584", help="comma-separated vector dims (default 1024,3584; 3584 = WAVE)")
    ap.add_argument("--sizes", default="100000,1000000", help="comma-separated collection sizes N (default 100000,1000000)")
    ap.add_argument("--quick", action="store_true",
                    help="a few-minute check: N=60000 (just above the flat threshold), 60 queries, a short sweep")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"),
                    help="folder for ann.json, ann.md, ann.png (default benchmarks/results)")
    ap.add_argument("--data-dir", default="/tmp/avsearch_ann_bench",
                    help="where the float16 memmaps and LanceDB tables go (cached memmaps are reused)")
    ap.add_argument("--queries", type=int, default=200, help="queries per set (near, cross) for recall and q/s")
    ap.add_argument("--single", type=int, default=100, help="queries per set timed one at a time for p50/p99")
    ap.add_argument("--nprobes", default="8,16,32,64,128,256", help="our nprobe sweep (the default rule's value is added)")
    ap.add_argument("--refine", default="4,10,20", help="refine_factor sweep, both ANN systems")
    ap.add_argument("--lance-nprobes", default="5,10,20,40,80,160", help="LanceDB nprobes sweep")
    ap.add_argument("--lance-partitions", type=int, default=0, help="LanceDB num_partitions (0: sqrt(N))")
    ap.add_argument("--lance-sub-dims", type=int, default=16, help="dims per LanceDB PQ sub-vector (num_sub_vectors = dim / this)")
    ap.add_argument("--lance-max-iter", type=int, default=20, help="LanceDB k-means max_iterations")
    ap.add_argument("--lance-sample-rate", type=int, default=128, help="LanceDB training sample_rate (points per partition)")
    ap.add_argument("--no-lance", action="store_true", help="skip LanceDB")
    ap.add_argument("--lance-dims", default="", help="run LanceDB only at these dims (default: all)")
    ap.add_argument("--train-size", type=int, default=0, help="override AnnConfig.train_size (0: the default rule)")
    ap.add_argument("--threads", type=int, default=2, help="faiss OpenMP threads (default 2)")
    ap.add_argument("--flat-single-budget", type=float, default=30.0,
                    help="seconds spent timing single-query exact flat search per config (at least 2 queries)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    if a.quick:
        a.sizes, a.queries, a.single = "60000", min(a.queries, 60), min(a.single, 30)
        a.nprobes, a.refine, a.lance_nprobes = "16,64", "4,10", "10,40"
    a.dims, a.sizes = _ints(a.dims), _ints(a.sizes)
    a.nprobes, a.refine, a.lance_nprobes = _ints(a.nprobes), _ints(a.refine), _ints(a.lance_nprobes)
    return a


def main(argv=None):
    args = parse_args(argv)
    faiss.omp_set_num_threads(args.threads)
    out = Path(args.out)
    t_start = time.time()

    def log(msg):
        print(f"[{time.time() - t_start:7.1f}s] {msg}", flush=True)

    env = {"started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "cpus": os.cpu_count(),
           "threads": args.threads, "faiss": faiss.__version__, "numpy": np.__version__,
           "python": platform.python_version(), "command": "python benchmarks/ann.py " + " ".join(sys.argv[1:])}
    try:
        import lancedb
        env["lancedb"] = lancedb.__version__
    except ImportError:
        args.no_lance = True
    params = {k: v for k, v in vars(args).items()}
    params.update({"k": K, "rank": RANK, "lowrank_norm": LOWRANK_NORM, "noise_norm": NOISE_NORM,
                   "cross_offset": CROSS_OFFSET, "cross_noise": CROSS_NOISE, "ann_defaults": dataclasses.asdict(AnnConfig())})
    results = {"env": env, "params": params, "runs": [], "notes": []}
    configs = sorted(((n, d) for n in args.sizes for d in args.dims), key=lambda c: c[0] * c[1])
    for n, d in configs:
        rec = {"n": n, "dim": d, "status": "running"}
        results["runs"].append(rec)
        log(f"== N={n:,} dim={d}")
        try:
            t0 = time.perf_counter()
            mm, centers, basis, offset = make_data(Path(args.data_dir), n, d, args.seed, log)
            qsets = make_queries(centers, basis, offset, args.queries, args.seed)
            rec["data_s"] = time.perf_counter() - t0
            allq = np.concatenate([qsets["near"], qsets["cross"]])
            t0 = time.perf_counter()
            s, i = exact_topk(mm, allq, K)
            batch_s = time.perf_counter() - t0
            nq = args.queries
            truths = {"near": (s[:nq], i[:nq]), "cross": (s[nq:], i[nq:])}
            lat = []
            t_budget = time.perf_counter()
            for j in range(len(allq)):
                if len(lat) >= 2 and (time.perf_counter() - t_budget > args.flat_single_budget or len(lat) >= 20):
                    break
                t = time.perf_counter()
                exact_topk(mm, allq[j : j + 1], K)
                lat.append(time.perf_counter() - t)
            rec["flat"] = {"batch_s": batch_s, "batch_qps": len(allq) / batch_s, "single_count": len(lat),
                           "single_p50_ms": float(np.median(lat) * 1e3), "single_max_ms": float(np.max(lat) * 1e3)}
            rec["mean_top1_score"] = {k: float(v[0][:, 0].mean()) for k, v in truths.items()}
            rec["mean_top10_score"] = {k: float(v[0][:, K - 1].mean()) for k, v in truths.items()}
            log(f"  flat: batched {len(allq) / batch_s:.1f} q/s, single p50 {np.median(lat) * 1e3:.0f} ms; "
                f"top1 score near {rec['mean_top1_score']['near']:.3f} cross {rec['mean_top1_score']['cross']:.3f}")
            write_results(out, results, log)
            try:
                rec["ours"] = bench_ours(mm, qsets, truths, args, log)
            except Exception as err:  # noqa: BLE001
                rec["ours"] = {"error": repr(err)}
                log(traceback.format_exc())
            write_results(out, results, log)
            if not args.no_lance and (not args.lance_dims or d in _ints(args.lance_dims)):
                try:
                    rec["lance"] = bench_lance(mm, qsets, truths, args, log)
                except Exception as err:  # noqa: BLE001
                    rec["lance"] = {"error": repr(err)}
                    log(traceback.format_exc())
                shutil.rmtree(Path(args.data_dir) / f"lance_{n}x{d}", ignore_errors=True)
            rec["status"] = "done"
        except Exception as err:  # noqa: BLE001
            rec["status"] = f"failed: {err!r}"
            log(traceback.format_exc())
        rec["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
        write_results(out, results, log)
    env["finished"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    write_results(out, results, log)
    log("done")


if __name__ == "__main__":
    main()
