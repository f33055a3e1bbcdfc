"""`Store`: one index directory — metadata, LanceDB tables, the derived ANN index and the
re-rank cache. The only module family that knows LanceDB and FAISS.

Layout of an index directory:
    avsearch.json   model id, model source, dimension, clip settings
    lance/          LanceDB tables `files`, `clips`, `rerank_cache`
    ann/            FAISS index derived from the clips that count (those a files row vouches for),
                    tagged with the clips and files table versions it covers
    write.lock      held by the one process allowed to write

An index on an object store (`s3://...`, locations.py) keeps avsearch.json and lance/ at its URI
and the rest, which needs a real file system, in a local cache folder (`self.directory`): the ANN
index is derived data, rebuilt from the tables where the cache is empty and updated where it is
stale, as the versions it covers say.
"""

from __future__ import annotations

import functools
import hashlib
import shutil
import time
import warnings
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

import numpy as np
import pyarrow as pa

from avsearch import preflight
from avsearch.errors import AvsearchError, IndexLockedError, ModelMismatchError
from avsearch.locations import IndexLocation, IndexURI, local_dir
from avsearch.store.ann import IVF_MIN_VECTORS, AnnConfig, AnnIndex, SearchState, _exact_subset, training_rows
from avsearch.store.faults import kind_of, store_faults
from avsearch.store.lock import WriteLock
from avsearch.store.lookup import find_sorted
from avsearch.store.meta import META_NAME, IndexMeta
from avsearch.store.schema import rerank_cache_schema, sql_in, sql_str
from avsearch.store.readers import no_readers, reading
from avsearch.store.retention import Retention
from avsearch.store.tables import CLIPS, FILES, FileCommit, Tables

ANN_DIR = "ann"
RERANK = "rerank_cache"


def _faults(method):
    """Store faults (full disk, read-only directory, damaged table) leave a Store method as
    AvsearchErrors that name the fix, never as lance's RuntimeErrors with Rust paths."""

    @functools.wraps(method)
    def guarded(self, *args, **kwargs):
        with store_faults(self.location, last_committed=self.last_committed):
            return method(self, *args, **kwargs)

    return guarded


class Store:
    def __init__(self, directory: IndexLocation, meta: IndexMeta, ann_config: Optional[AnnConfig] = None):
        # Where the tables and avsearch.json live (a folder, or an object-store URI), and the local
        # folder of everything else (the same folder, or the URI's cache folder).
        self.location: IndexLocation = directory if isinstance(directory, IndexURI) else Path(directory)
        self.directory = local_dir(self.location)
        if isinstance(self.location, IndexURI):
            self.directory.mkdir(parents=True, exist_ok=True)
        self.meta = meta
        self._tables: Optional[Tables] = None
        self.ann_config = ann_config or AnnConfig()
        self._ann: Optional[AnnIndex] = None
        self._ann_version: Optional[tuple[int, int]] = None
        self._ann_ids: Optional[np.ndarray] = None  # the row ids the served ANN index holds, once asked
        self.retention = Retention.from_env()  # how many old table versions a write run keeps
        self.last_committed: Optional[str] = None  # named by a disk-full error: work up to here is kept
        self._duplicates: Optional[tuple[int, dict[str, list[str]]]] = None  # (files version, fp -> other paths)

    @property
    def tables(self) -> Tables:
        """The LanceDB tables, opened on first use: a damaged table fails the command that reads
        it (with IndexDamagedError), not the opening of the index, so `status` and `doctor` work."""
        if self._tables is None:
            with store_faults(self.location, action="open"):
                uri = self.location.uri if isinstance(self.location, IndexURI) else None
                self._tables = Tables(self.directory, self.meta.dim, uri=uri)
        return self._tables

    # -- opening ---------------------------------------------------------------------------

    @staticmethod
    def exists(directory: IndexLocation) -> bool:
        if isinstance(directory, IndexURI):
            from avsearch import objstore

            return objstore.read_text(f"{directory.uri}/{META_NAME}") is not None
        return (Path(directory) / META_NAME).is_file()

    @staticmethod
    def check_location(directory: IndexLocation) -> None:
        """Refuse, before any work, a path that can never hold an index."""
        preflight.check_location(directory)

    @classmethod
    def open(cls, directory: IndexLocation, *, ann_config: Optional[AnnConfig] = None) -> "Store":
        directory = directory if isinstance(directory, IndexURI) else Path(directory)
        cls.check_location(directory)
        return cls(directory, IndexMeta.load(directory), ann_config)

    @classmethod
    def create(cls, directory: IndexLocation, meta: IndexMeta, *, ann_config: Optional[AnnConfig] = None) -> "Store":
        """A new index at `directory` or, when another run created one there since the caller
        looked, that one (the caller checks its model). Creation holds the write lock, so a
        second run creating the same index meanwhile gets the lock's message (on an object store:
        a second run on this machine; across machines, one writer at a time is the user's part)."""
        directory = directory if isinstance(directory, IndexURI) else Path(directory)
        cls.check_location(directory)
        with store_faults(directory, action="create an index in"):
            local_dir(directory).mkdir(parents=True, exist_ok=True)
            with WriteLock(local_dir(directory)):
                if not cls.exists(directory):
                    meta.save(directory)
                    return cls(directory, meta, ann_config)
        return cls.open(directory, ann_config=ann_config)

    def check_model(self, model_id: str) -> None:
        if model_id != self.meta.model_id:
            raise ModelMismatchError(
                f"the index at {self.location} was built with model {self.meta.model_id} "
                f"(from {self.meta.model_source}); the requested model is {model_id}. Vectors of two "
                "models do not share a space: drop --model to use the index's own model, or index "
                "into another directory with --index"
            )

    def write_lock(self) -> WriteLock:
        return WriteLock(self.directory)

    # -- writing ---------------------------------------------------------------------------

    @_faults
    def commit(self, commits: Sequence[FileCommit]) -> None:
        self.tables.commit(commits)
        if commits:
            self.last_committed = commits[-1].file_row["path"]

    def fragment_target(self):
        """Where Ray workers write this index's clips (avsearch.store.fragments.FragmentTarget)."""
        return self.tables.fragment_target()

    @_faults
    def repoint(self, old_path: str, new_row: dict) -> None:
        self.tables.repoint(old_path, new_row)

    @_faults
    def relocate(self, old_prefix: str, new_prefix: str) -> int:
        return self.tables.relocate(old_prefix, new_prefix)

    @_faults
    def remove_paths(self, paths: Sequence[str]) -> int:
        return self.tables.remove_paths(list(paths))

    @_faults
    def recover(self) -> int:
        return self.tables.recover()

    @_faults
    def finish_writes(self, *, purge: bool = False, on_ann: Optional[Callable[[], None]] = None) -> None:
        """End of a write run: compact the tables, bring the ANN index up to date, then drop the
        table versions beyond `self.retention` (retention.py). purge (after `remove`): first
        rewrite the tables whose data files still hold deleted rows, so nothing removed stays.
        on_ann: called when the compaction is done and the ANN index is next (progress)."""
        self.tables.compact()
        if purge:
            self.tables.purge_deleted()
        self.tables.refresh()
        if on_ann is not None:
            on_ann()
        self.ensure_ann(save=True)
        # Everything is committed: a failed cleanup must not fail the run; the next run tries again.
        try:
            self.remove_old_versions(keep_only_latest=purge)
        except Exception as err:
            warnings.warn(f"old versions of {self.location} were not cleaned up ({err}); the next run tries again")
        try:
            self.tables.remove_unreferenced_files()  # this run's uncommitted Ray fragments
        except Exception as err:
            warnings.warn(f"uncommitted fragments in {self.location} were not removed ({err}); the next run tries again")
        self.ensure_ann(save=True)  # a no-op unless the cleanup's own compaction made a version

    def remove_old_versions(self, *, keep_only_latest: bool = False) -> int:
        """Old versions beyond the retention go; never the one the saved ANN index covers, nor
        one a running query may read (see readers.py). keep_only_latest: whatever the retention
        says (after `remove`: the versions before it still hold what was removed). Call under the
        write lock."""
        retention = replace(self.retention, keep_versions=1) if keep_only_latest else self.retention
        with no_readers(self.directory) as idle:
            return self.tables.remove_old_versions(retention, readers_active=not idle,
                                                   protect=self._ann_covers())

    def _ann_covers(self) -> dict[str, int]:
        """The table versions the ANN index in use covers: the cleanup never removes them."""
        if self._ann_version is None:
            return {}
        clips_version, files_version = self._ann_version
        return {CLIPS: clips_version, FILES: files_version}

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Hold while a query reads (see readers.py): the tables are brought to the version current
        now, which a writer's cleanup keeps until the block ends (a handle left at an older
        version, as in a long-running service, may find that version's files gone)."""
        with reading(self.directory):
            self._refresh()
            with self.tables.pinned():  # an object-store index: one version check per query
                yield

    @_faults
    def _refresh(self) -> None:
        self.tables.current_versions()  # reopens the tables only when a commit or a cleanup happened

    # -- reading ---------------------------------------------------------------------------

    @_faults
    def file_rows(self, where: Optional[str] = None) -> list[dict]:
        return self.tables.file_rows(where)

    def path_patterns(self) -> dict:
        """The include/exclude patterns stored with the index ({} when none), read from disk: a
        long-lived process (the service) sees what a CLI run stored since it opened the index."""
        try:
            self.meta.patterns = IndexMeta.load(self.location).patterns
        except AvsearchError:  # unreadable now: what this process read at open
            pass
        return dict(self.meta.patterns or {})

    @_faults
    def set_path_patterns(self, patterns: dict) -> None:
        """Store include/exclude patterns for later runs (call under the write lock)."""
        self.meta.patterns = dict(patterns)
        self.meta.save(self.location)

    @_faults
    def file_rows_with_fingerprints(self, fingerprints: Sequence[str]) -> list[dict]:
        rows: list[dict] = []
        fingerprints = list(fingerprints)
        for i in range(0, len(fingerprints), 500):
            rows += self.tables.file_rows(sql_in("fingerprint", fingerprints[i : i + 500]))
        return rows

    @_faults
    def duplicate_paths(self, fingerprints) -> dict[str, list[str]]:
        """The other paths (rows with status "duplicate") of each content, sorted; read once per
        files table version, so a search pays a dict lookup per hit."""
        version = self.tables.current_versions()[1]
        if self._duplicates is None or self._duplicates[0] != version:
            by_fp: dict[str, list[str]] = {}
            t = self.tables.duplicate_rows()
            for path, fp in zip(t.column("path").to_pylist(), t.column("fingerprint").to_pylist()):
                by_fp.setdefault(fp, []).append(path)
            self._duplicates = (version, {fp: sorted(paths) for fp, paths in by_fp.items()})
        known = self._duplicates[1]
        return {fp: known[fp] for fp in fingerprints if fp in known}

    @_faults
    def committed_clips(self, path: str, fingerprint: str) -> tuple[list[float], int]:
        """A partly committed file's clip starts (sorted, distinct) and its clip row count."""
        t = self.tables.clip_meta(f"path = {sql_str(path)} AND fingerprint = {sql_str(fingerprint)}", ["start_s"])
        starts = t.column("start_s").to_pylist()
        return sorted(set(starts)), len(starts)

    @_faults
    def clip_meta_by_row_ids(self, row_ids) -> dict[int, dict]:
        return self.tables.clip_meta_by_row_ids(row_ids)

    @_faults
    def clip_by_id(self, clip_id: str) -> Optional[dict]:
        rows = self.tables.clip_meta(f"clip_id = {sql_str(clip_id)}").to_pylist()
        return rows[0] if rows else None

    @_faults
    def vectors(self, row_ids) -> np.ndarray:
        return self.tables.vectors_by_row_ids(np.asarray(row_ids, dtype=np.int64))

    @_faults
    def allowed_row_ids(self, where: Optional[str], path_glob: Optional[str] = None) -> Optional[np.ndarray]:
        """Row ids passing a filter, or None when nothing filters."""
        if not where and not path_glob:
            return None
        meta = self.tables.clip_meta(where, ["row_id", "path"])
        ids = np.asarray(meta.column("row_id").to_numpy(), dtype=np.int64)
        if path_glob:
            from fnmatch import fnmatch

            paths = meta.column("path").to_pylist()
            keep = np.array([fnmatch(p, path_glob) for p in paths], dtype=bool)
            ids = ids[keep] if len(ids) else ids
        return ids

    @_faults
    def search(self, queries: np.ndarray, k: int, *, allowed_ids: Optional[np.ndarray] = None,
               state: Optional[SearchState] = None):
        """(scores, row_ids) of the k best clips per query, exact-rescored (with the ANN index's
        own memory-mapped vectors: the table is not read on this path). `state`: pass the same
        one when asking the same queries again for more (see `SearchState`)."""
        ann = self.ensure_ann(save=False)
        if ann is None or k <= 0:
            q = len(queries)
            return np.zeros((q, 0), np.float32), np.zeros((q, 0), np.int64)
        if allowed_ids is not None:
            # A filter lists clips straight from the table, uncommitted ones included: only those
            # the ANN index holds (the vouched ones) may be scored.
            allowed_ids = _only_served(np.asarray(allowed_ids, dtype=np.int64), self._served_ids(ann))
        if allowed_ids is not None and len(allowed_ids) == 0:
            q = len(queries)
            return np.zeros((q, 0), np.float32), np.zeros((q, 0), np.int64)
        return ann.search(np.asarray(queries, dtype=np.float32), k, allowed_ids=allowed_ids, state=state)

    @_faults
    def gallery(self, view: str, paths: Optional[Sequence[str]] = None) -> np.ndarray:
        """Sorted row ids of the clips that count (vouched) and are embedded as `view`; only
        those of `paths` when given (an evaluation's data set in an index holding others)."""
        meta = self.tables.clip_meta(sql_in("view", [view]), ["row_id", "path"])
        if paths is not None:
            import pyarrow.compute as pc

            meta = meta.filter(pc.is_in(meta.column("path"), value_set=pa.array(sorted(set(paths)), pa.string())))
        ids = np.asarray(meta.column("row_id").to_numpy(), dtype=np.int64)
        return np.intersect1d(ids, self.tables.vouched_row_ids())

    @_faults
    def gallery_paths(self, view: str) -> set[str]:
        """The paths of the files with clips embedded as `view` (vouched or not)."""
        meta = self.tables.clip_meta(sql_in("view", [view]), ["path"])
        return set(meta.column("path").unique().to_pylist())

    @_faults
    def search_exact(self, queries: np.ndarray, k: int, row_ids: np.ndarray, *, chunk: int = 65_536):
        """(scores, row_ids) of the exact k best of `row_ids` per query, whatever index is served:
        the baseline `avsearch eval` measures the ANN index against. Vectors are read `chunk`
        rows at a time (a million 3584-d vectors would be 14 GB at once)."""
        queries = np.asarray(queries, dtype=np.float32)
        ids = np.asarray(row_ids, dtype=np.int64)
        best_s = np.zeros((len(queries), 0), np.float32)
        best_i = np.zeros((len(queries), 0), np.int64)
        for start in range(0, len(ids), chunk):
            s, i = _exact_subset(queries, k, ids[start : start + chunk], self.vectors)
            best_s, best_i = np.concatenate([best_s, s], axis=1), np.concatenate([best_i, i], axis=1)
            order = np.argsort(-best_s, axis=1, kind="stable")[:, :k]
            best_s, best_i = np.take_along_axis(best_s, order, 1), np.take_along_axis(best_i, order, 1)
        return best_s, best_i

    @_faults
    def search_ivf(self, queries: np.ndarray, k: int, row_ids: np.ndarray, config: Optional[AnnConfig] = None):
        """(scores, row_ids) of the k best of `row_ids` per query from an IVF index built now
        over just those clips (the store's own settings, whatever their count), not the served
        index: what the ANN costs in quality on this gallery. None when there are fewer than
        IVF_MIN_VECTORS clips to train it on."""
        ids = np.asarray(row_ids, dtype=np.int64)
        if len(ids) < IVF_MIN_VECTORS:
            return None
        config = replace(config or self.ann_config, flat_threshold=0)
        # Streamed as the served index's rebuild is: trained on a sample, filled block by block,
        # so a gallery of millions of clips never sits in memory whole.
        ids = np.sort(ids)
        sample = np.sort(np.random.default_rng(0).choice(ids, size=training_rows(len(ids), config), replace=False))
        ann = AnnIndex.build_streamed(len(ids), self.vectors(sample), self.tables.iter_vectors(keep=ids), config)
        return ann.search(np.asarray(queries, dtype=np.float32), k)

    @_faults
    def stats(self) -> dict:
        files = self.file_rows()
        ok = [f for f in files if f["status"] == "ok"]
        clips = self.tables.clip_meta(columns=["view", "start_s", "end_s"])
        seconds_by_view: dict[str, float] = {}
        clips_by_view: dict[str, int] = {}
        if clips.num_rows:
            views = clips.column("view").to_pylist()
            durs = (np.asarray(clips.column("end_s").to_numpy()) - np.asarray(clips.column("start_s").to_numpy()))
            for v, d in zip(views, durs):
                seconds_by_view[v] = seconds_by_view.get(v, 0.0) + float(d)
                clips_by_view[v] = clips_by_view.get(v, 0) + 1
        return {
            "index": str(self.location),
            "model_id": self.meta.model_id,
            "model_source": self.meta.model_source,
            "dim": self.meta.dim,
            "files_ok": len(ok),
            "files_partial": sum(f["status"] == "partial" for f in files),  # long files a run left half done
            "files_failed": sum(f["status"] == "failed" for f in files),
            # other paths of indexed content (copies, links): searchable through their content's clips
            "files_duplicate": sum(f["status"] == "duplicate" for f in files),
            "files_damaged": sum(f["status"] == "ok" and bool(f["error"]) for f in files),  # partly indexed
            "clips": int(clips.num_rows),
            "clips_by_view": clips_by_view,
            "hours_by_view": {v: s / 3600 for v, s in seconds_by_view.items()},
            "ann": self.ann_state(),
            "disk_bytes": self._disk_bytes(),
            "settings": self.meta.settings.__dict__ | {"views": list(self.meta.settings.views)},
            "patterns": self.path_patterns(),  # include/exclude globs later runs apply
        }

    def _disk_bytes(self) -> int:
        """The index's size: its folder, or its objects plus its local cache folder."""
        if isinstance(self.location, IndexURI):
            from avsearch import objstore

            return objstore.total_bytes(self.location.uri) + _dir_size(self.directory)
        return _dir_size(self.directory)

    # -- ANN index -------------------------------------------------------------------------

    @_faults
    def ann_state(self) -> dict:
        version = self._version_key()
        try:
            ann, covers = AnnIndex.load(self.directory / ANN_DIR)
        except (FileNotFoundError, ValueError):
            return {"kind": None, "fresh": False, "vectors": 0, "covers_version": None, "table_version": version}
        return {
            "kind": ann.kind,
            "fresh": _as_key(covers) == version,
            "vectors": int(ann.ntotal),
            "covers_version": _as_key(covers),
            "table_version": version,
            "memory_bytes": int(ann.memory_bytes()),
            "rescore_file_bytes": int(ann.rescore_bytes()),  # memory-mapped: page cache, not process memory
        }

    def _version_key(self) -> tuple[int, int]:
        """What the ANN index must cover: the clips AND the files table versions. A files row
        commit is what makes its clips count, so it must change what is served."""
        return self.tables.clips_version(), self.tables.files_version()

    @_faults
    def ensure_ann(self, *, save: bool) -> Optional[AnnIndex]:
        """An ANN index over exactly the clips that count (those an "ok" or "partial" files row
        vouches for, see tables.py): clips of a commit that was cut short are never served, at no
        cost per query. A saved index that covers other table versions is never served as is: it
        is updated (adds/removes) or rebuilt first."""
        version = self.tables.current_versions()  # reopens the tables only after a commit
        if self._ann is not None and self._ann_version == version:
            return self._ann
        ann, covers = self._load_ann()
        ids = None
        if ann is None or _as_key(covers) != version:
            ann, ids = self._update_or_rebuild(ann)
            if save:
                self._save_ann(ann, ids, version)
            elif isinstance(self.location, IndexURI):
                self._keep_in_cache(ann, ids, version)
        self._ann, self._ann_version, self._ann_ids = ann, version, ids
        return ann

    def _keep_in_cache(self, ann: Optional[AnnIndex], ids: np.ndarray, version: tuple[int, int]) -> None:
        """Save the ANN index a reader of an object-store index had to build (a fresh machine, an
        empty or stale cache) into the cache folder, so that the next query process on this
        machine loads it instead of building it again. Only when no writer here holds the lock
        (a writer saves its own); the cache is this machine's, so a failure only costs time."""
        try:
            with WriteLock(self.directory):
                self._save_ann(ann, ids, version)
        except IndexLockedError:
            pass  # a writer is at work here: it saves the index when it is done
        except Exception as err:  # noqa: BLE001 - faiss raises RuntimeError (a full disk, say); the query goes on
            warnings.warn(f"the ANN index of {self.location} was not kept in {self.directory} ({err})")

    def _served_ids(self, ann: AnnIndex) -> np.ndarray:
        """The sorted row ids `ann` holds (read from faiss once per table version)."""
        if self._ann_ids is None or self._ann is not ann:
            self._ann_ids = np.sort(ann.ids)
        return self._ann_ids

    @_faults
    def reindex(self) -> Optional[AnnIndex]:
        """Rebuild the ANN index from the clips table from scratch."""
        shutil.rmtree(self.directory / ANN_DIR, ignore_errors=True)
        self._ann = self._ann_version = self._ann_ids = None
        return self.ensure_ann(save=True)

    def _ann_owner(self) -> str:
        """Which index a saved ANN index was built for. Row ids come from paths and fingerprints,
        so an index made anew at the same location (another model of the same width, other
        settings) has the same ids and table versions may match: a cached ANN index of the old
        one (an object-store index's cache folder outlives it) would re-score with old vectors."""
        return f"{self.meta.model_id}@{self.meta.created_at!r}"

    def _load_ann(self) -> tuple[Optional[AnnIndex], Optional[int]]:
        try:
            ann, covers = AnnIndex.load(self.directory / ANN_DIR)
        except FileNotFoundError:
            return None, None
        except ValueError as err:
            # Rebuilt below, but a reader does not save it: say how to stop every query paying that.
            warnings.warn(f"{err}; until then each search process rebuilds it in memory")
            return None, None
        if ann.owner != self._ann_owner():
            return None, None
        return ann, covers

    def _update_or_rebuild(self, ann: Optional[AnnIndex]) -> tuple[Optional[AnnIndex], np.ndarray]:
        ids = self.tables.vouched_row_ids()
        if len(ids) == 0:
            return None, ids
        old = ann.ids if ann is not None else None
        if ann is not None and ann.dim == self.meta.dim:
            gone = np.setdiff1d(old, ids)
            new = ids[~np.isin(ids, old)]
            if len(gone):
                ann.remove(gone)
            if len(new):
                ann.add(self.vectors(new), new)
            if not ann.needs_rebuild():
                return ann, ids
        if len(ids) >= self.ann_config.flat_threshold:
            return self._build_streamed(ids), ids
        all_ids, vectors = self.tables.all_vectors()
        keep = np.isin(all_ids, ids)
        return AnnIndex.build(vectors[keep], all_ids[keep], self.ann_config), ids

    def _build_streamed(self, ids: np.ndarray) -> AnnIndex:
        """The IVF index over the vouched `ids` without reading every vector at once: trained on a random
        sample of them, then filled in blocks streamed from the clips table (an index of tens of
        millions of clips, after a distributed run, builds on a machine with 32 GB)."""
        rng = np.random.default_rng(0)
        sample = np.sort(rng.choice(ids, size=training_rows(len(ids), self.ann_config), replace=False))
        blocks = self.tables.iter_vectors(keep=ids)
        return AnnIndex.build_streamed(len(ids), self.vectors(sample), blocks, self.ann_config,
                                       spill_dir=self.directory)

    def _save_ann(self, ann: Optional[AnnIndex], ids: np.ndarray, version: tuple[int, int]) -> None:
        directory = self.directory / ANN_DIR
        if ann is None:  # nothing to index: drop any saved index so it is never served stale
            shutil.rmtree(directory, ignore_errors=True)
            return
        ann.save(directory, covers_version=list(version), owner=self._ann_owner())

    # -- instruction re-rank cache ---------------------------------------------------------

    def _rerank_table(self, create: bool):
        listed = self.tables._db.list_tables()
        names = set(getattr(listed, "tables", listed))
        if RERANK in names:
            return self.tables._db.open_table(RERANK)
        if not create:
            return None
        return self.tables._db.create_table(RERANK, schema=rerank_cache_schema(self.meta.dim))

    @staticmethod
    def rerank_key(clip_id: str, instruction: str, model_id: str) -> str:
        return hashlib.blake2b(f"{model_id}\0{instruction}\0{clip_id}".encode(), digest_size=16).hexdigest()

    @_faults
    def rerank_cache_get(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        table = self._rerank_table(create=False)
        if table is None or not keys:
            return {}
        t = table.search().where(sql_in("key", list(keys))).select(["key", "vector"]).limit(None).to_arrow()
        vecs = np.asarray(t.column("vector").combine_chunks().values.to_numpy(), np.float32).reshape(-1, self.meta.dim) if t.num_rows else []
        return dict(zip(t.column("key").to_pylist(), vecs))

    def rerank_cache_put(self, entries: dict[str, tuple[str, np.ndarray]]) -> None:
        try:
            self._rerank_cache_write(entries)
        except (OSError, RuntimeError) as err:
            if kind_of(err) != "read_only":
                raise
            # A read-only index still answers instruction queries; it just cannot remember them.

    @_faults
    def _rerank_cache_write(self, entries: dict[str, tuple[str, np.ndarray]]) -> None:
        if not entries:
            return
        table = self._rerank_table(create=True)
        keys = list(entries)
        vecs = np.stack([entries[k][1] for k in keys]).astype(np.float32)
        data = pa.Table.from_pydict(
            {
                "key": keys,
                "clip_id": [entries[k][0] for k in keys],
                "created_at": [time.time()] * len(keys),
                "vector": pa.FixedSizeListArray.from_arrays(pa.array(vecs.ravel()), self.meta.dim),
            },
            schema=rerank_cache_schema(self.meta.dim),
        )
        table.merge_insert("key").when_matched_update_all().when_not_matched_insert_all().execute(data)


def _only_served(ids: np.ndarray, served: np.ndarray) -> np.ndarray:
    """`ids` that are in the sorted array `served` (binary search: no sort or hash of `ids`,
    which np.intersect1d spent ~50 ms on for 30k of them)."""
    if not len(served) or not len(ids):
        return ids[:0]
    return ids[find_sorted(served, ids)[1]]


def _as_key(covers) -> Optional[tuple]:
    """A saved index's coverage as a comparable key (older indexes saved one int: never fresh)."""
    return tuple(covers) if isinstance(covers, (list, tuple)) else covers


def _dir_size(directory: Path) -> int:
    return sum(p.stat().st_size for p in Path(directory).rglob("*") if p.is_file())
