"""The LanceDB side of an index: the `files` and `clips` tables and the rules that keep them
consistent.

Crash safety without multi-table transactions: a clip counts only while a `files` row with status
"ok" carries the same (path, fingerprint). A commit therefore (1) appends the new clips, (2)
upserts the files rows — the commit point — and (3) deletes clips that no longer match. A run killed
between any two steps leaves orphans that `recover()` deletes at the start of the next write, so a
re-run converges to exactly what a clean run produces.

A long file is committed in parts (the indexer's `partial_commit_s`): its row says "partial" and
vouches for every clip of its (path, fingerprint). Each part is one append holding every view of
its clips, so a clip time range is in the table with all its views or not at all, whether or not
the row of its commit was written; a re-run decodes only the time ranges with no clips and ends
with an "ok" row (duplicates cannot arise: a range with clips is never embedded again).
"""

from __future__ import annotations

import os
import threading
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Iterable, Iterator, Optional, Sequence

import lancedb
import numpy as np
import pyarrow as pa

from avsearch.store.retention import Retention, removable_before
from avsearch.store.fragments import NO_VERSION_IS_THIS_OLD
from avsearch.store.lookup import find_sorted
from avsearch.store.schema import FILES_SCHEMA, clips_schema, clips_table, sql_in, sql_starts_with, sql_str

_clips_table = clips_table  # the name tests use

FILES = "files"
CLIPS = "clips"

_IN_CHUNK = 500  # ids per IN (...) filter; keeps generated SQL short
_CLEANUP_MARGIN_S = 0.1
_META_COLUMNS = ["clip_id", "row_id", "fingerprint", "path", "start_s", "end_s", "view", "file_duration_s",
                 "indexed_at"]


@dataclass
class FileCommit:
    """One source file's outcome: its files row plus the clips (and vectors) that go with it."""

    file_row: dict
    clip_rows: list[dict] = field(default_factory=list)
    vectors: Optional[np.ndarray] = None
    replace_clips: bool = True  # False: only the row changes (e.g. a touched file), clips stay
    # True: clips_rows continue the clips already committed for this (path, fingerprint) (a long
    # file committed in parts); only the path's clips of other content are superseded.
    append: bool = False
    # Clips written already as Lance fragments (by Ray workers, fragments.py): their metadata, and
    # the clip ids they hold. They are committed with the batch's clip_rows, in the same append.
    fragments: list[str] = field(default_factory=list)
    fragment_clip_ids: list[str] = field(default_factory=list)

    def clip_ids(self) -> set[str]:
        """Every clip id this commit writes (the path's other clips are superseded)."""
        return {r["clip_id"] for r in self.clip_rows} | set(self.fragment_clip_ids)


class Tables:
    def __init__(self, directory: Path, dim: int, *, uri: Optional[str] = None):
        """The tables in `directory`/lance, or at `uri`/lance for an index on an object store
        (`directory` is then its local cache folder, which holds no table)."""
        self.directory = Path(directory)
        self.dim = dim
        self.uri = uri
        self._listing_fs = None  # (pyarrow FileSystem, path) of an object-store index's tables, once made
        self._pin = threading.local()  # .on inside `pinned()`: per thread, so a writer thread never sees it
        if uri is None:
            self._db = lancedb.connect(str(self.directory / "lance"))
        else:
            from avsearch.objstore import storage_options

            self._db = lancedb.connect(f"{uri}/lance", storage_options=storage_options() or None)
        listed = self._db.list_tables()
        names = set(getattr(listed, "tables", listed))
        self.files = (
            self._db.open_table(FILES) if FILES in names else self._db.create_table(FILES, schema=FILES_SCHEMA)
        )
        self.clips = (
            self._db.open_table(CLIPS) if CLIPS in names else self._db.create_table(CLIPS, schema=clips_schema(dim))
        )
        self._addresses: Optional[tuple[int, np.ndarray, np.ndarray]] = None  # (version, row ids, addresses)
        self._seen: Optional[tuple[tuple, tuple[int, int]]] = None  # (manifest listing, (clips, files) versions)
        self._meta: Optional[tuple[int, np.ndarray, pa.Table]] = None  # (clips version, sorted row ids, rows)

    # -- reading -------------------------------------------------------------------------

    def refresh(self) -> None:
        """See commits made by other processes since these handles were opened."""
        self.files = self._db.open_table(FILES)
        self.clips = self._db.open_table(CLIPS)

    def current_versions(self) -> tuple[int, int]:
        """(clips, files) table versions as of now, other processes' commits included, at the
        cost of listing the tables' _versions folders (~30 us) instead of reopening both tables
        (~1.8 ms) and asking each its version (~0.3 ms each, through LanceDB's event loop) on every
        search. Every Lance commit (append, delete, merge, compaction, overwrite) writes a new
        manifest there, and a cleanup removes some, so an unchanged listing means no commit since
        the versions were read; a changed one reopens both tables. The listing is taken before
        reopening: a commit landing in between changes the next listing, never hides."""
        if getattr(self._pin, "on", False) and self._seen is not None:
            return self._seen[1]
        listing = self._manifest_listing()
        if listing is None or self._seen is None or self._seen[0] != listing:
            self.refresh()
            self._seen = (listing, (self.clips_version(), self.files_version())) if listing is not None else None
            if listing is None:  # no local folder to list (another storage): reopen every time
                return self.clips_version(), self.files_version()
        return self._seen[1]

    @contextmanager
    def pinned(self) -> Iterator[None]:
        """On an object store, the table versions seen last (at the start of the block) stand until
        its end (one query reads one version): a query checks them once instead of at each of its
        reads, each check a LIST request per table. A local index lists each time (~30 us). Only
        the calling thread is pinned: another one (an indexing job in `avsearch serve`) that
        commits meanwhile checks as always."""
        if self.uri is None or getattr(self._pin, "on", False):
            yield
            return
        self._pin.on = True  # the check Store.reading has just made stands
        try:
            yield
        finally:
            self._pin.on = False

    def _manifest_listing(self) -> Optional[tuple]:
        if self.uri is not None:
            return self._object_listing()
        try:
            return tuple(sorted(os.listdir(self.directory / "lance" / f"{name}.lance" / "_versions"))
                         for name in (CLIPS, FILES))
        except OSError:
            return None

    def _object_listing(self) -> Optional[tuple]:
        """The same listing on an object store: one LIST request per table, where reopening both
        costs several requests per table (measured on loopback: benchmarks/results/objstore-*)."""
        from pyarrow import fs

        try:
            if self._listing_fs is None:
                from avsearch.objstore import filesystem

                self._listing_fs = filesystem(f"{self.uri}/lance")
            filesystem_, root = self._listing_fs
            return tuple(tuple(sorted(i.base_name for i in filesystem_.get_file_info(
                fs.FileSelector(f"{root}/{name}.lance/_versions")))) for name in (CLIPS, FILES))
        except Exception:  # unlistable here: reopen every time, as the docstring above says
            return None

    def clips_version(self) -> int:
        return int(self.clips.version)

    def files_version(self) -> int:
        return int(self.files.version)

    def vouched_row_ids(self) -> np.ndarray:
        """Sorted row ids of the clips that count: those an "ok" or "partial" files row vouches
        for by (path, fingerprint). Clips of a commit cut short before its row was written, and
        superseded clips not deleted yet, are left out."""
        clips = self._scan(self.clips, ["row_id", "path", "fingerprint"])
        rows = self._scan(self.files, ["path", "fingerprint"], "status = 'ok' OR status = 'partial'")
        if clips.num_rows == 0 or rows.num_rows == 0:
            return np.zeros(0, dtype=np.int64)
        vouched = clips.join(rows, keys=["path", "fingerprint"], join_type="left semi")
        return np.sort(np.asarray(vouched.column("row_id").to_numpy(), dtype=np.int64))

    def _scan(self, table, columns: Sequence[str], where: Optional[str] = None) -> pa.Table:
        q = table.search()
        if where:
            q = q.where(where)
        return q.select(list(columns)).limit(None).to_arrow()

    def file_rows(self, where: Optional[str] = None) -> list[dict]:
        cols = [f.name for f in FILES_SCHEMA]
        return self._scan(self.files, cols, where).to_pylist()

    def duplicate_rows(self) -> pa.Table:
        """(path, fingerprint) of the rows with status "duplicate" (other paths of indexed content)."""
        return self._scan(self.files, ["path", "fingerprint"], "status = 'duplicate'")

    def clip_meta(self, where: Optional[str] = None, columns: Optional[Sequence[str]] = None) -> pa.Table:
        cols = columns or _META_COLUMNS
        return self._scan(self.clips, cols, where)

    def clip_meta_by_row_ids(self, row_ids: Iterable[int]) -> dict[int, dict]:
        """Metadata rows of the given row ids, from an in-memory copy of the clips' metadata
        columns (no vectors) read once per clips table version: a LanceDB take per search cost
        ~5.5 ms at 100k clips, a lookup of 40 in the copy ~0.6 ms (building it: ~130 ms). Memory:
        ~71 bytes per clip at 100k (clip id, row id, times; path, fingerprint and view
        dictionary-encoded: one entry per file), see `meta_cache_bytes`."""
        ids = np.asarray([int(i) for i in row_ids if int(i) >= 0], dtype=np.int64)
        if not len(ids):
            return {}
        known, rows = self._meta_rows()
        at, found = find_sorted(known, ids)
        t = rows.take(pa.array(at[found]))
        columns = {name: t.column(name).to_pylist() for name in t.column_names}  # column-wise: ~25% faster
        return {row_id: dict(zip(columns, values)) for row_id, values in zip(columns["row_id"], zip(*columns.values()))}

    def _meta_rows(self) -> tuple[np.ndarray, pa.Table]:
        """(sorted row ids, their metadata rows in that order) for the clips table's version now."""
        version = self.current_versions()[0]
        if self._meta is None or self._meta[0] != version:
            self._meta = None  # the old copy goes before the new one is read (peak memory)
            t = self._scan(self.clips, _META_COLUMNS)
            ids = np.asarray(t.column("row_id").to_numpy(), dtype=np.int64)
            order = np.argsort(ids, kind="stable")
            t = t.take(pa.array(order))
            # One entry per file instead of per clip; to_pylist gives plain strings back.
            t = pa.table({name: (t.column(name).combine_chunks().dictionary_encode()
                                 if name in ("path", "fingerprint", "view") else t.column(name).combine_chunks())
                          for name in t.column_names})
            self._meta = (version, ids[order], t)
        return self._meta[1], self._meta[2]

    def meta_cache_bytes(self) -> int:
        """Process memory held by the metadata copy (0 before the first search of a version)."""
        return int(self._meta[2].nbytes + self._meta[1].nbytes) if self._meta is not None else 0

    def vectors_by_row_ids(self, row_ids: np.ndarray) -> np.ndarray:
        """Stored vectors in the order of `row_ids` (zeros for ids that no longer exist)."""
        ids = np.asarray(row_ids, dtype=np.int64).ravel()
        t = self._take(np.unique(ids[ids >= 0]), ["row_id", "vector"])
        out = np.zeros((len(ids), self.dim), dtype=np.float32)
        if t.num_rows:
            have = np.asarray(t.column("row_id").to_numpy(), dtype=np.int64)
            order = np.argsort(have)
            at, hit = find_sorted(have[order], ids)
            out[hit] = _vector_matrix(t.column("vector"), self.dim)[order[at[hit]]]
        return out

    def _take(self, ids: np.ndarray, columns: Sequence[str]) -> pa.Table:
        """Rows of the given row ids by Lance's random access (by row address), not by a
        `row_id IN (...)` filter, which scans the row-id column of the whole table (25-50 ms at
        100k-200k clips, per call). Row addresses change with every commit and compaction, so the
        row id -> address map is read again (one scan of two int columns) whenever the table
        version differs from the map's."""
        if not len(ids):
            return self.clips.schema.empty_table().select(list(columns))
        known, addresses = self._row_addresses()
        at, found = find_sorted(known, ids)
        if not found.any():
            return self.clips.schema.empty_table().select(list(columns))
        return self.clips.take_row_ids([int(a) for a in addresses[at[found]]]).select(list(columns)).to_arrow()

    def _row_addresses(self) -> tuple[np.ndarray, np.ndarray]:
        """(sorted row ids, their Lance row addresses) for the clips table's current version."""
        version = self.clips_version()
        if self._addresses is None or self._addresses[0] != version:
            t = self.clips.search().select(["row_id"]).with_row_id(True).limit(None).to_arrow()
            ids = np.asarray(t.column("row_id").to_numpy(), dtype=np.int64)
            addresses = np.asarray(t.column("_rowid").to_numpy(), dtype=np.uint64)
            order = np.argsort(ids, kind="stable")
            self._addresses = (version, ids[order], addresses[order])
        return self._addresses[1], self._addresses[2]

    def all_row_ids(self) -> np.ndarray:
        t = self._scan(self.clips, ["row_id"])
        return np.asarray(t.column("row_id").to_numpy(), dtype=np.int64)

    def all_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """Every clip's (row_id, vector), for (re)building the ANN index."""
        t = self._scan(self.clips, ["row_id", "vector"])
        ids = np.asarray(t.column("row_id").to_numpy(), dtype=np.int64)
        return ids, _vector_matrix(t.column("vector"), self.dim)

    def iter_vectors(self, keep: Optional[np.ndarray] = None, block_rows: int = 65_536):
        """Every clip's (row ids, vectors) in blocks of about `block_rows` (a sorted `keep`: only
        those ids), read as a stream: memory holds one block, whatever the table's size."""
        reader = self.clips.search().select(["row_id", "vector"]).limit(None).to_batches(block_rows)
        for batch in reader:
            ids = np.asarray(batch.column("row_id").to_numpy(), dtype=np.int64)
            vectors = _vector_matrix(pa.chunked_array([batch.column("vector")]), self.dim)
            if keep is not None:
                mask = np.isin(ids, keep, assume_unique=False)
                ids, vectors = ids[mask], vectors[mask]
            yield ids, vectors

    def count_clips(self, where: Optional[str] = None) -> int:
        return int(self.clips.count_rows(where) if where else self.clips.count_rows())

    # -- writing -------------------------------------------------------------------------

    def commit(self, commits: Sequence[FileCommit]) -> None:
        """Write several files' outcomes with the crash-safe ordering described above."""
        if not commits:
            return
        clip_rows: list[dict] = []
        vectors: list[np.ndarray] = []
        for c in commits:
            if c.clip_rows:
                assert c.vectors is not None and len(c.vectors) == len(c.clip_rows)
                clip_rows.extend(c.clip_rows)
                vectors.append(np.asarray(c.vectors, dtype=np.float32))
        fragments = [f for c in commits for f in c.fragments]
        if fragments:
            self._append_fragments(fragments, clip_rows, vectors)
        elif clip_rows:
            self.clips.add(clips_table(clip_rows, np.concatenate(vectors), self.dim))
        self._upsert_files([c.file_row for c in commits])
        # Drop superseded clips: same path, but not among the rows just written (a file committed in
        # parts: of another content). One scan and one delete for the batch, not one of each per
        # file: on an object store each is several requests (benchmarks/results/objstore.md).
        replacing = [c for c in commits if c.replace_clips]
        committed = self._clips_of_paths([c.file_row["path"] for c in replacing])
        stale: list[str] = []
        for c in replacing:
            old = committed.get(c.file_row["path"], [])
            if c.append:
                stale += [cid for cid, fp in old if fp != c.file_row["fingerprint"]]
            else:
                keep = c.clip_ids()
                stale += [cid for cid, _ in old if cid not in keep]
        stale = list(dict.fromkeys(stale))
        for i in range(0, len(stale), _IN_CHUNK):
            self.clips.delete(sql_in("clip_id", stale[i : i + _IN_CHUNK]))

    def _clips_of_paths(self, paths: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
        """(clip id, fingerprint) of every clip of each of `paths`."""
        out: dict[str, list[tuple[str, str]]] = {}
        paths = list(dict.fromkeys(paths))
        for i in range(0, len(paths), _IN_CHUNK):
            t = self.clip_meta(sql_in("path", paths[i : i + _IN_CHUNK]), ["clip_id", "path", "fingerprint"])
            for cid, path, fp in zip(t.column("clip_id").to_pylist(), t.column("path").to_pylist(),
                                     t.column("fingerprint").to_pylist()):
                out.setdefault(path, []).append((cid, fp))
        return out

    def _append_fragments(self, fragments: list[str], clip_rows: list[dict], vectors: list[np.ndarray]) -> None:
        """One Lance commit appending the workers' fragments (and `clip_rows`, written here as one
        more fragment): the batch's clips land together or not at all, as with clips.add."""
        from avsearch.store.fragments import FragmentWriteError, commit_fragments, missing_files, write_clip_fragments

        dataset = self.clips.to_lance()
        missing = missing_files(dataset.uri, fragments)
        if missing:
            raise FragmentWriteError(
                f"{len(missing)} data files that Ray workers wrote are not in {dataset.uri} (first: {missing[0]}): "
                "a worker wrote into another table at the same path on its own node. Nothing of this batch was "
                "committed; put --index on storage every node reaches at the same path")
        if clip_rows:
            fragments = fragments + write_clip_fragments(self.fragment_target(), clip_rows, np.concatenate(vectors))
        commit_fragments(dataset.uri, fragments, read_version=dataset.version, storage_options=self._storage_options())
        self.clips = self._db.open_table(CLIPS)  # the handle would not see a commit made past LanceDB

    def fragment_target(self):
        """Where workers write clip fragments (fragments.py): this index's clips dataset."""
        from avsearch.store.fragments import FragmentTarget

        dataset = self.clips.to_lance()
        return FragmentTarget(uri=str(dataset.uri), dim=self.dim, storage_version=str(dataset.data_storage_version),
                              version=int(dataset.version), rows=int(dataset.count_rows()),
                              storage_options=self._storage_options())

    def _storage_options(self) -> dict:
        """Lance's storage options for these tables ({} for a local folder)."""
        if self.uri is None:
            return {}
        from avsearch.objstore import storage_options

        return storage_options()

    def remove_unreferenced_files(self) -> int:
        """Delete the clips dataset's data files that no version lists: fragments Ray workers wrote
        for a commit that never came (a failed file, a chunk run twice, a killed driver). Without
        Lance's own package (the `ray` extra) no worker can have written any. Call only under the
        write lock, when no worker of this index is writing. Returns how many files went."""
        try:
            from avsearch.store.fragments import remove_unreferenced_files
            dataset = self.clips.to_lance()
        except ImportError:
            return 0
        return remove_unreferenced_files(dataset)

    def repoint(self, old_path: str, new_row: dict) -> None:
        """A moved file: same content, new path. Nothing is re-embedded."""
        new_path, fp = new_row["path"], new_row["fingerprint"]
        # Clips of whatever used to live at the new path are superseded.
        self.clips.delete(f"path = {sql_str(new_path)} AND fingerprint != {sql_str(fp)}")
        self._upsert_files([new_row])  # both rows valid for a moment: clips stay valid throughout
        self.clips.update(where=f"path = {sql_str(old_path)}", values={"path": new_row["path"]})
        self.files.delete(f"path = {sql_str(old_path)}")

    def remove_paths(self, paths: Sequence[str]) -> int:
        removed = 0
        for i in range(0, len(paths), _IN_CHUNK):
            chunk = list(paths[i : i + _IN_CHUNK])
            removed += self.files.count_rows(sql_in("path", chunk))
            self.files.delete(sql_in("path", chunk))  # commit point: their clips are now orphans
            self.clips.delete(sql_in("path", chunk))
        return removed

    def recover(self) -> int:
        """Delete clips that no "ok" or "partial" files row vouches for (left by a killed run).
        Returns the count."""
        valid = {(r["path"], r["fingerprint"]) for r in self.file_rows("status = 'ok' OR status = 'partial'")}
        meta = self.clip_meta(columns=["clip_id", "path", "fingerprint"])
        orphans = [
            cid
            for cid, p, fp in zip(
                meta.column("clip_id").to_pylist(), meta.column("path").to_pylist(), meta.column("fingerprint").to_pylist()
            )
            if (p, fp) not in valid
        ]
        for i in range(0, len(orphans), _IN_CHUNK):
            self.clips.delete(sql_in("clip_id", orphans[i : i + _IN_CHUNK]))
        try:
            self.remove_unreferenced_files()  # fragments a killed Ray run wrote but never committed
        except Exception as err:  # only disk space is at stake: never fail a run over it
            warnings.warn(f"uncommitted clip files were not removed ({err}); the next run tries again")
        return len(orphans)

    def compact(self) -> None:
        """Merge the small fragments many per-file commits leave behind."""
        for t in (self.files, self.clips):
            try:
                # Old versions are retention.py's to remove (it spares a running query's and the
                # ANN index's); optimize()'s own default cleanup (older than 7 days) would not.
                t.optimize(cleanup_older_than=NO_VERSION_IS_THIS_OLD)
            except Exception:  # compaction is an optimisation; never fail a run over it
                pass

    def relocate(self, old_prefix: str, new_prefix: str) -> int:
        """Re-point every path under `old_prefix` (a folder, by whole components) to the same place
        under `new_prefix`; clip ids, row ids and vectors stay. In the order `repoint` uses: the new
        rows are added first (old and new both vouch for the clips while they move), then the clips
        move, then the old rows go. A run killed on the way leaves what a second run completes.
        Returns how many files rows moved."""
        under = _under(old_prefix)
        rows = self.file_rows(under)
        if rows:
            moved = [dict(r, path=new_prefix + r["path"][len(old_prefix):]) for r in rows]
            self._upsert_files(moved)
        self.clips.update(where=under, values_sql={"path": _repoint_sql(old_prefix, new_prefix)})
        if rows:
            self.files.delete(under)
        return len(rows)

    def purge_deleted(self) -> list[str]:
        """Rewrite each table that still carries deleted rows in its data files, so removed paths
        and vectors leave the newest version's files too (compaction rewrites a fragment only
        once over 10% of it is deleted). The rewrite is one commit, like any other; the old
        versions that still hold the rows go with the version cleanup. Returns the tables rewritten."""
        rewritten = []
        for name, schema in ((FILES, FILES_SCHEMA), (CLIPS, clips_schema(self.dim))):
            table = self._db.open_table(name)
            if not _deleted_rows(table):
                continue
            data = table.to_arrow().select([f.name for f in schema]).cast(schema)
            self._db.create_table(name, data, schema=schema, mode="overwrite")
            rewritten.append(name)
        self.refresh()
        return rewritten

    def versions(self) -> dict[str, list[int]]:
        """The versions each table keeps on disk, oldest first."""
        return {name: [int(v["version"]) for v in self._db.open_table(name).list_versions()] for name in (FILES, CLIPS)}

    def remove_old_versions(self, retention: Retention, *, readers_active: bool,
                            protect: dict[str, int] | None = None) -> int:
        """Delete the versions of `files` and `clips` that `retention` lets go (retention.py says
        which), with the data files only they used. Call only under the write lock: files of
        unfinished commits go too, and only a writer can be making those. Returns how many went."""
        removed = 0
        for name in (FILES, CLIPS):
            table = self._db.open_table(name)
            listed = table.list_versions()
            stamps = [v["timestamp"].timestamp() for v in listed]  # naive local times, like time.time()'s
            keep = [i for i, v in enumerate(listed) if int(v["version"]) == (protect or {}).get(name)]
            now = time.time()
            cutoff = removable_before(stamps, retention, now=now, readers_active=readers_active, protect=keep)
            if cutoff is None:
                continue
            if cutoff == stamps[-1]:
                # Only the latest stays, which LanceDB never removes: every version older than a
                # millisecond goes (the pause makes sure that is all the others).
                time.sleep(0.005)
                age = timedelta(milliseconds=1)
            else:
                # LanceDB takes an age, measured from its own "now" a moment later (the compaction
                # it runs first has nothing left to do: compact() ran): the margin keeps that moment
                # from moving the cut past the first version to keep. Versions committed within the
                # margin before that one stay too: never one too few.
                age = timedelta(seconds=max(now - cutoff, 0.0) + _CLEANUP_MARGIN_S)
            with warnings.catch_warnings():  # the warning is about concurrent readers: handled above
                warnings.simplefilter("ignore")
                table.optimize(cleanup_older_than=age, delete_unverified=True)
            removed += len(listed) - len(table.list_versions())
        self.refresh()
        return removed

    def _upsert_files(self, rows: list[dict]) -> None:
        table = pa.Table.from_pylist([_normalise_file_row(r) for r in rows], schema=FILES_SCHEMA)
        (
            self.files.merge_insert("path")
            .when_matched_update_all()
            .when_not_matched_insert_all()
            .execute(table)
        )


def _under(prefix: str) -> str:
    """`path` inside the folder `prefix` (which ends without a separator)."""
    return sql_starts_with("path", prefix + "/")


def _repoint_sql(old_prefix: str, new_prefix: str) -> str:
    # substr counts characters, as Python's len does: the part after the old prefix, kept whole.
    return f"concat({sql_str(new_prefix)}, substr(path, {len(old_prefix) + 1}))"


def _deleted_rows(table) -> int:
    meta = table.list_versions()[-1].get("metadata") or {}
    return int(meta.get("total_deletion_file_rows", 0) or 0)


def _normalise_file_row(row: dict) -> dict:
    out = {f.name: row.get(f.name) for f in FILES_SCHEMA}
    out.setdefault("indexed_at", time.time())
    if out["indexed_at"] is None:
        out["indexed_at"] = time.time()
    return out


def _vector_matrix(column: pa.ChunkedArray, dim: int) -> np.ndarray:
    if column.num_chunks == 0 or len(column) == 0:
        return np.zeros((0, dim), dtype=np.float32)
    arr = column.combine_chunks()
    return np.asarray(arr.values.to_numpy(zero_copy_only=False), dtype=np.float32).reshape(-1, dim)
