"""The IVF index's re-scoring vectors: a derived float16 copy of every indexed clip's vector,
memory-mapped from a file beside the index and read by position.

Why a file of its own and not the LanceDB table: re-scoring reads a few hundred scattered vectors
per query. A `row_id IN (...)` filter scans the row-id column (25-50 ms per query at 100k-200k
rows, growing with the table), and even Lance's random access by row address (`take_row_ids`)
took 9 ms for 400 rows of 100k x 1024 where this file's fancy indexing took ~1-3 ms
(benchmarks/results/search-e2e.json, "rescore_fetch"). Float16 halves the bytes read and the page
cache held; on unit vectors its rounding moves an inner product by ~1e-5, far below the gaps the
re-score decides between.

Layout: `rescore.f16` holds rows of `dim` float16 values, append-only; `rescore_ids.npy` holds the
clip row id of each row (-1 for a row whose clip was removed). Rows are keyed by the tables'
`row_id`, which neither compaction nor appends change, so the file stays exact across
`Tables.compact()`; removals only blank ids and appends add rows. Both files are written into the
ANN index's fresh folder on save: the data file is hard-linked from the last save and extended
(a reader of the old folder reads only the rows its own id file names), or rewritten without its
removed rows once they are a third of it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Optional

import faiss
import numpy as np

from avsearch.store.lookup import find_sorted
from avsearch.store.spill_rows import SpillRows

DATA_FILE = "rescore.f16"
IDS_FILE = "rescore_ids.npy"
_REWRITE_DEAD_SHARE = 1 / 3  # removed rows above this share of the file: rewrite it without them


class RescoreVectors:
    def __init__(self, dim: int, spill_dir: Optional[Path] = None):
        self.dim = dim
        self._path: Optional[Path] = None  # the saved data file the first `_saved_rows` rows live in
        self._saved: Optional[np.ndarray] = None  # memory map of those rows
        self._saved_rows = 0
        # float16 rows added since the last save/load; beyond a bound, in a file in `spill_dir`
        self._tail = SpillRows(dim, spill_dir)
        self._ids = np.zeros(0, np.int64)  # row id per row, -1 where removed
        self._lookup: Optional[tuple[np.ndarray, np.ndarray]] = None  # (sorted live ids, their rows)

    # -- changes ---------------------------------------------------------------------------

    def add(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        ids = np.asarray(ids, dtype=np.int64)
        if not len(ids):
            return
        self.remove(ids)  # a re-added id replaces its old row
        self._tail.append(np.asarray(vectors, dtype=np.float16).reshape(len(ids), self.dim))
        self._ids = np.concatenate([self._ids, ids])
        self._lookup = None

    def remove(self, ids: np.ndarray) -> None:
        gone = np.isin(self._ids, np.asarray(ids, dtype=np.int64))
        if gone.any():
            self._ids = self._ids.copy()  # the loaded id array may be a read-only map
            self._ids[gone] = -1
            self._lookup = None

    # -- reading ---------------------------------------------------------------------------

    def __len__(self) -> int:
        return int((self._ids >= 0).sum())

    def rows_of(self, ids: np.ndarray) -> np.ndarray:
        """The row of each id, -1 for ids not held."""
        sorted_ids, rows = self._index()
        ids = np.asarray(ids, dtype=np.int64)
        if not len(sorted_ids):
            return np.full(len(ids), -1, np.int64)
        at, found = find_sorted(sorted_ids, ids)
        return np.where(found, rows[at], -1)

    def get(self, ids: np.ndarray) -> np.ndarray:
        """float32 vectors of `ids` in their order; zeros for ids not held."""
        return self._gather(ids).astype(np.float32)

    def inner_products(self, ids: np.ndarray, query: np.ndarray) -> np.ndarray:
        """float32 inner product of `query` with each of `ids`' vectors (0 for ids not held): the
        re-score of one query's candidates. faiss's float16 scalar quantizer scores the float16
        rows as they are (F16C/AVX conversion inside the dot product): numpy's float16 -> float32
        cast costs ~2.7 ns a value, 15 ms of a 1,541-candidate re-score at 3584-d; gathering and
        scoring together took about half the time (benchmarks/results/rescore-scoring.md)."""
        if not len(ids):
            return np.zeros(0, np.float32)
        query = np.ascontiguousarray(np.asarray(query, np.float32).reshape(1, self.dim))
        scores, order = self._scorer(ids).search(query, len(ids))
        # faiss leaves a row whose score is not a number (a NaN or infinite vector) out of its
        # results: it scores NaN here, which the re-score ranks last.
        out = np.full(len(ids), np.nan, np.float32)
        found = order[0] >= 0
        out[order[0][found]] = scores[0][found]
        return out

    def top_k(self, ids: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids), each (q, k), of the k best of `ids` per query, best first (-inf / -1
        where `ids` has fewer): a selective filter's exact search, every query against rows
        gathered once."""
        ids = np.asarray(ids, dtype=np.int64)
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if not len(ids):
            return np.full((len(queries), k), -np.inf, np.float32), np.full((len(queries), k), -1, np.int64)
        scores, at = self._scorer(ids).search(queries, k)
        found = at >= 0
        return np.where(found, scores, -np.inf).astype(np.float32), np.where(found, ids[np.maximum(at, 0)], -1)

    def _scorer(self, ids: np.ndarray) -> faiss.Index:
        """A flat faiss index over the float16 rows of `ids` (positions in `ids` are its labels)."""
        flat = faiss.IndexScalarQuantizer(self.dim, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT)
        flat.add_sa_codes(self._gather(ids).view(np.uint8))
        return flat

    def _gather(self, ids: np.ndarray) -> np.ndarray:
        """float16 rows of `ids` in their order, zeros for ids not held."""
        rows = self.rows_of(ids)
        out = np.zeros((len(rows), self.dim), dtype=np.float16)
        held = rows >= 0
        saved = held & (rows < self._saved_rows)
        if saved.any():
            # Sorted positions read the map front to back (fewer page faults than random order).
            pos = rows[saved]
            order = np.argsort(pos, kind="stable")
            block = np.empty((len(pos), self.dim), np.float16)
            block[order] = self._saved[pos[order]]
            out[saved] = block
        tail = held & ~saved
        if tail.any():
            out[tail] = self._tail.take(rows[tail] - self._saved_rows)
        return out

    def _index(self) -> tuple[np.ndarray, np.ndarray]:
        if self._lookup is None:
            rows = np.flatnonzero(self._ids >= 0)
            order = np.argsort(self._ids[rows], kind="stable")
            self._lookup = (np.ascontiguousarray(self._ids[rows][order]), rows[order])
        return self._lookup

    def ram_bytes(self) -> int:
        """Process memory: the id of each row plus the sorted lookup, and rows added since the
        last save that are not spilled (saved and spilled rows are memory maps: page cache, not
        process memory)."""
        return len(self._ids) * 8 + len(self) * 16 + self._tail.ram_bytes()

    def disk_bytes(self) -> int:
        return len(self._ids) * self.dim * 2

    # -- persistence -----------------------------------------------------------------------

    def save(self, directory: Path) -> None:
        """Write both files into `directory` (a fresh folder the caller swaps in afterwards)."""
        directory = Path(directory)
        data = directory / DATA_FILE
        rewrite = self._path is None or (self._ids < 0).sum() > _REWRITE_DEAD_SHARE * len(self._ids)
        if rewrite:
            live = np.flatnonzero(self._ids >= 0)
            with open(data, "wb") as f:
                for start in range(0, len(live), 65_536):
                    f.write(np.ascontiguousarray(self._rows(live[start : start + 65_536])).tobytes())
            ids = self._ids[live]
        else:
            try:
                os.link(self._path, data)
            except OSError:  # a file system without hard links: copy (readers of the old folder keep theirs)
                shutil.copyfile(self._path, data)
            with open(data, "r+b") as f:
                # Bytes past our rows can only be a crashed save's: no saved id file names them.
                f.truncate(self._saved_rows * self.dim * 2)
                f.seek(0, os.SEEK_END)
                for block in self._tail.blocks():
                    f.write(np.ascontiguousarray(block).tobytes())
            ids = self._ids
        np.save(directory / IDS_FILE, ids)

    def _rows(self, rows: np.ndarray) -> np.ndarray:
        out = np.empty((len(rows), self.dim), np.float16)
        saved = rows < self._saved_rows
        if saved.any():
            out[saved] = self._saved[rows[saved]]
        if (~saved).any():
            out[~saved] = self._tail.take(rows[~saved] - self._saved_rows)
        return out

    @classmethod
    def load(cls, directory: Path, dim: int, spill_dir: Optional[Path] = None) -> "RescoreVectors":
        directory = Path(directory)
        ids = np.load(directory / IDS_FILE)
        out = cls(dim, spill_dir)
        out._path = directory / DATA_FILE
        out._ids = np.asarray(ids, dtype=np.int64)
        out._saved_rows = len(ids)
        if len(ids):
            if out._path.stat().st_size < len(ids) * dim * 2:
                raise ValueError(f"{out._path} holds fewer rows than {IDS_FILE} names")
            out._saved = np.memmap(out._path, dtype=np.float16, mode="r", shape=(len(ids), dim))
        return out

    @staticmethod
    def exists(directory: Path) -> bool:
        return (Path(directory) / IDS_FILE).is_file()
