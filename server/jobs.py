"""Indexing jobs: `Index.add` on a folder under a configured root, in a background thread, with
progress the page polls. Queries go on meanwhile and see each file once it is committed."""

from __future__ import annotations

import os
import threading
import time
import uuid
from pathlib import Path
from typing import Optional, Sequence

from avsearch.errors import AvsearchError, IndexLockedError, QueryError


class JobBusyError(IndexLockedError):
    """One indexing job at a time: the index has one writer."""


def resolve_folder(roots: Sequence[Path], root: int, folder: str) -> Path:
    """The folder a job request names, refused unless it lies inside the chosen root (after
    resolving '..' and symlinks): a request can never point the service elsewhere."""
    if not roots:
        raise QueryError("this service indexes nothing: start it with `avsearch serve --root FOLDER`")
    if root >= len(roots):
        raise QueryError(f"no root #{root}; the service has {len(roots)} (GET /api/status lists them)")
    base = roots[root].resolve()
    target = (base / folder).resolve()
    if target != base and base not in target.parents:
        raise QueryError(f"{folder!r} is not inside the root {base}; name a folder under it")
    if not target.is_dir():
        raise QueryError(f"{folder!r} is not a folder under {base}")
    return target


class Job:
    def __init__(self, folder: Path):
        self.id = uuid.uuid4().hex[:12]
        self.folder = str(folder)
        self.state = "running"
        self.files_total = self.files_done = self.clips_done = 0
        self.phase: Optional[str] = None  # avsearch.indexer.report.PHASES: what the run does now
        self.phase_done = 0
        self.phase_total: Optional[int] = None
        self.current: Optional[str] = None
        self.error: Optional[str] = None
        self.report: Optional[dict] = None
        self.started_at = time.time()
        self.finished_at: Optional[float] = None

    def on_progress(self, p) -> None:
        self.files_total, self.files_done, self.clips_done = p.files_total, p.files_done, p.clips_done
        self.phase, self.phase_done, self.phase_total = p.phase, p.phase_done, p.phase_total
        self.current = os.path.basename(p.current) if p.current else None

    def as_dict(self) -> dict:
        return dict(self.__dict__)


class JobRunner:
    """Runs at most one indexing job at a time on the service's Index."""

    def __init__(self, index, confine_to: Optional[Sequence[Path]] = None):
        self._index = index
        # A job reads only under the service's roots: a symlink in a served folder that leads
        # elsewhere is not followed (it is listed in the job's report under "skipped").
        # None: anywhere (an empty list would let a job read nothing at all).
        self._confine_to = None if confine_to is None else list(confine_to)
        self._lock = threading.Lock()
        self.jobs: dict[str, Job] = {}
        self.latest: Optional[Job] = None

    def start(self, folder: Path) -> Job:
        with self._lock:
            if self.latest is not None and self.latest.state == "running":
                raise JobBusyError(f"an indexing job is running ({self.latest.folder}); wait for it to finish")
            job = Job(folder)
            self.jobs[job.id] = job
            self.latest = job
        threading.Thread(target=self._run, args=(job,), name=f"avsearch-index-{job.id}", daemon=True).start()
        return job

    def _run(self, job: Job) -> None:
        try:
            report = self._index.add([job.folder], progress=job.on_progress, confine_to=self._confine_to)
            job.report = report.to_dict()
            job.state = "done"
        except AvsearchError as err:
            job.error, job.state = str(err), "failed"
        except Exception as err:  # the job fails with a one-line reason; the service goes on
            job.error, job.state = f"{type(err).__name__}: {err}", "failed"
        finally:
            job.current = None
            job.finished_at = time.time()
