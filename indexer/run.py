"""One indexing run: lock, recover, crawl, plan, apply moves/deletes, embed the rest, refresh ANN."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

from avsearch.media import SUPPORTED_EXTENSIONS, fingerprint, probe
from avsearch.media.sandbox import shared_sandbox
from avsearch.models.base import Embedder
from avsearch.models.registry import model_steps
from avsearch.store import FileCommit, Store
from avsearch.indexer.crawl import CrawlResult, crawl
from avsearch.indexer.duplicates import commit_duplicates
from avsearch.indexer.patterns import PathPatterns
from avsearch.indexer.pipeline import FileJob, PipelineOptions, failure_reason, make_job, run_pipeline
from avsearch.indexer.plan import Plan, make_plan
from avsearch.indexer.report import (
    BUILDING_ANN, COMMITTING, FINGERPRINTING, LOADING_MODEL, PROBING, SCANNING, IndexReport, PhaseReporter,
    ProgressCallback,
)


def plan_run(store: Optional[Store], paths: Iterable[str], *, prune: bool = True,
             retry_failed: bool = False, follow_symlinks: bool = True, patterns: PathPatterns = PathPatterns(),
             reporter: Optional[PhaseReporter] = None,
             confine_to: Optional[Sequence[str | Path]] = None) -> tuple[CrawlResult, Plan]:
    """What a run would do; reads the disk and the index, changes nothing. `reporter` hears of
    each file the scan finds and each file fingerprinted. `confine_to`: see crawl()."""
    reporter = reporter or PhaseReporter(None)
    reporter.phase(SCANNING)
    found = crawl(paths, SUPPORTED_EXTENSIONS, follow_symlinks=follow_symlinks, patterns=patterns,
                  on_found=reporter.tick, confine_to=confine_to)
    reporter.tick(len(found.files), force=True)
    rows = store.file_rows() if store is not None else []
    counted = _Fingerprinting(reporter, found, rows)
    plan = make_plan(found, rows, counted, prune=prune, retry_failed=retry_failed)
    reporter.tick(counted.done, force=True)
    return found, plan


class _Fingerprinting:
    """`fingerprint`, reporting each file before it is read (a slow disk shows which one)."""

    def __init__(self, reporter: PhaseReporter, found: CrawlResult, rows: list[dict]):
        known = {r["path"]: (r["size"], r["mtime"]) for r in rows}
        # The planner fingerprints the files whose size+mtime the index does not have already.
        self.total = sum(known.get(c.path) != (c.size, c.mtime) for c in found.files)
        self.done = 0
        self._reporter = reporter
        reporter.phase(FINGERPRINTING, total=self.total)

    def __call__(self, path: str) -> str:
        self._reporter.tick(self.done, path, total=max(self.total, self.done + 1))
        try:
            return fingerprint(path)
        finally:
            self.done += 1


@dataclass
class Probed:
    """A run's plan with its work probed, made before the index exists (a new index): what the
    run embeds (`jobs`) and records as failed, and the report so far."""

    plan: Plan
    jobs: list[FileJob]
    failed_rows: list[dict]
    report: IndexReport = field(default_factory=IndexReport)

    @property
    def nothing_to_record(self) -> bool:
        """No file to embed and no row to write: a new index need not be made for it."""
        p = self.plan
        return not (self.jobs or self.failed_rows or p.duplicates or p.touched or p.moved or p.deleted)


def prepare_new_index(paths: Iterable[str], options: PipelineOptions, *, reporter: PhaseReporter,
                      follow_symlinks: bool = True, patterns: PathPatterns = PathPatterns(),
                      confine_to: Optional[Sequence[str | Path]] = None) -> Probed:
    """Scan, fingerprint and probe for an index that does not exist yet, before the model loads:
    a wrong or empty folder answers at once, and the model (whose id and dimension create the
    index) loads only when `Probed.nothing_to_record` is False. Pass the result to run_index."""
    started = time.monotonic()
    found, plan = plan_run(None, paths, follow_symlinks=follow_symlinks, patterns=patterns, reporter=reporter,
                           confine_to=confine_to)
    report = IndexReport()
    _report_plan(report, found, plan)
    jobs, failed_rows = _probe_work(plan, None, options, report, reporter)
    report.seconds = time.monotonic() - started
    return Probed(plan, jobs, failed_rows, report)


def _report_plan(report: IndexReport, found: CrawlResult, plan: Plan) -> None:
    report.plan_counts = plan.counts()
    report.unchanged = len(plan.unchanged) + len(plan.touched)
    report.skipped = [(p.path, p.reason) for p in found.skipped]


def _probe_work(plan: Plan, store: Optional[Store], options: PipelineOptions, report: IndexReport,
                reporter: PhaseReporter) -> tuple[list[FileJob], list[dict]]:
    """Probe each file to embed: its job, or a failed row (as are the files the scan could not
    read). `store` None: a new index (nothing to resume)."""
    failed_rows = [_failed_row(p.path, p.reason) for p in plan.problems]
    for p in plan.problems:
        report.failed.append((p.path, p.reason))

    jobs: list[FileJob] = []
    reporter.state.files_total = len(plan.work)
    reporter.phase(PROBING, total=len(plan.work))
    for n, work in enumerate(plan.work):
        reporter.tick(n, work.path, force=True)  # before the probe: a file that hangs it is named
        try:
            media = _probe(work.path, options)
            job = None
            if work.reason == "resume" and store is not None:  # after the parts an interrupted run committed
                job = make_job(media, work.fingerprint, options, store.committed_clips(work.path, work.fingerprint))
                if job is None:  # those parts are not this file's clips after all: start over
                    store.remove_paths([work.path])
            jobs.append(job or make_job(media, work.fingerprint, options))
        except Exception as err:  # any failure on one file fails that file, never the run (Ctrl-C still stops it)
            reason = failure_reason(err)
            failed_rows.append(_failed_row(work.path, reason, work.size, work.mtime, work.fingerprint))
            report.failed.append((work.path, reason))
    reporter.tick(len(plan.work), force=True)
    return jobs, failed_rows


def load_model(get_embedder: Callable[[], Embedder], reporter: PhaseReporter) -> Embedder:
    """get_embedder() under the "loading model" phase; a step the loader announces (generating
    the tiny checkpoint on first use) becomes a phase of its own."""
    reporter.phase(LOADING_MODEL)
    with model_steps(reporter.phase):
        return get_embedder()


def run_index(
    store: Store,
    paths: Iterable[str],
    get_embedder: Callable[[], Embedder],
    options: PipelineOptions,
    *,
    prune: bool = True,
    retry_failed: bool = False,
    progress: Optional[ProgressCallback] = None,
    reporter: Optional[PhaseReporter] = None,
    follow_symlinks: bool = True,
    patterns: Optional[PathPatterns] = None,
    ray=None,
    confine_to: Optional[Sequence[str | Path]] = None,
    probed: Optional[Probed] = None,
) -> IndexReport:
    """`progress` hears every phase (report.PHASES); or pass the `reporter` that announced the
    model's loading, so one Progress carries on through the run. get_embedder is called only when
    there is something to embed: wrap it in `load_model` for a "loading model" phase.
    `patterns`: include/exclude patterns to apply and store with the index (None: the stored ones).
    `ray`: an avsearch.indexer.distributed.RayOptions to decode and embed on Ray instead of in
    this process (the plan, the commits and the index are the same).
    `confine_to`: the folders symlinks may lead into (crawl()); None: anywhere.
    `probed`: what prepare_new_index found before `store` was created for it; used unless another
    run has written to the store since (then the run plans again)."""
    started = time.monotonic()
    report = IndexReport()
    reporter = reporter or PhaseReporter(progress)
    with store.write_lock():
        recovered = store.recover()
        if patterns is not None and patterns != PathPatterns.from_dict(store.path_patterns()):
            store.set_path_patterns(patterns.to_dict())
        patterns = PathPatterns.from_dict(store.path_patterns())
        if probed is not None and not store.file_rows():  # planned before the store existed: still true
            report, plan, jobs, failed_rows = probed.report, probed.plan, probed.jobs, probed.failed_rows
            started -= probed.report.seconds  # the run's time includes the scan and the probes
        else:
            found, plan = plan_run(store, paths, prune=prune, retry_failed=retry_failed,
                                   follow_symlinks=follow_symlinks, patterns=patterns, reporter=reporter,
                                   confine_to=confine_to)
            _report_plan(report, found, plan)

            for move in plan.moved:
                store.repoint(move.old_path, move.row)
                report.moved.append((move.old_path, move.new_path))
            if plan.deleted:
                store.remove_paths(plan.deleted)
                report.deleted.extend(plan.deleted)
            jobs, failed_rows = _probe_work(plan, store, options, report, reporter)
        report.recovered_orphans = recovered
        commits = [FileCommit(r) for r in failed_rows] + [FileCommit(r, replace_clips=False) for r in plan.touched]
        store.commit(commits)

        if jobs and ray is not None:
            from avsearch.indexer.distributed import run_pipeline_ray  # Ray is imported only on this path

            run_pipeline_ray(jobs, store, ray, options, report, reporter.send, state=reporter.state)
        elif jobs:
            run_pipeline(jobs, store, get_embedder(), options, report, reporter.send, state=reporter.state)
        commit_duplicates(store, plan.duplicates, report)  # after their canonicals: tied to an outcome
        if reporter.state.phase != COMMITTING:  # the pipeline announces its last commit
            reporter.phase(COMMITTING)
        store.finish_writes(on_ann=lambda: reporter.phase(BUILDING_ANN))
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
