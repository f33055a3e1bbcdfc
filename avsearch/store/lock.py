"""A single-writer lock per index directory.

fcntl.flock is released by the kernel when its process dies, even on SIGKILL, so a lock left by a
killed indexer is recovered automatically: no stale-PID guessing. The file keeps the holder's PID
only to name it in the error.
"""

from __future__ import annotations

import fcntl
import os
import socket
import time
from pathlib import Path

from avsearch.errors import IndexLockedError
from avsearch.store.faults import store_faults

LOCK_NAME = "write.lock"


class WriteLock:
    def __init__(self, index_dir: Path):
        self.path = Path(index_dir) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> "WriteLock":
        with store_faults(self.path.parent):  # a read-only index: "read-only", not EROFS on write.lock
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise IndexLockedError(
                f"the index at {self.path.parent} is being written by {holder}; "
                "wait for that run to finish (queries work meanwhile), or stop it first"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} since {time.ctime()}".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "WriteLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
