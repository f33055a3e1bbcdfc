"""Float16 rows appended in order, held in RAM up to a bound and spilled beyond it to a file
memory-mapped back for reading: the re-scoring vectors an ANN build adds before its first save.

Why: a build adds every vector of the collection (1M x 3584 float16 is 7.2 GB, 36M is 258 GB)
before the save writes them out. Held in RAM, the streamed build's bounded memory was a fiction:
its 1M x 3584 run reached 13.4 GB of anonymous memory and was killed by the kernel on this 23 GB
machine. Spilled, the rows live in the page cache (which the kernel can drop) and the process
holds at most `spill_bytes` of them.
"""

from __future__ import annotations

import os
import tempfile
import weakref
from typing import Iterator, Optional

import numpy as np

SPILL_BYTES = 256 << 20  # rows held in RAM before they go to the spill file
_BLOCK_ROWS = 65_536


class SpillRows:
    def __init__(self, dim: int, spill_dir=None, spill_bytes: Optional[int] = None):
        self.dim = dim
        self.spill_dir = spill_dir  # None: never spill (everything stays in RAM)
        self.spill_bytes = SPILL_BYTES if spill_bytes is None else spill_bytes
        self._ram: list[np.ndarray] = []
        self._ram_rows = 0
        self._file: Optional[str] = None
        self._file_rows = 0
        self._map: Optional[np.ndarray] = None

    def __len__(self) -> int:
        return self._file_rows + self._ram_rows

    def append(self, rows: np.ndarray) -> None:
        self._ram.append(np.ascontiguousarray(rows, dtype=np.float16).reshape(-1, self.dim))
        self._ram_rows += len(self._ram[-1])
        if self.spill_dir is not None and self._ram_rows * self.dim * 2 >= self.spill_bytes:
            self._spill()

    def take(self, offsets: np.ndarray) -> np.ndarray:
        """The rows at `offsets` (0 = the first appended), in that order."""
        offsets = np.asarray(offsets, dtype=np.int64)
        out = np.empty((len(offsets), self.dim), np.float16)
        in_file = offsets < self._file_rows
        if in_file.any():
            out[in_file] = self._mapped()[offsets[in_file]]
        if (~in_file).any():
            out[~in_file] = self._ram_matrix()[offsets[~in_file] - self._file_rows]
        return out

    def blocks(self) -> Iterator[np.ndarray]:
        """Every row in order, a bounded block at a time (for writing them out)."""
        if self._file_rows:
            mapped = self._mapped()
            for start in range(0, self._file_rows, _BLOCK_ROWS):
                yield np.asarray(mapped[start : start + _BLOCK_ROWS])
        if self._ram_rows:
            yield self._ram_matrix()

    def ram_bytes(self) -> int:
        return self._ram_rows * self.dim * 2

    def _ram_matrix(self) -> np.ndarray:
        if len(self._ram) > 1:  # at most spill_bytes when spilling is on
            self._ram = [np.concatenate(self._ram)]
        return self._ram[0] if self._ram else np.zeros((0, self.dim), np.float16)

    def _spill(self) -> None:
        try:
            if self._file is None:
                fd, self._file = tempfile.mkstemp(prefix=".rescore-spill-", suffix=".f16", dir=self.spill_dir)
                os.close(fd)
                # Gone with this object (after its rows were saved, or with a build that failed).
                weakref.finalize(self, _remove, self._file)
            with open(self._file, "ab") as f:
                for block in self._ram:
                    f.write(block.tobytes())
        except OSError:  # a folder this process cannot write (a reader of a read-only index): keep them in RAM
            if self._file is not None:  # a half-written spill: cut back to the rows it held
                try:
                    os.truncate(self._file, self._file_rows * self.dim * 2)
                except OSError:
                    pass
            self.spill_dir = None
            return
        self._file_rows += self._ram_rows
        self._ram, self._ram_rows, self._map = [], 0, None

    def _mapped(self) -> np.ndarray:
        if self._map is None:
            self._map = np.memmap(self._file, dtype=np.float16, mode="r", shape=(self._file_rows, self.dim))
        return self._map


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
