"""Decode → batch → embed → commit, with bounded memory.

Decode workers (threads: PyAV, PIL and torch's resize kernel release the GIL) stream clips of
different files into one bounded queue, so the embedder always has work while files are being
read; a worker with no file left takes half of a long running file (`avsearch.media.decode_files`),
so a file indexed on its own, or the last of a folder, is decoded by all of them. The main thread keeps
a pending batch per view and embeds it once its token budget is full. A file is committed (its
clips with its `files` row) as soon as every clip of it has every vector it needs; commits are
grouped a few files at a time to keep LanceDB's version count down.
"""

from __future__ import annotations

import time
from contextlib import closing
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from avsearch.errors import AvsearchError, MediaError
from avsearch.media import DecodeOptions, FileToDecode, decode_files, plan_clips
from avsearch.media.damage import Damage, damage_text
from avsearch.media.sandbox import PROBE_TIMEOUT_S, STALL_S, looks_ordinary
from avsearch.models.base import Embedder
from avsearch.store import FileCommit, Store
from avsearch.types import Clip, MediaFile, View, check_choice
from avsearch.indexer.rows import clip_row
from avsearch.indexer.report import COMMITTING, EMBEDDING, IndexReport, Progress, ProgressCallback


ISOLATE_CHOICES = ("suspect", "all", "none")


@dataclass
class PipelineOptions:
    clip_s: float = 10.0
    min_last_s: float = 1.0
    views: Sequence[str] = ("av", "video", "audio")
    decode: DecodeOptions = field(default_factory=DecodeOptions)
    decode_workers: Optional[int] = None  # None: avsearch.media.default_decode_workers() (2-4 by CPUs)
    queue_clips: int = 8  # decoded clips waiting for the embedder (bounds memory)
    max_batch_tokens: Optional[int] = None  # None: the embedder's own default
    max_batch_items: int = 32
    commit_every_files: int = 8
    commit_every_s: float = 5.0
    # A long file is committed in parts of at least this much media (each part: every view of its
    # clips), so an interrupted run keeps them and the next one resumes after them, and a file's
    # vectors wait in memory for one part at most, not for the whole file.
    partial_commit_s: float = 600.0
    # Crash isolation (avsearch.media.sandbox): "suspect" probes every file in a child process and
    # decodes there the files whose probe looks unusual (the rest in-process, the fast path); "all"
    # decodes every file there; "none" reads everything in-process (a segfault in FFmpeg then ends
    # the run, a hang freezes it).
    isolate: str = "suspect"
    probe_timeout_s: float = PROBE_TIMEOUT_S  # a probe in the sandbox taking longer fails its file
    stall_s: float = STALL_S  # a decode handing back no clip this long is cut off and fails its file

    def __post_init__(self) -> None:
        check_choice("isolate", self.isolate, ISOLATE_CHOICES)


@dataclass
class FileJob:
    media: MediaFile
    fingerprint: str
    ranges: list[tuple[float, float]]
    views: list[View]
    spans: dict[int, tuple[float, float]] = field(default_factory=dict)  # clip -> (start, end)
    needs: dict[int, list[View]] = field(default_factory=dict)  # clip -> views it gets embedded as
    payloads: dict[int, Clip] = field(default_factory=dict)  # decoded clips still waiting for a batch
    vectors: dict[tuple[int, View], np.ndarray] = field(default_factory=dict)
    decoded: Optional[int] = None  # clips decoded by this run, once decoding has finished
    error: Optional[str] = None
    damage: tuple[Damage, ...] = ()  # stretches the decoder could not read: the file is partly indexed
    todo: list[int] = field(default_factory=list)  # ranges this run decodes (all but a resumed file's committed)
    committed: set[int] = field(default_factory=set)  # ranges committed, by earlier runs or in parts by this one
    committed_rows: int = 0  # the clip rows (one per view) those hold

    def accept(self, index: int, clip: Clip) -> list[View]:
        views = [v for v in self.views if clip.supports(v)]
        self.spans[index] = (clip.start_s, clip.end_s)
        self.needs[index] = views
        if views:
            self.payloads[index] = clip
        return views

    def store_vector(self, index: int, view: View, vector: np.ndarray) -> None:
        self.vectors[(index, view)] = vector
        if all((index, v) in self.vectors for v in self.needs[index]):
            self.payloads.pop(index, None)  # frames and audio are no longer needed

    def settled(self) -> bool:
        if self.error is not None:
            return True
        return self.decoded is not None and len(self.vectors) == sum(len(v) for v in self.needs.values())

    def embedded(self) -> list[int]:
        """Ranges decoded and embedded in every view, not committed yet, in order."""
        return sorted(i for i, views in self.needs.items() if all((i, v) in self.vectors for v in views))

    def take(self, ranges) -> list[tuple[int, View, np.ndarray]]:
        """The vectors of `ranges`, in (range, view) order; the ranges count as committed after."""
        ranges = set(ranges)
        taken = sorted(((i, v, vec) for (i, v), vec in self.vectors.items() if i in ranges),
                       key=lambda t: (t[0], t[1].value))
        for i, v, _ in taken:
            del self.vectors[(i, v)]
        for i in ranges:
            self.needs.pop(i, None)
        self.committed |= ranges
        return taken


def run_pipeline(
    jobs: list[FileJob],
    store: Store,
    embedder: Embedder,
    options: PipelineOptions,
    report: IndexReport,
    progress: Optional[ProgressCallback] = None,
    *,
    state: Optional[Progress] = None,
) -> None:
    """`progress` hears of the embedding phase after every decoded clip, every embedded batch and
    every finished file, then of the last commit; `state`: the run's Progress to carry on (a new
    one by default)."""
    state = _embedding_state(state or Progress(), jobs)
    pending: dict[View, list[tuple[int, int, int]]] = {v: [] for v in View}  # (job, clip, cost)
    ready: list[FileCommit] = []
    done: set[int] = set()
    last_commit = time.monotonic()
    # Two of the embedder's forward budgets per call: it prepares the second group's media on the
    # CPU while the first runs on the GPU.
    budget = options.max_batch_tokens or 2 * getattr(embedder, "max_batch_tokens", 8_192)

    def flush(view: View) -> set[int]:
        items, pending[view] = pending[view], []
        if not items:
            return set()
        try:
            vectors = embedder.embed_clips([jobs[j].payloads[c] for j, c, _ in items], view)
        except Exception as err:
            if len(items) == 1:
                jobs[items[0][0]].error = f"embedding failed: {failure_reason(err)}"
                return {items[0][0]}
            touched: set[int] = set()
            for item in items:  # isolate the culprit: embed one by one
                pending[view] = [item]
                touched |= flush(view)
            return touched
        for (j, c, _), vec in zip(items, vectors):
            jobs[j].store_vector(c, view, vec)
        state.clips_done += len(items)
        state.phase_done = state.clips_done
        if progress:
            progress(state)
        return {j for j, _, _ in items}

    def settle(candidates) -> None:
        for j in candidates:
            job = jobs[j]
            if j in done:
                continue
            if not job.settled():
                commit_part(job)
                continue
            if job.error is not None:  # its clips may still sit in a batch: drop them
                for v in pending:
                    pending[v] = [it for it in pending[v] if it[0] != j]
            ready.append(_commit_for(job, embedder, report))
            job.payloads.clear()
            job.vectors.clear()
            done.add(j)
            maybe_commit()
            state.files_done += 1
            state.media_s_done += job.media.duration_s
            state.current = job.media.path
            if progress:
                progress(state)

    def commit_part(job: FileJob) -> None:
        if job.error is not None:
            return
        part = job.embedded()
        # Some range always waits for the final commit: a resumed file has something to decode.
        if len(job.committed) + len(part) >= len(job.ranges):
            part = part[:-1]
        if sum(job.ranges[i][1] - job.ranges[i][0] for i in part) < options.partial_commit_s:
            return
        ready.append(_part_commit(job, embedder, report, part))
        maybe_commit(force=True)  # now: a batch must never hold two rows of one path

    def maybe_commit(force: bool = False) -> None:
        nonlocal last_commit
        if ready and (force or len(ready) >= options.commit_every_files
                      or time.monotonic() - last_commit >= options.commit_every_s):
            store.commit(ready)
            ready.clear()
            last_commit = time.monotonic()

    if progress:
        progress(state)
    # A resumed file whose every clip was committed (its final commit was killed after writing the
    # clips) has nothing to decode: it only needs its "ok" row.
    decoding = [j for j, job in enumerate(jobs) if job.todo]
    finished = [j for j, job in enumerate(jobs) if not job.todo]
    for j in finished:
        jobs[j].decoded = 0
    settle(finished)
    to_decode = [
        FileToDecode(job.media.path, [job.ranges[i] for i in job.todo], media=job.media, isolated=_isolated(job.media, options),
                     video=job.media.has_video and any(v in (View.AV, View.VIDEO) for v in job.views),
                     audio=job.media.has_audio and any(v in (View.AV, View.AUDIO) for v in job.views))
        for job in (jobs[j] for j in decoding)
    ]
    with closing(decode_files(to_decode, options.decode, workers=options.decode_workers,
                              queue_clips=options.queue_clips, stall_s=options.stall_s)) as decoded:
        for event in decoded:
            j = decoding[event.file]
            job = jobs[j]
            touched = {j}
            if event.kind == "clip":
                if job.error is not None:
                    continue
                clip, i = event.clip, job.todo[event.index]  # a resumed file decodes only its todo
                state.clips_decoded += 1
                if progress:  # news while the first batch fills (seconds of decoding on a slow CPU)
                    progress(state)
                for view in job.accept(i, clip):
                    pending[view].append((j, i, _cost(embedder, clip, view)))
                    if (sum(c for _, _, c in pending[view]) >= budget
                            or len(pending[view]) >= options.max_batch_items):
                        touched |= flush(view)
            else:
                job.decoded = event.index
                job.damage = event.damage
                if event.kind == "error":
                    job.error = failure_reason(event.error)
                elif event.index == 0:
                    job.error = "no clip could be decoded"
            settle(touched)
            maybe_commit()
    for view in View:
        settle(flush(view))
    settle(range(len(jobs)))
    announce_committing(state, progress)
    maybe_commit(force=True)


def announce_committing(state: Progress, progress: Optional[ProgressCallback]) -> None:
    """The embedding phase is over: `state` enters the last commit's phase, and `progress` hears it."""
    state.phase, state.phase_done, state.phase_total, state.current = COMMITTING, 0, None, None
    state.phase_started = time.monotonic()
    if progress:
        progress(state)


def _embedding_state(state: Progress, jobs: list[FileJob]) -> Progress:
    """`state` reset for the embedding phase of `jobs` (phase_done/total count clips x views)."""
    state.files_total, state.files_done, state.current = len(jobs), 0, None
    state.media_s_total, state.media_s_done = sum(j.media.duration_s for j in jobs), 0.0
    state.clips_done = state.phase_done = state.clips_decoded = 0
    state.clips_total = state.phase_total = sum(len(j.todo) * len(j.views) for j in jobs)
    state.phase, state.phase_started = EMBEDDING, time.monotonic()
    return state


def _file_row(job: FileJob, embedder: Embedder) -> dict:
    media = job.media
    return {
        "path": media.path,
        "fingerprint": job.fingerprint,
        "size": media.size,
        "mtime": media.mtime,
        "duration_s": media.duration_s,
        "has_video": media.has_video,
        "has_audio": media.has_audio,
        "fps": media.fps,
        "width": media.width,
        "height": media.height,
        "sample_rate": media.sample_rate,
        "channels": media.channels,
        "model_id": embedder.model_id,
        "indexed_at": time.time(),
    }


def _clip_rows(job: FileJob, embedder: Embedder, taken) -> tuple[list[dict], Optional[np.ndarray]]:
    """Clip rows and vectors of `taken` (FileJob.take), whose spans are then forgotten."""
    now = time.time()
    media = job.media
    rows = []
    for i, view, _ in taken:
        start_s, end_s = job.spans[i]
        rows.append(clip_row(media.path, job.fingerprint, view.value, start_s, end_s,
                             file_duration_s=media.duration_s, indexed_at=now, model_id=embedder.model_id))
    for i, _, _ in taken:
        job.spans.pop(i, None)
    vectors = np.stack([vec for _, _, vec in taken]).astype(np.float32) if taken else None
    return rows, vectors


@dataclass
class Written:
    """Clips of some ranges that Ray workers wrote as Lance fragments already: what the driver
    commits for them instead of rows and vectors (it never receives the vectors)."""

    fragments: list[str] = field(default_factory=list)
    clip_ids: list[str] = field(default_factory=list)


def _clips_of(job: FileJob, embedder: Embedder, ranges, written: Optional[Written]) -> tuple[dict, int]:
    """FileCommit's clip fields for `ranges` of `job` (which then count as committed), and how
    many clip rows they hold: rows and vectors built from the job's vectors, or the fragments
    `written` by workers."""
    if written is None:
        rows, vectors = _clip_rows(job, embedder, job.take(ranges))
        return {"clip_rows": rows, "vectors": vectors}, len(rows)
    job.take(ranges)
    return {"fragments": written.fragments, "fragment_clip_ids": written.clip_ids}, len(written.clip_ids)


def _part_commit(job: FileJob, embedder: Embedder, report: IndexReport, part: list[int],
                 written: Optional[Written] = None) -> FileCommit:
    """Some ranges of a long file, every view of each, committed before the rest (status "partial")."""
    # Only the first part (nothing committed yet, by this run or an earlier one) looks for clips
    # of the path's earlier content to delete: a scan.
    first = not job.committed
    clips, n = _clips_of(job, embedder, part, written)
    job.committed_rows += n
    report.clips_added += n
    return FileCommit({**_file_row(job, embedder), "status": "partial", "error": None, "n_clips": job.committed_rows},
                      **clips, append=True, replace_clips=first)


def _commit_for(job: FileJob, embedder: Embedder, report: IndexReport, written: Optional[Written] = None) -> FileCommit:
    media = job.media
    row = _file_row(job, embedder)
    if job.error is not None:
        report.failed.append((media.path, job.error))
        # Every clip of the path goes, parts committed before the failure too: failed means none.
        return FileCommit({**row, "status": "failed", "error": job.error, "n_clips": 0})
    had_parts = bool(job.committed)
    clips, n = _clips_of(job, embedder, range(len(job.ranges)), written)
    report.indexed.append(media.path)
    # Status "ok" with an error text: indexed, but some stretches could not be decoded.
    note = damage_text(job.damage) if job.damage else None
    if note:
        report.partly.append((media.path, note))
    report.clips_added += n
    report.media_s += media.duration_s
    return FileCommit(
        {**row, "status": "ok", "error": note, "n_clips": job.committed_rows + n},
        **clips,
        replace_clips=not had_parts,  # the parts committed before stay (the first one superseded the rest)
    )


def make_job(media: MediaFile, fingerprint: str, options: PipelineOptions,
             committed: Optional[tuple[list[float], int]] = None) -> Optional[FileJob]:
    """The work for one file; `committed`: (clip starts, clip rows) an earlier run committed of it
    in parts, to resume after. None where those starts are not clips of this file's plan."""
    views = [View(v) for v in options.views if View(v) in media.views()]
    if not views:
        raise MediaError(f"{media.path}: has no stream for the index's views ({', '.join(options.views)})")
    ranges = plan_clips(media.duration_s, clip_s=options.clip_s, min_last_s=options.min_last_s)
    job = FileJob(media, fingerprint, ranges, views, todo=list(range(len(ranges))))
    if committed is not None:
        starts, rows = committed
        index = {float(a): i for i, (a, _) in enumerate(ranges)}
        if not starts or any(a not in index for a in starts):
            return None
        job.committed = {index[a] for a in starts}
        job.todo = [i for i in job.todo if i not in job.committed]
        job.committed_rows = rows
    return job


def _isolated(media: MediaFile, options: PipelineOptions) -> bool:
    return options.isolate == "all" or (options.isolate == "suspect" and not looks_ordinary(media))


def _cost(embedder: Embedder, clip: Clip, view: View) -> int:
    try:
        return int(embedder.token_cost(clip, view))
    except Exception:
        return 1


def failure_reason(err: BaseException) -> str:
    """A failed file's recorded reason: our own errors say it already; anything else (a bug, or a
    library failing on an odd file) is named by its type, so `avsearch failures` tells them apart."""
    if isinstance(err, AvsearchError):
        return str(err)
    return f"{type(err).__name__}: {err}"
