"""Queries announce themselves, so a writer's version cleanup never pulls files from under one.

A query holds a shared flock on `readers.lock` from before it opens the tables until its last read;
the writer's cleanup takes it exclusively without waiting. Got it: no query is running, and one that
starts now waits (milliseconds) until the cleanup is done, then opens the newest version, which is
always kept. Not got: a query is running, so the cleanup keeps what it may be reading (see
retention.py). The kernel drops a dead process's flock, so a killed query blocks nothing.
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

READERS_NAME = "readers.lock"


def _open(index_dir: Path) -> int | None:
    try:
        return os.open(Path(index_dir) / READERS_NAME, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError:  # a read-only index (a mounted archive): nothing can clean it up under us either
        return None


@contextmanager
def reading(index_dir: Path) -> Iterator[None]:
    """Hold for the whole of a query."""
    fd = _open(index_dir)
    if fd is None:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # releases the lock


@contextmanager
def no_readers(index_dir: Path) -> Iterator[bool]:
    """True, with new queries held off until the block ends, when no query is running."""
    fd = _open(index_dir)
    if fd is None:
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)
