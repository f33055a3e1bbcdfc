"""Store faults in words a person can act on.

LanceDB, FAISS and the OS report a full disk, a read-only directory or a damaged table as bare
RuntimeError / OSError / ValueError, often with the Rust source paths of the lance crate in the
text. `store_faults` turns them into AvsearchError subclasses at the store boundary, with a message
that names the fix; anything it does not recognise passes through unchanged.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

from avsearch.errors import AvsearchError, DiskFullError, IndexDamagedError, IndexReadOnlyError
from avsearch.locations import IndexLocation, IndexURI, local_dir

REPAIR_HINT = "run `avsearch doctor` to see what is wrong and `avsearch doctor --repair` to fix it"

_RUST_LOCATION = re.compile(r",?\s*/\S+?\.rs:\d+:\d+")  # ", /root/.cargo/registry/.../commit.rs:12:5"
_LANCE_PREFIX = re.compile(r"^(lance error:\s*)?(LanceError\(\w+\):\s*)?")
_WRAPPED = re.compile(r"(Generic \S+ error:\s*|Wrapped error:\s*|Generic LocalFileSystem error:\s*)")
_REPEATED = re.compile(r"\b([A-Z][\w ]*: )\1+")  # "Not found: Not found: x" -> "Not found: x"

_DISK_FULL_TEXT = ("no space left on device", "os error 28", "disk quota exceeded", "os error 122")
_READ_ONLY_TEXT = ("read-only file system", "os error 30", "permission denied", "os error 13")
# How lance and lancedb say that a file, manifest or table they expect is not there or unreadable.
_DAMAGED_TEXT = ("not found", "was not found", "corrupt", "invalid manifest", "unexpected eof",
                 "failed to read", "no such file", "os error 2", "did not find")


def clean_message(err: BaseException) -> str:
    """The error's own words without Rust source locations and lance's wrapper prefixes."""
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    text = _RUST_LOCATION.sub("", text)
    text = _REPEATED.sub(r"\1", _WRAPPED.sub("", _LANCE_PREFIX.sub("", text.strip())))
    return text.strip().rstrip(",") or type(err).__name__


def kind_of(err: BaseException) -> Optional[str]:
    """"disk_full", "read_only", "damaged" or None (not a store fault we know)."""
    code = getattr(err, "errno", None)
    if code in (errno.ENOSPC, errno.EDQUOT):
        return "disk_full"
    if code in (errno.EROFS, errno.EACCES, errno.EPERM):
        return "read_only"
    text = str(err).lower()
    if any(t in text for t in _DISK_FULL_TEXT):
        return "disk_full"
    if any(t in text for t in _READ_ONLY_TEXT):
        return "read_only"
    if isinstance(err, (RuntimeError, ValueError, OSError)) and any(t in text for t in _DAMAGED_TEXT):
        return "damaged"
    return None


def device_of(path: Path) -> str:
    """The mount point (and device, where /proc/mounts names it) that holds `path`."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    mount = path
    try:
        dev = os.stat(path).st_dev
        while mount != mount.parent and os.stat(mount.parent).st_dev == dev:
            mount = mount.parent
        with open("/proc/self/mounts") as f:
            names = [line.split()[0] for line in f if len(line.split()) > 1 and line.split()[1] == str(mount)]
    except OSError:
        names = []
    return f"{mount} ({names[-1]})" if names else str(mount)


def _free_text(path: Path) -> str:
    try:
        free = shutil.disk_usage(Path(path) if Path(path).exists() else Path(path).parent).free
    except OSError:
        return ""
    return f", {free / 1e6:.1f} MB free now"


def translate(err: BaseException, directory: IndexLocation, *, last_committed: Optional[str] = None,
              action: str = "write to") -> Optional[AvsearchError]:
    """The AvsearchError for a store fault, or None when `err` is not one."""
    if isinstance(err, AvsearchError):
        return None
    if isinstance(directory, IndexURI):
        from avsearch import objstore

        # Before the local kinds: an object store's "access denied" or "not found" bucket is neither
        # a read-only nor a damaged index.
        if objstore.cause(err):
            return objstore.ObjectStoreError(objstore.explain(directory.uri, err))
    kind = kind_of(err)
    if kind == "disk_full":  # only local files fill a disk: an object-store index's cache folder
        directory = local_dir(directory)
        since = (f"nothing committed since {last_committed}" if last_committed
                 else "nothing was committed by this run")
        return DiskFullError(
            f"no space left on {device_of(directory)}{_free_text(directory)}; {since}. What was committed "
            f"before stays intact: free some space and re-run `avsearch index`, which resumes there")
    remote = isinstance(directory, IndexURI)
    if kind == "read_only":
        where = f"its local cache folder {local_dir(directory)}" if remote else f"the index at {directory}"
        return IndexReadOnlyError(
            f"{where} is read-only ({clean_message(err)}): queries work, but avsearch "
            f"cannot {action} it; make it writable, or copy it somewhere writable and use --index")
    if kind == "damaged":
        # `avsearch doctor` reads local folders only
        hint = (f"copy it to a folder (`aws s3 sync {directory} ./copy`) and run `avsearch doctor --index ./copy`"
                if remote else REPAIR_HINT)
        return IndexDamagedError(f"the index at {directory} is damaged: {clean_message(err)}; {hint}")
    return None


@contextmanager
def store_faults(directory: IndexLocation, *, last_committed: Optional[str] = None, action: str = "write to") -> Iterator[None]:
    """Re-raise recognised store faults as AvsearchErrors (the original stays as __cause__)."""
    try:
        yield
    except (OSError, RuntimeError, ValueError) as err:
        mapped = translate(err, directory, last_committed=last_committed, action=action)
        if mapped is None:
            raise
        raise mapped from err
