"""Walk the roots a user names and list candidate media files.

Directories are walked without following symlinked directories (no loops); a symlinked file is a
candidate like any other. Anything that cannot be listed or stat-ed becomes a CrawlProblem with a
readable reason instead of stopping the walk.
"""

from __future__ import annotations

import os
import stat as stat_mod
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Optional

from avsearch.errors import AvsearchError


@dataclass(frozen=True)
class Candidate:
    path: str  # absolute, symlinks in the path kept as the user sees them
    size: int
    mtime: float


@dataclass(frozen=True)
class CrawlProblem:
    path: str
    reason: str


@dataclass
class CrawlResult:
    roots: list[str]
    files: list[Candidate]
    problems: list[CrawlProblem]


def absolute(path: str | Path) -> str:
    return os.path.abspath(os.path.expanduser(str(path)))


FoundCallback = Callable[[int, str], None]  # (candidates found so far, the latest one's path)


def crawl(roots: Iterable[str | Path], extensions: frozenset[str],
          on_found: Optional[FoundCallback] = None) -> CrawlResult:
    """Every file under `roots` whose extension is in `extensions`; a root that is itself a
    file is taken whatever its extension (the user named it). `on_found` hears of each candidate
    as the walk finds it (progress on a big archive)."""
    abs_roots = [absolute(r) for r in roots]
    files: dict[str, Candidate] = {}
    problems: list[CrawlProblem] = []
    for root in abs_roots:
        if not os.path.lexists(root):
            raise AvsearchError(f"{root} does not exist; check the path (nothing was changed in the index)")
        if os.path.isdir(root):
            _walk(root, extensions, files, problems, on_found)
        else:
            _add(root, files, problems, on_found)
    return CrawlResult(abs_roots, sorted(files.values(), key=lambda c: c.path), problems)


def _walk(root: str, extensions: frozenset[str], files: dict, problems: list,
          on_found: Optional[FoundCallback] = None) -> None:
    def on_error(err: OSError) -> None:
        problems.append(CrawlProblem(absolute(err.filename or root), f"cannot list directory: {err.strerror}"))

    for dirpath, dirnames, filenames in os.walk(root, onerror=on_error, followlinks=False):
        dirnames.sort()
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            if _extension(name) in extensions:
                _add(os.path.join(dirpath, name), files, problems, on_found)


def _add(path: str, files: dict, problems: list, on_found: Optional[FoundCallback] = None) -> None:
    try:
        st = os.stat(path)
    except OSError as err:
        reason = "symlink loop" if err.errno == 40 else (err.strerror or str(err))
        problems.append(CrawlProblem(path, f"cannot read file: {reason}"))
        return
    if not stat_mod.S_ISREG(st.st_mode):
        problems.append(CrawlProblem(path, "not a regular file"))
        return
    files[path] = Candidate(path, int(st.st_size), float(st.st_mtime))
    if on_found is not None:
        on_found(len(files), path)


def _extension(name: str) -> str:
    return name.rsplit(".", 1)[-1].lower() if "." in name else ""


def under_roots(path: str, roots: list[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


def find_problem(problems: list[CrawlProblem], path: str) -> Optional[CrawlProblem]:
    return next((p for p in problems if p.path == path), None)
