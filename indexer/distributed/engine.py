"""The driver of a Ray indexing run: the planner's jobs in, committed files out.

Ray Core, not Ray Data: every chunk (a run of consecutive clip ranges of one file) is one decode
task feeding one call of an embed actor, and what comes back is keyed by (file, range) — the
per-file bookkeeping the commit protocol needs (a file with all its views or not at all, parts of a
long file, resume) is the local pipeline's FileJob, which a Dataset's row stream would have to
re-assemble. Back-pressure is a bound on chunks in flight: decoded frames wait in Ray's object
store (spilled to disk past its size), never in the driver.

Writes: an embed actor writes each chunk's clips (every view of each) into the index as Lance
fragments and returns their metadata and clip ids; the driver, which never sees a vector, commits
a batch's fragments in one Lance append, then the files rows, as the local pipeline commits rows
(avsearch.store.tables). A part of a long file is therefore whole chunks. Fragments of a chunk
whose file fails, of a chunk run twice, or of a killed run are never committed; the store deletes
them under the write lock (avsearch.store.fragments).

Faults: a decode task whose process dies is run again by Ray (`decode_retries`); one that dies
every time (a file that crashes FFmpeg natively) fails its file. An embed actor that dies is
restarted and its calls retried (`actor_restarts`). A killed driver loses the files in flight; a
re-run resumes from what was committed, as after a local run (the same commits are made here).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Optional

from avsearch.errors import AvsearchError
from avsearch.media.damage import merged
from avsearch.models.base import Embedder
from avsearch.store import FileCommit, Store
from avsearch.store.fragments import FragmentWriteError
from avsearch.types import View
from avsearch.indexer.distributed import faults
from avsearch.indexer.distributed.work import ClipDestination, EmbeddedChunk, EmbedWorker, decode_chunk
from avsearch.indexer.pipeline import (FileJob, PipelineOptions, Written, _commit_for, _embedding_state, _part_commit,
                                       announce_committing)
from avsearch.indexer.report import IndexReport, Progress, ProgressCallback

RAY_INSTALL = 'pip install "avsearch[ray]"'


class RayMissingError(AvsearchError, ImportError):
    """--ray asked for, but Ray is not installed."""


class RayPlacementError(AvsearchError, ValueError):
    """More embed actors asked for than the Ray cluster has GPUs."""


class EmbedActorError(AvsearchError, RuntimeError):
    """The embed actors died before any work (their model could not be loaded)."""


@dataclass
class RayOptions:
    load_embedder: Callable[[], Embedder]  # run in each embed actor (picklable: e.g. a functools.partial)
    model_id: str  # the index's model: what the driver writes into rows
    address: Optional[str] = None  # None: a local Ray instance on every CPU and GPU; "auto", "ray://host:10001"
    chunk_s: float = 120.0  # media per decode task: a 10-hour file keeps 300 decoders busy
    embed_actors: Optional[int] = None  # None: one per GPU of the cluster (one on a cluster without GPUs)
    inflight: Optional[int] = None  # chunks decoded or decoding at once; None: 2 per decode slot
    decode_retries: int = 3  # runs of a decode task whose worker process died
    actor_restarts: int = 3
    # CPUs an embed actor reserves on a cluster without GPUs (where the model runs on them); None: 1.
    # 0 lets decoding use every CPU beside it (oversubscribed while both work).
    actor_cpus: Optional[float] = None


def import_ray():
    try:
        import ray
    except ImportError:
        raise RayMissingError(f"--ray needs Ray, which is not installed: {RAY_INSTALL}") from None
    return ray


def connect(ray, address: Optional[str]) -> bool:
    """Join or start Ray; True when this call started it (and the run should shut it down)."""
    if ray.is_initialized():  # an application (or a test session) set Ray up already: use it
        return False
    if address is None:
        ray.init(include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    else:
        ray.init(address=address, logging_level="WARNING", log_to_driver=False)
    return True


def chunks_of(job: FileJob, chunk_s: float) -> list[list[int]]:
    """The job's ranges to decode, cut into runs of consecutive ranges of about `chunk_s` media."""
    out: list[list[int]] = []
    for i in job.todo:
        a, b = job.ranges[i]
        if out and out[-1][-1] == i - 1 and b - job.ranges[out[-1][0]][0] <= chunk_s:
            out[-1].append(i)
        else:
            out.append([i])
    return out


def actor_count(embed_actors: Optional[int], gpus: int) -> int:
    """How many embed actors a run makes: `embed_actors`, by default one per GPU (one without GPUs)."""
    n = embed_actors or max(1, gpus)
    if gpus and n > gpus:  # each actor holds a whole GPU: the extra ones would never be placed
        raise RayPlacementError(
            f"embed_actors={n} but the Ray cluster has {gpus} GPU(s), and each embed actor holds one: "
            f"the extra actors could never start and the run would wait forever. Use embed_actors={gpus} "
            "or fewer (or leave it unset: one per GPU)")
    return n


@dataclass
class _Model:  # what _commit_for needs of the embedder: its id (the driver loads no model)
    model_id: str


def run_pipeline_ray(jobs: list[FileJob], store: Store, ray_options: RayOptions, options: PipelineOptions,
                     report: IndexReport, progress: Optional[ProgressCallback] = None, *,
                     state: Optional[Progress] = None) -> None:
    """`progress` hears of the embedding phase as files finish; `state`: the run's Progress to
    carry on (a new one by default)."""
    ray = import_ray()
    started = connect(ray, ray_options.address)
    try:
        _Run(ray, jobs, store, ray_options, options, report, progress, state).run()
    finally:
        if started:
            _ACTORS.clear()
            ray.shutdown()


class _Run:
    def __init__(self, ray, jobs, store, ray_options: RayOptions, options: PipelineOptions, report, progress,
                 state: Optional[Progress] = None):
        self.ray, self.jobs, self.store, self.ro, self.options = ray, jobs, store, ray_options, options
        self.report, self.progress = report, progress
        self.model = _Model(ray_options.model_id)
        self.state = _embedding_state(state or Progress(), jobs)
        self.ready: list[FileCommit] = []
        self.done: set[int] = set()
        self.last_commit = time.monotonic()
        self.commits_left = faults.driver_commits_left()
        self.dies_before_final = faults.driver_dies_before_final()
        self.chunks_left = [0] * len(jobs)
        self.clips_seen = [0] * len(jobs)
        self.damage: list[list] = [[] for _ in jobs]
        # Per file: chunks embedded and written as fragments, not committed yet: (ranges, result).
        self.written: list[list[tuple[list[int], EmbeddedChunk]]] = [[] for _ in jobs]
        self.target = store.fragment_target()
        self.pool_died = False

    def run(self) -> None:
        ray, ro = self.ray, self.ro
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        n_actors = actor_count(ro.embed_actors, gpus)
        actors, model_ids = _embed_pool(ray, ro, n_actors, gpus)
        # The actors' model must be the index's, as Index.embedder checks locally: two models'
        # vectors share no space. Checked before any chunk is sent, so no clip is written.
        try:
            for model_id in model_ids:
                self.store.check_model(model_id)
        except AvsearchError:
            _forget_pool(ray, actors)  # another model than the index's: its actors would only hold GPUs
            raise
        # Every actor writes into the index: one that cannot (no Lance, the index's folder not on its
        # node, another table at that path) stops the run here, not file after file.
        problems = [p for p in ray.get([a.check_destination.remote(self.target) for a in actors]) if p]
        if problems:
            raise FragmentWriteError(problems[0])
        decode = ray.remote(decode_chunk).options(num_cpus=1, max_retries=ro.decode_retries, retry_exceptions=False)
        actor_cpus = 0 if gpus else (1 if ro.actor_cpus is None else ro.actor_cpus)
        decode_slots = max(1, int(resources.get("CPU", 1) - n_actors * actor_cpus))
        inflight_max = ro.inflight or 2 * decode_slots + 2 * n_actors

        if self.progress:
            self.progress(self.state)
        work = []
        for j, job in enumerate(self.jobs):
            cut = chunks_of(job, ro.chunk_s)
            self.chunks_left[j] = len(cut)
            work.extend((j, idxs) for idxs in cut)
            if not cut:  # a resumed file whose every clip was committed: it only needs its "ok" row
                job.decoded = 0
                self.settle(j)
        work.reverse()  # pop() from the end: files in plan order
        try:
            self.embed_all(work, actors, decode, inflight_max)
        finally:
            if self.pool_died:  # an actor died for good: end the pool, the next run makes a new one
                _forget_pool(ray, actors)
        for j in range(len(self.jobs)):
            self.settle(j)
        announce_committing(self.state, self.progress)
        self.maybe_commit(force=True)

    def embed_all(self, work: list, actors: list, decode, inflight_max: int) -> None:
        """Decode and embed every chunk of `work`, at most `inflight_max` at once, feeding each
        result to take()."""
        ray, options = self.ray, self.options
        inflight: dict = {}  # ObjectRef -> (job, range indices, actor)
        load = {i: 0 for i in range(len(actors))}
        while work or inflight:
            while work and len(inflight) < inflight_max:
                j, idxs = work.pop()
                job = self.jobs[j]
                if j in self.done:  # failed already: its other chunks need no work
                    continue
                media = job.media
                want_video = media.has_video and any(v in (View.AV, View.VIDEO) for v in job.views)
                want_audio = media.has_audio and any(v in (View.AV, View.AUDIO) for v in job.views)
                decoded = decode.remote(media.path, [job.ranges[i] for i in idxs], media, options.decode,
                                        want_video, want_audio, options.stall_s)
                a = min(load, key=load.get)  # the actor with the fewest chunks waiting
                load[a] += 1
                destination = ClipDestination(self.target, media.path, job.fingerprint, media.duration_s,
                                              self.ro.model_id)
                inflight[actors[a].embed.remote(decoded, job.views, destination)] = (j, idxs, a)
            if not inflight:  # the work left was only chunks of files that failed already
                continue
            finished, _ = ray.wait(list(inflight), num_returns=1)
            for ref in finished:
                j, idxs, a = inflight.pop(ref)
                load[a] -= 1
                try:
                    result: EmbeddedChunk = ray.get(ref)
                except ray.exceptions.RayError as err:
                    if isinstance(err, ray.exceptions.ActorDiedError):  # for good (its restarts spent);
                        self.pool_died = True  # the pool's other actors still serve this run
                    result = EmbeddedChunk(error=_ray_failure(err))
                self.take(j, idxs, result)

    def take(self, j: int, idxs: list[int], result: EmbeddedChunk) -> None:
        job = self.jobs[j]
        self.chunks_left[j] -= 1
        if j in self.done:
            return
        if result.error is not None:
            job.error = job.error or result.error
        else:
            self.written[j].append((idxs[:len(result.spans)], result))  # ranges past the file's end had no clip
            self.clips_seen[j] += len(result.spans)
            self.damage[j].extend(result.damage)
            self.state.clips_decoded += len(result.spans)
            self.state.clips_done += len(result.clip_ids)
            self.state.phase_done = self.state.clips_done
            self.state.current = job.media.path
            if self.progress:  # after every chunk, as the local pipeline after every decoded clip and batch
                self.progress(self.state)
        if self.chunks_left[j] == 0 and job.error is None:
            job.decoded = self.clips_seen[j]
            job.damage = tuple(merged(self.damage[j]))
            if job.decoded == 0:
                job.error = "no clip could be decoded"
        self.settle(j)

    def settle(self, j: int) -> None:
        """As the local pipeline's settle: commit a finished file, or a part of a long one."""
        job = self.jobs[j]
        if j in self.done:
            return
        if job.error is None and job.decoded is None:  # a chunk of it is still out
            self.commit_part(j)
            return
        # A failed file's fragments stay uncommitted (orphans the store removes).
        chunks, self.written[j] = self.written[j], []
        self.ready.append(_commit_for(job, self.model, self.report, _written(chunks)))
        self.done.add(j)
        self.maybe_commit()
        self.state.files_done += 1
        self.state.media_s_done += job.media.duration_s
        self.state.current = job.media.path
        if self.progress:
            self.progress(self.state)

    def commit_part(self, j: int) -> None:
        """As the local pipeline's commit_part, in whole chunks: a chunk's fragments hold every
        view of its clips, and are committed together or not at all."""
        job = self.jobs[j]
        if job.error is not None:
            return
        chunks = sorted(self.written[j], key=lambda c: c[0][0] if c[0] else -1)
        # Some range waits for the final commit (a resumed file has something to decode). While a
        # chunk of the file is out, as here, that holds already; kept against a change of that.
        if len(job.committed) + sum(len(idxs) for idxs, _ in chunks) >= len(job.ranges):
            chunks = chunks[:-1]
        part = [i for idxs, _ in chunks for i in idxs]
        if sum(job.ranges[i][1] - job.ranges[i][0] for i in part) < self.options.partial_commit_s:
            return
        self.written[j] = [c for c in self.written[j] if not any(c is p for p in chunks)]
        self.ready.append(_part_commit(job, self.model, self.report, part, _written(chunks)))
        self.maybe_commit(force=True)  # a batch must never hold two rows of one path

    def maybe_commit(self, force: bool = False) -> None:
        options = self.options
        if self.ready and (force or len(self.ready) >= options.commit_every_files
                           or time.monotonic() - self.last_commit >= options.commit_every_s):
            if self.dies_before_final and any(self.dies_before_final in c.file_row["path"] and c.fragments
                                              and c.file_row["status"] == "ok" for c in self.ready):
                faults.kill_self()
            self.store.commit(self.ready)
            self.ready.clear()
            self.last_commit = time.monotonic()
            if self.commits_left is not None:
                self.commits_left -= 1
                if self.commits_left <= 0:
                    faults.kill_self()


# Embed actors kept for the next run while the Ray connection lasts, by (model loader, actors, GPUs,
# Ray session): loading WAVE-7B takes a minute, and an application that holds Ray (a service running
# indexing jobs, a test session) indexes again and again. A run that started Ray itself shuts it down
# at its end, and its actors with it. `release_actors()` frees their GPUs sooner.
_ACTORS: dict = {}


def _pool_key(ray, ro: RayOptions, n: int, gpus: int) -> tuple:
    import pickle

    cpus = 0 if gpus else (1 if ro.actor_cpus is None else ro.actor_cpus)
    return pickle.dumps(ro.load_embedder), n, gpus, cpus, ro.actor_restarts, ray.get_runtime_context().get_job_id()


def _embed_actors(ray, ro: RayOptions, n: int, gpus: int) -> list:
    cpus = 0 if gpus else (1 if ro.actor_cpus is None else ro.actor_cpus)
    key = _pool_key(ray, ro, n, gpus)
    if key not in _ACTORS:
        # An actor holds a GPU when the cluster has them; else it takes a CPU (the model runs there).
        cls = ray.remote(EmbedWorker).options(num_gpus=1 if gpus else 0, num_cpus=cpus,
                                              max_restarts=ro.actor_restarts, max_task_retries=ro.actor_restarts)
        release_actors()  # one pool at a time: another model's actors would hold the GPUs
        _ACTORS[key] = [cls.remote(ro.load_embedder) for _ in range(n)]
    return _ACTORS[key]


def _embed_pool(ray, ro: RayOptions, n: int, gpus: int) -> tuple[list, list[str]]:
    """The embed actors and each one's model id. A kept pool with an actor that died for good
    (its restarts spent, or killed) is dropped from _ACTORS and replaced, once."""
    while True:
        kept = _pool_key(ray, ro, n, gpus) in _ACTORS
        actors = _embed_actors(ray, ro, n, gpus)
        try:
            return actors, ray.get([actor.model_id.remote() for actor in actors])
        except ray.exceptions.RayActorError as err:
            _forget_pool(ray, actors)
            if kept:
                continue  # a new pool now
            # The traceback Ray carries ends with the loader's own error, which names its fix.
            lines = [line for line in str(err).strip().splitlines() if line.strip()]
            raise EmbedActorError(f"the embed actors could not load the model: {lines[-1] if lines else err}") from None


def _forget_pool(ray, actors: list) -> None:
    """Drop `actors` from _ACTORS and end them: the next run makes a new pool."""
    for key, pool in list(_ACTORS.items()):
        if pool is actors:
            del _ACTORS[key]
    for actor in actors:
        try:
            ray.kill(actor)
        except Exception:  # gone already
            pass


def release_actors() -> None:
    """End the embed actors kept from earlier runs (their models leave the GPUs)."""
    ray = import_ray()
    for actors in _ACTORS.values():
        for actor in actors:
            try:
                ray.kill(actor)
            except Exception:  # Ray already shut down, or the actor is gone: nothing to free
                pass
    _ACTORS.clear()


def _written(chunks: list[tuple[list[int], EmbeddedChunk]]) -> Written:
    return Written(fragments=[f for _, c in chunks for f in c.fragments],
                   clip_ids=[cid for _, c in chunks for cid in c.clip_ids])


def _ray_failure(err: BaseException) -> str:
    """A chunk whose work Ray gave up on: the reason its file is recorded as failed."""
    name = type(err).__name__
    if "WorkerCrashed" in name or "Died" in name or "Unavailable" in name:
        return (f"the decoder or embedder process died on it ({name}) after every retry; the file is probably "
                "damaged or hostile: re-encode it with ffmpeg to index it")
    first = str(err).strip().splitlines()[0] if str(err).strip() else name
    return f"{name}: {first}"
