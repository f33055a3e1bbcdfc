"""One indexing run: lock, recover, crawl, plan, apply moves/deletes, embed the rest, refresh ANN."""

from __future__ import annotations

import time
from typing import Callable, Iterable, Optional

from avsearch.media import SUPPORTED_EXTENSIONS, fingerprint, probe
from avsearch.media.sandbox import shared_sandbox
from avsearch.models.base import Embedder
from avsearch.store import FileCommit, Store
from avsearch.indexer.crawl import CrawlResult, crawl
from avsearch.indexer.pipeline import FileJob, PipelineOptions, failure_reason, make_job, run_pipeline
from avsearch.indexer.plan import Plan, make_plan
from avsearch.indexer.report import IndexReport, ProgressCallback


def plan_run(store: Optional[Store], paths: Iterable[str], *, prune: bool = True,
             retry_failed: bool = False) -> tuple[CrawlResult, Plan]:
    """What a run would do; reads the disk and the index, changes nothing."""
    found = crawl(paths, SUPPORTED_EXTENSIONS)
    rows = store.file_rows() if store is not None else []
    return found, make_plan(found, rows, fingerprint, prune=prune, retry_failed=retry_failed)


def run_index(
    store: Store,
    paths: Iterable[str],
    get_embedder: Callable[[], Embedder],
    options: PipelineOptions,
    *,
    prune: bool = True,
    retry_failed: bool = False,
    progress: Optional[ProgressCallback] = None,
    ray=None,
) -> IndexReport:
    """`ray`: an avsearch.indexer.distributed.RayOptions to decode and embed on Ray instead of in
    this process (the plan, the commits and the index are the same)."""
    started = time.monotonic()
    report = IndexReport()
    with store.write_lock():
        report.recovered_orphans = store.recover()
        _, plan = plan_run(store, paths, prune=prune, retry_failed=retry_failed)
        report.plan_counts = plan.counts()
        report.unchanged = len(plan.unchanged) + len(plan.touched)

        for move in plan.moved:
            store.repoint(move.old_path, move.row)
            report.moved.append((move.old_path, move.new_path))
        if plan.deleted:
            store.remove_paths(plan.deleted)
            report.deleted.extend(plan.deleted)
        failed_rows = [_failed_row(p.path, p.reason) for p in plan.problems]
        for p in plan.problems:
            report.failed.append((p.path, p.reason))

        jobs: list[FileJob] = []
        for work in plan.work:
            try:
                media = _probe(work.path, options)
                job = None
                if work.reason == "resume":  # after the parts an interrupted run committed
                    job = make_job(media, work.fingerprint, options, store.committed_clips(work.path, work.fingerprint))
                    if job is None:  # those parts are not this file's clips after all: start over
                        store.remove_paths([work.path])
                jobs.append(job or make_job(media, work.fingerprint, options))
            except Exception as err:  # any failure on one file fails that file, never the run (Ctrl-C still stops it)
                reason = failure_reason(err)
                failed_rows.append(_failed_row(work.path, reason, work.size, work.mtime, work.fingerprint))
                report.failed.append((work.path, reason))
        commits = [FileCommit(r) for r in failed_rows] + [FileCommit(r, replace_clips=False) for r in plan.touched]
        store.commit(commits)

        if jobs and ray is not None:
            from avsearch.indexer.distributed import run_pipeline_ray  # Ray is imported only on this path

            run_pipeline_ray(jobs, store, ray, options, report, progress)
        elif jobs:
            run_pipeline(jobs, store, get_embedder(), options, report, progress)
        store.finish_writes()
    report.seconds = time.monotonic() - started
    return report


def _probe(path: str, options: PipelineOptions):
    """Probe in the sandbox child process (unless isolation is off): a file that crashes or hangs
    FFmpeg fails alone."""
    if options.isolate == "none":
        return probe(path)
    return shared_sandbox().probe(path, timeout_s=options.probe_timeout_s)


def _failed_row(path: str, reason: str, size: int = -1, mtime: float = -1.0, fp: str = "") -> dict:
    return {
        "path": path, "fingerprint": fp, "size": size, "mtime": mtime, "duration_s": None,
        "has_video": None, "has_audio": None, "status": "failed", "error": reason, "n_clips": 0,
        "model_id": None, "indexed_at": time.time(),
    }
