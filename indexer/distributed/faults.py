"""Test hook for the Ray engine's fault cases: real process deaths at chosen moments.

Outside the normal path, like the sandbox's AVSEARCH_TEST_MEDIA_FAULT. When AVSEARCH_TEST_RAY_FAULTS
names a directory, a Ray worker (or the driver) looks there for a file named after its stage:

  decode-once   a decode worker about to read a path containing the file's text kills itself
                (SIGKILL) — the first one only: it deletes the file first, so Ray's retry succeeds
  decode-always every decode worker reading such a path dies of SIGSEGV (a hostile file)
  embed-once    the embed actor about to embed a clip of such a path kills itself, once
  embed-written-once  the same, after it wrote the chunk's fragments (before returning them)
  driver-after  the driver kills itself (SIGKILL) after as many commits as the file's text says
  driver-before-final  the driver kills itself just before the commit that would complete a path
                containing the file's text: that file's last fragments are written, not committed

The directory must be in the environment before Ray starts, so that its workers inherit it.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Optional

FAULT_DIR_ENV = "AVSEARCH_TEST_RAY_FAULTS"


def _read(stage: str) -> Optional[tuple[Path, str]]:
    directory = os.environ.get(FAULT_DIR_ENV)
    if not directory:
        return None
    f = Path(directory) / stage
    try:
        return f, f.read_text().strip()
    except OSError:
        return None


def maybe_die(stage: str, path: str) -> None:
    """Called by a worker before it reads `path` in `stage` ("decode" or "embed")."""
    once = _read(f"{stage}-once")
    if once is not None and once[1] and once[1] in path:
        try:
            once[0].unlink()  # only the worker that removes it dies: one death, then retries succeed
        except OSError:
            pass
        else:
            os.kill(os.getpid(), signal.SIGKILL)
    always = _read(f"{stage}-always")
    if always is not None and always[1] and always[1] in path:
        os.kill(os.getpid(), signal.SIGSEGV)


def driver_commits_left() -> Optional[int]:
    """Commits the driver makes before it kills itself; None: no such fault."""
    found = _read("driver-after")
    return int(found[1]) if found is not None and found[1] else None


def kill_self() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def driver_dies_before_final() -> Optional[str]:
    """The text of a path whose final commit the driver must not live to make; None: no such fault."""
    found = _read("driver-before-final")
    return found[1] if found is not None and found[1] else None
