"""Service benchmark (issue 15): text-query throughput and latency through `avsearch serve` over
loopback for 1, 8 and 32 concurrent clients, against the same queries run in-process on one
Index in the same run; and the wall time of one `avsearch query` command with and without a
running service.

The index: N clips (default 100k) whose vectors are written straight through the store API
(seeded random unit vectors in the tiny model's space, 100 clips per made-up file), not embedded
from media: embedding 100k clips would take hours on a CPU and measure the indexer, not the
service. Every query is embedded by the real tiny model, in both arms. Bounded: each level runs
at most --count queries and at most --seconds seconds. A failed request is recorded and makes the
run exit non-zero.

    python benchmarks/serve.py --clips 100000 --out benchmarks/results
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from metrics import percentiles_ms  # noqa: E402

CLIPS_PER_FILE = 100
LEVELS = (1, 8, 32)
WORDS = ("dog barking rain crowd cheering siren night street speech music piano engine birds "
         "wind laughter door applause train thunder water").split()


def build_index(directory: Path, n_clips: int, seed: int = 0) -> None:
    from avsearch.indexer.ids import clip_id, row_id
    from avsearch.models import load_embedder
    from avsearch.store import FileCommit, IndexMeta, IndexSettings, Store

    if Store.exists(directory) and Store.open(directory).tables.count_clips() == n_clips:
        return
    import shutil

    shutil.rmtree(directory, ignore_errors=True)
    model = load_embedder("tiny")
    store = Store.create(directory, IndexMeta(model.model_id, model.source, model.dim, IndexSettings()))
    rng = np.random.default_rng(seed)
    views = ("av", "video", "audio")
    commits = []
    for f in range(n_clips // CLIPS_PER_FILE):
        path, fp = f"/bench/tape-{f:05d}.mp4", f"fp{f:05d}"
        rows = []
        for c in range(CLIPS_PER_FILE):
            view, start = views[c % 3], float((c // 3) * 10)
            cid = clip_id(path, fp, view, start)
            rows.append({"clip_id": cid, "row_id": row_id(cid), "fingerprint": fp, "path": path, "start_s": start,
                         "end_s": start + 10, "view": view, "file_duration_s": 340.0, "indexed_at": time.time(),
                         "model_id": model.model_id})
        vectors = rng.standard_normal((CLIPS_PER_FILE, model.dim)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        row = {"path": path, "fingerprint": fp, "size": 1, "mtime": 0.0, "duration_s": 340.0, "has_video": True,
               "has_audio": True, "status": "ok", "error": None, "n_clips": CLIPS_PER_FILE, "model_id": model.model_id}
        commits.append(FileCommit(row, rows, vectors))
        if len(commits) == 100:
            store.commit(commits)
            commits = []
    store.commit(commits)
    store.finish_writes()  # builds the ANN index (IVF-PQ above 50k vectors)


def make_queries(n: int, seed: int = 1) -> list[str]:
    rng = np.random.default_rng(seed)
    return [f"{i} " + " ".join(rng.choice(WORDS, size=int(rng.integers(2, 8)))) for i in range(n)]


def run_level(ask, queries: list[str], clients: int, seconds: float) -> dict:
    """`clients` threads each asking queries in turn until all are asked or time is up."""
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    next_query = iter(queries)
    deadline = time.monotonic() + seconds

    def client() -> None:
        session = ask()
        while time.monotonic() < deadline:
            with lock:
                text = next(next_query, None)
            if text is None:
                return
            t0 = time.perf_counter()
            try:
                session(text)
            except Exception as err:  # recorded, and the run fails at the end
                with lock:
                    failures.append(f"{type(err).__name__}: {err}")
                continue
            with lock:
                latencies.append(time.perf_counter() - t0)

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        for future in [pool.submit(client) for _ in range(clients)]:
            future.result()
    wall = time.perf_counter() - started
    pct = percentiles_ms(latencies) if latencies else {"p50_ms": float("nan"), "p99_ms": float("nan")}
    p50, p99 = pct["p50_ms"], pct["p99_ms"]
    return {"clients": clients, "queries": len(latencies), "failed": len(failures), "failures": failures[:5],
            "seconds": round(wall, 3), "qps": round(len(latencies) / wall, 2), "p50_ms": round(p50, 2),
            "p99_ms": round(p99, 2)}


def in_process_asker(index):
    def ask():
        return lambda text: index.search(text, k=10)
    return ask


def service_asker(url: str):
    host, port = url.removeprefix("http://").split(":")

    def ask():
        conn = http.client.HTTPConnection(host, int(port), timeout=120)  # one keep-alive connection per client

        def search(text: str):
            conn.request("POST", "/api/search", body=json.dumps({"text": text, "k": 10}),
                         headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            body = response.read()
            if response.status != 200:
                raise RuntimeError(f"{response.status}: {body[:200]!r}")
            return json.loads(body)
        return search
    return ask


def start_service(index_dir: Path) -> tuple[subprocess.Popen, str]:
    from avsearch.server.discovery import read_service_file

    (index_dir / "serve.json").unlink(missing_ok=True)
    proc = subprocess.Popen([sys.executable, "-m", "avsearch.cli.app", "serve", "--index", str(index_dir),
                             "--port", "0", "--no-token"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    for _ in range(3000):
        info = read_service_file(index_dir)
        if info is not None:
            return proc, info.url
        if proc.poll() is not None:
            raise RuntimeError(proc.stderr.read().decode())
        time.sleep(0.1)
    raise RuntimeError("the service did not start")


def cli_wall(index_dir: Path, text: str, *extra: str) -> float:
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "avsearch.cli.app", "query", text, "--index", str(index_dir),
                          "--json", *extra], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=100_000)
    parser.add_argument("--count", type=int, default=400, help="queries per level, at most")
    parser.add_argument("--seconds", type=float, default=60.0, help="seconds per level, at most")
    parser.add_argument("--work", type=Path, default=Path("/tmp/avsearch-bench-serve"))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    index_dir = args.work / f"index-{args.clips}"
    t0 = time.perf_counter()
    build_index(index_dir, args.clips)
    build_s = time.perf_counter() - t0
    queries = make_queries(args.count)
    warm = make_queries(20, seed=2)

    from avsearch import Index

    results = {"clips": args.clips, "build_s": round(build_s, 1), "machine": {
        "cpus": os.cpu_count(), "platform": platform.platform(), "load_avg_at_start": os.getloadavg()},
        "in_process": [], "service": []}
    index = Index.open(index_dir)
    results["ann"] = index.stats()["ann"]["kind"]
    run_level(in_process_asker(index), warm, 1, args.seconds)  # model, ANN index and caches warm
    for clients in LEVELS:
        results["in_process"].append(run_level(in_process_asker(index), queries, clients, args.seconds))
        print("in-process", results["in_process"][-1], flush=True)

    proc, url = start_service(index_dir)
    try:
        run_level(service_asker(url), warm, 1, args.seconds)
        for clients in LEVELS:
            results["service"].append(run_level(service_asker(url), queries, clients, args.seconds))
            print("service", results["service"][-1], flush=True)
        with_service = [cli_wall(index_dir, q) for q in queries[:5]]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    without = [cli_wall(index_dir, q, "--no-server") for q in queries[:3]]
    results["cli_wall_s"] = {"via_service": [round(x, 3) for x in with_service],
                             "in_process": [round(x, 3) for x in without],
                             "via_service_median": round(statistics.median(with_service), 3),
                             "in_process_median": round(statistics.median(without), 3)}
    results["machine"]["load_avg_at_end"] = os.getloadavg()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "serve.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "serve.md").write_text(to_markdown(results))
    print(to_markdown(results))
    failed = sum(r["failed"] for r in results["service"] + results["in_process"])
    return 1 if failed else 0


def to_markdown(r: dict) -> str:
    lines = [f"# `avsearch serve` text queries, tiny model, {r['clips']:,} clips ({r['ann']} ANN index)", "",
             f"Machine: {r['machine']['cpus']} CPUs, {r['machine']['platform']}; load average at start "
             f"{', '.join(f'{x:.1f}' for x in r['machine']['load_avg_at_start'])} (a shared machine: "
             "absolute numbers are noisy, the two arms ran back to back in one run).", "",
             "| clients | in-process q/s | p50 ms | p99 ms | service q/s | p50 ms | p99 ms | failed |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for a, b in zip(r["in_process"], r["service"]):
        lines.append(f"| {a['clients']} | {a['qps']} | {a['p50_ms']} | {a['p99_ms']} | {b['qps']} | {b['p50_ms']} | "
                     f"{b['p99_ms']} | {a['failed'] + b['failed']} |")
    c = r["cli_wall_s"]
    lines += ["", f"`avsearch query TEXT --json` wall time (median): via the service **{c['via_service_median']} s** "
              f"({len(c['via_service'])} runs), in-process (`--no-server`, loads the model) "
              f"**{c['in_process_median']} s** ({len(c['in_process'])} runs).", "",
              "In-process: the same queries on one `Index` in one process, the clients as threads calling "
              "`Index.search`. Service: the clients as threads, each with one keep-alive HTTP connection to "
              "`avsearch serve` on 127.0.0.1, `POST /api/search` (the model embeds text queries arriving together "
              "in one batch). Index built by writing random unit vectors through the store (not embedded); "
              "query texts embedded by the real tiny model in both arms.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
