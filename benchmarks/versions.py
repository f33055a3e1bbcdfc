"""What version housekeeping does to an index after many small incremental runs (issue 17).

A nightly job that adds one recording per run leaves one LanceDB version per commit, and each
version keeps its own data files. This indexes the same N tiny audio files (1 s, the `tiny`
model) two ways -- N incremental runs of one new file each, and one run of all N -- each with the
housekeeping (keep the last 3 versions, the default) and without it (every version kept: the
behaviour before issue 17, the baseline, in the same run). For each it records the index
directory's size, the versions kept per table, the wall time of the runs, and query latency: the
p50 of `--queries` text searches through `Index.search` (warm: one query first) and of the same
searches' store part alone (ANN search + exact re-score + metadata, from precomputed query
vectors), the indexes taking turns query by query.

    python benchmarks/versions.py --files 100 --queries 50 --out benchmarks/results

CPU only; a few minutes on 2 cores.
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

from avsearch import Index
from avsearch.media.synth import write_audio
from avsearch.store import Retention
from avsearch.store.retention import KEEP_VERSIONS_ENV

KEEP_ALL = Retention(keep_versions=10**9)  # nothing is ever removed: the baseline


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def make_media(folder: Path, n: int) -> list[Path]:
    return [write_audio(folder / f"rec-{i:03d}.wav", duration_s=1.0, tone_hz=200.0 + 13 * i, seed=i)
            for i in range(n)]


def build(index_dir: Path, media: list[Path], *, incremental: bool) -> float:
    """Index `media` into a new index; returns the wall time of all runs."""
    index = Index.open(index_dir, model="tiny", create=True)
    staging = index_dir.parent / (index_dir.name + "-media")
    staging.mkdir()
    started = time.perf_counter()
    for i, path in enumerate(media):
        shutil.copyfile(path, staging / path.name)
        if incremental or i == len(media) - 1:  # each incremental run finds one new file
            index.add([staging])
    return time.perf_counter() - started


def latencies(index_dirs: list[Path], queries: list[str]) -> list[dict]:
    """p50 latencies per index, the indexes taking turns query by query (this machine's load
    drifts: in turns, each index sees the same drift)."""
    indexes = [Index.open(d) for d in index_dirs]
    for index in indexes:
        index.search(queries[0], k=10)  # warm: model and ANN index loaded
    vectors = indexes[0].embedder().embed_texts(queries)
    full = [[] for _ in indexes]
    store_only = [[] for _ in indexes]
    for q, v in zip(queries, vectors):
        for i, index in enumerate(indexes):
            t0 = time.perf_counter()
            index.search(q, k=10)
            full[i].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            with index.store.reading():
                index.store.tables.refresh()
                _, ids = index.store.search(v[None, :], 10)
                index.store.clip_meta_by_row_ids(ids[0])
            store_only[i].append(time.perf_counter() - t0)
    return [{"search_p50_ms": 1000 * statistics.median(f), "store_p50_ms": 1000 * statistics.median(s)}
            for f, s in zip(full, store_only)]


def measure(root: Path, media: list[Path], *, incremental: bool, housekeeping: bool) -> dict:
    name = f"{'incremental' if incremental else 'one-run'}-{'housekeeping' if housekeeping else 'keep-all'}"
    index_dir = root / name
    # The store reads its retention when the first run creates it: the environment sets it.
    os.environ.pop(KEEP_VERSIONS_ENV, None)
    if not housekeeping:
        os.environ[KEEP_VERSIONS_ENV] = str(KEEP_ALL.keep_versions)
    try:
        seconds = build(index_dir, media, incremental=incremental)
    finally:
        os.environ.pop(KEEP_VERSIONS_ENV, None)
    tables = Index.open(index_dir).store.tables
    versions = tables.versions()
    fragments = {t: int(getattr(tables, t).list_versions()[-1]["metadata"].get("total_fragments", -1))
                 for t in ("files", "clips")}
    row = {"name": name, "dir": str(index_dir), "runs": len(media) if incremental else 1, "files": len(media),
           "index_bytes": dir_bytes(index_dir), "versions": {t: len(v) for t, v in versions.items()},
           "fragments": fragments, "index_seconds": seconds}
    print(json.dumps(row), flush=True)
    return row


def write_markdown(rows: list[dict], meta: dict, path: Path) -> None:
    lines = [
        "# Version housekeeping: many small runs vs one run",
        "",
        f"`benchmarks/versions.py --files {meta['files']} --queries {meta['queries']}` on {meta['machine']} "
        f"({meta['cpus']} CPUs, shared), tiny model, 1 s audio files. keep-all = every LanceDB version kept "
        "(the behaviour before issue 17: the baseline); housekeeping = the default retention (last 3 versions "
        "per table). One run of each, in the same process; latencies are p50 of the queries, warm, the four indexes taking turns query by query.",
        "",
        "| index | runs | size (KB) | versions files/clips | fragments files/clips | indexing wall (s) | search p50 (ms) | store part p50 (ms) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['name']} | {r['runs']} | {r['index_bytes'] / 1024:.0f} | {r['versions']['files']}/"
                     f"{r['versions']['clips']} | {r['fragments']['files']}/{r['fragments']['clips']} | {r['index_seconds']:.1f} | {r['search_p50_ms']:.1f} | "
                     f"{r['store_p50_ms']:.1f} |")
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    queries = [f"a tone number {i}" for i in range(args.queries)]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        media = make_media(root / "media", args.files)
        build(root / "warm-up", media[:1], incremental=False)  # model loading is not any config's cost
        rows = [measure(root, media, incremental=inc, housekeeping=hk)
                for inc in (True, False) for hk in (False, True)]
        for row, lat in zip(rows, latencies([Path(r.pop("dir")) for r in rows], queries)):
            row.update(lat)
            print(json.dumps(row), flush=True)
    meta = {"files": args.files, "queries": args.queries, "machine": platform.machine(), "cpus": os.cpu_count(),
            "python": sys.version.split()[0]}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "versions.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    write_markdown(rows, meta, args.out / "versions.md")


if __name__ == "__main__":
    main()
