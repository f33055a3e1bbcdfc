"""Errors a person can act on.

Every error the library raises on purpose derives from AvsearchError; its message says what went
wrong and what to do. The CLI prints the message without a traceback (unless --verbose).
Each class also subclasses the closest built-in, so callers can catch either.
"""

from __future__ import annotations


class AvsearchError(Exception):
    """Base class of every expected avsearch error."""

    exit_code = 1


class UsageError(AvsearchError, ValueError):
    """A value or combination of arguments that can never work (a bad view, k < 1, a missing path)."""

    exit_code = 2


class PathNotFoundError(AvsearchError, FileNotFoundError):
    """A file or folder named to index does not exist."""


class IndexNotFoundError(AvsearchError, FileNotFoundError):
    exit_code = 2


class IndexLockedError(AvsearchError, RuntimeError):
    exit_code = 3


class ModelMismatchError(AvsearchError, ValueError):
    exit_code = 4


class ModelNotFoundError(AvsearchError, FileNotFoundError):
    exit_code = 5


class CheckpointError(AvsearchError, ValueError):
    """A checkpoint exists but its layout or weights are wrong."""

    exit_code = 5


class MediaError(AvsearchError, ValueError):
    """A media file cannot be read: corrupt, truncated, empty, unsupported or unreadable."""

    exit_code = 6


class DeviceError(AvsearchError, RuntimeError):
    """The requested compute device is not available."""

    exit_code = 7


class QueryError(AvsearchError, ValueError):
    exit_code = 8


class IndexDamagedError(AvsearchError, RuntimeError):
    """A table of the index cannot be read (a data file or version missing or corrupt)."""

    exit_code = 9


class IndexReadOnlyError(AvsearchError, PermissionError):
    """The index directory cannot be written: queries work, indexing does not."""

    exit_code = 10


class DiskFullError(AvsearchError, OSError):
    """A write ran out of space; what was committed before it stays intact."""

    exit_code = 11


class RelocateError(AvsearchError, ValueError):
    """`relocate` refused: the files at the new place are not the indexed ones, or the prefixes clash."""

    exit_code = 12
