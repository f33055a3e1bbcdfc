"""`Store`: one index directory — metadata, LanceDB tables, the derived ANN index and the
re-rank cache. The only module family that knows LanceDB and FAISS.

Layout of an index directory:
    avsearch.json   model id, model source, dimension, clip settings
    lance/          LanceDB tables `files`, `clips`, `rerank_cache`
    ann/            FAISS index derived from `clips`, tagged with the clips table version it covers
    write.lock      held by the one process allowed to write
"""

from __future__ import annotations

import hashlib
import shutil
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pyarrow as pa

from avsearch.errors import IndexNotFoundError, ModelMismatchError
from avsearch.store.ann import AnnConfig, AnnIndex
from avsearch.store.lock import WriteLock
from avsearch.store.meta import META_NAME, IndexMeta
from avsearch.store.schema import rerank_cache_schema, sql_in, sql_str
from avsearch.store.tables import FileCommit, Tables

ANN_DIR = "ann"
RERANK = "rerank_cache"


class Store:
    def __init__(self, directory: Path, meta: IndexMeta, ann_config: Optional[AnnConfig] = None):
        self.directory = Path(directory)
        self.meta = meta
        self.tables = Tables(self.directory, meta.dim)
        self.ann_config = ann_config or AnnConfig()
        self._ann: Optional[AnnIndex] = None
        self._ann_version: Optional[int] = None

    # -- opening ---------------------------------------------------------------------------

    @staticmethod
    def exists(directory: Path) -> bool:
        return (Path(directory) / META_NAME).is_file()

    @classmethod
    def open(cls, directory: Path, *, ann_config: Optional[AnnConfig] = None) -> "Store":
        directory = Path(directory)
        if directory.exists() and not directory.is_dir():
            raise IndexNotFoundError(f"{directory} is a file, not an avsearch index directory")
        return cls(directory, IndexMeta.load(directory), ann_config)

    @classmethod
    def create(cls, directory: Path, meta: IndexMeta, *, ann_config: Optional[AnnConfig] = None) -> "Store":
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        if cls.exists(directory):
            raise FileExistsError(f"an index already exists at {directory}")
        meta.save(directory)
        return cls(directory, meta, ann_config)

    def check_model(self, model_id: str) -> None:
        if model_id != self.meta.model_id:
            raise ModelMismatchError(
                f"the index at {self.directory} was built with model {self.meta.model_id} "
                f"(from {self.meta.model_source}); the requested model is {model_id}. Vectors of two "
                "models do not share a space: drop --model to use the index's own model, or index "
                "into another directory with --index"
            )

    def write_lock(self) -> WriteLock:
        return WriteLock(self.directory)

    # -- writing ---------------------------------------------------------------------------

    def commit(self, commits: Sequence[FileCommit]) -> None:
        self.tables.commit(commits)

    def repoint(self, old_path: str, new_row: dict) -> None:
        self.tables.repoint(old_path, new_row)

    def remove_paths(self, paths: Sequence[str]) -> int:
        return self.tables.remove_paths(list(paths))

    def recover(self) -> int:
        return self.tables.recover()

    def finish_writes(self) -> None:
        """End of an indexing run: compact the tables and bring the ANN index up to date."""
        self.tables.compact()
        self.tables.refresh()
        self.ensure_ann(save=True)

    # -- reading ---------------------------------------------------------------------------

    def file_rows(self, where: Optional[str] = None) -> list[dict]:
        return self.tables.file_rows(where)

    def committed_clips(self, path: str, fingerprint: str) -> tuple[list[float], int]:
        """A partly committed file's clip starts (sorted, distinct) and its clip row count."""
        t = self.tables.clip_meta(f"path = {sql_str(path)} AND fingerprint = {sql_str(fingerprint)}", ["start_s"])
        starts = t.column("start_s").to_pylist()
        return sorted(set(starts)), len(starts)

    def clip_meta_by_row_ids(self, row_ids) -> dict[int, dict]:
        return self.tables.clip_meta_by_row_ids(row_ids)

    def clip_by_id(self, clip_id: str) -> Optional[dict]:
        rows = self.tables.clip_meta(f"clip_id = {sql_str(clip_id)}").to_pylist()
        return rows[0] if rows else None

    def vectors(self, row_ids) -> np.ndarray:
        return self.tables.vectors_by_row_ids(np.asarray(row_ids, dtype=np.int64))

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

    def search(self, queries: np.ndarray, k: int, *, allowed_ids: Optional[np.ndarray] = None):
        """(scores, row_ids) of the k best clips per query, exact-rescored (with the ANN index's
        own memory-mapped vectors: the table is not read on this path)."""
        ann = self.ensure_ann(save=False)
        if ann is None or k <= 0:
            q = len(queries)
            return np.zeros((q, 0), np.float32), np.zeros((q, 0), np.int64)
        if allowed_ids is not None and len(allowed_ids) == 0:
            q = len(queries)
            return np.zeros((q, 0), np.float32), np.zeros((q, 0), np.int64)
        return ann.search(np.asarray(queries, dtype=np.float32), k, allowed_ids=allowed_ids)

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
            "index": str(self.directory),
            "model_id": self.meta.model_id,
            "model_source": self.meta.model_source,
            "dim": self.meta.dim,
            "files_ok": len(ok),
            "files_partial": sum(f["status"] == "partial" for f in files),  # long files a run left half done
            "files_failed": sum(f["status"] == "failed" for f in files),
            "clips": int(clips.num_rows),
            "clips_by_view": clips_by_view,
            "hours_by_view": {v: s / 3600 for v, s in seconds_by_view.items()},
            "ann": self.ann_state(),
            "disk_bytes": _dir_size(self.directory),
            "settings": self.meta.settings.__dict__ | {"views": list(self.meta.settings.views)},
        }

    # -- ANN index -------------------------------------------------------------------------

    def ann_state(self) -> dict:
        version = self.tables.clips_version()
        try:
            ann, covers = AnnIndex.load(self.directory / ANN_DIR)
        except (FileNotFoundError, ValueError):
            return {"kind": None, "fresh": False, "vectors": 0, "covers_version": None, "table_version": version}
        return {
            "kind": ann.kind,
            "fresh": covers == version,
            "vectors": int(ann.ntotal),
            "covers_version": covers,
            "table_version": version,
            "memory_bytes": int(ann.memory_bytes()),
            "rescore_file_bytes": int(ann.rescore_bytes()),  # memory-mapped: page cache, not process memory
        }

    def ensure_ann(self, *, save: bool) -> Optional[AnnIndex]:
        """An ANN index covering the current clips table. A saved index that covers another table
        version is never served as is: it is updated (adds/removes) or rebuilt first."""
        self.tables.refresh()
        version = self.tables.clips_version()
        if self._ann is not None and self._ann_version == version:
            return self._ann
        ann, covers = self._load_ann()
        if ann is None or covers != version:
            ann, ids = self._update_or_rebuild(ann)
            if save:
                self._save_ann(ann, ids, version)
        self._ann, self._ann_version = ann, version
        return ann

    def reindex(self) -> Optional[AnnIndex]:
        """Rebuild the ANN index from the clips table from scratch."""
        shutil.rmtree(self.directory / ANN_DIR, ignore_errors=True)
        self._ann = self._ann_version = None
        return self.ensure_ann(save=True)

    def _load_ann(self) -> tuple[Optional[AnnIndex], Optional[int]]:
        try:
            return AnnIndex.load(self.directory / ANN_DIR)
        except (FileNotFoundError, ValueError):
            return None, None

    def _update_or_rebuild(self, ann: Optional[AnnIndex]) -> tuple[Optional[AnnIndex], np.ndarray]:
        ids = self.tables.all_row_ids()
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
        ids, vectors = self.tables.all_vectors()
        return AnnIndex.build(vectors, ids, self.ann_config), ids

    def _save_ann(self, ann: Optional[AnnIndex], ids: np.ndarray, version: int) -> None:
        directory = self.directory / ANN_DIR
        if ann is None:  # nothing to index: drop any saved index so it is never served stale
            shutil.rmtree(directory, ignore_errors=True)
            return
        ann.save(directory, covers_version=version)

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

    def rerank_cache_get(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        table = self._rerank_table(create=False)
        if table is None or not keys:
            return {}
        t = table.search().where(sql_in("key", list(keys))).select(["key", "vector"]).limit(None).to_arrow()
        vecs = np.asarray(t.column("vector").combine_chunks().values.to_numpy(), np.float32).reshape(-1, self.meta.dim) if t.num_rows else []
        return dict(zip(t.column("key").to_pylist(), vecs))

    def rerank_cache_put(self, entries: dict[str, tuple[str, np.ndarray]]) -> None:
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


def _dir_size(directory: Path) -> int:
    return sum(p.stat().st_size for p in Path(directory).rglob("*") if p.is_file())
