"""Walk the roots a user names and list candidate media files.

Symlinks (followed by default): a symlinked file is a candidate like any other, under the path the
user sees (the planner finds that its content is already indexed and lists it as a duplicate); a
symlinked folder is walked once, after every real folder, and a folder whose real path was walked
already is not walked again (no loops, no second copy of a tree). With follow_symlinks=False
symlinks met while walking are skipped altogether (a root the user names is still taken).
Include/exclude patterns (patterns.py) filter files and prune excluded folders. Anything that
cannot be listed or stat-ed becomes a CrawlProblem with a readable reason instead of stopping
the walk.

confine_to (None: no limit): a symlink is followed only while its real target lies under one of
these folders; the others are skipped, each with its reason, in CrawlResult.skipped. The service
passes its roots, so a link inside a served folder cannot make a job read media elsewhere.
"""

from __future__ import annotations

import os
import stat as stat_mod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

from avsearch.errors import AvsearchError
from avsearch.indexer.patterns import PathPatterns, relative_to_root


@dataclass(frozen=True)
class Candidate:
    path: str  # absolute, symlinks in the path kept as the user sees them
    size: int
    mtime: float
    via_link: bool = False  # reached through a symlink: a real path of the same content is the better canonical


@dataclass(frozen=True)
class CrawlProblem:
    path: str
    reason: str


@dataclass
class CrawlResult:
    roots: list[str]
    files: list[Candidate]
    problems: list[CrawlProblem]
    patterns: PathPatterns = field(default_factory=PathPatterns)
    follow_symlinks: bool = True
    skipped: list[CrawlProblem] = field(default_factory=list)  # symlinks to outside `confine_to`: not followed

    def left_out(self, path: str) -> bool:
        """Whether an existing `path` under the roots is one this crawl leaves out on purpose
        (an exclude pattern, or a symlink with follow_symlinks off): its index row is pruned."""
        root = next((r for r in self.roots if relative_to_root(path, [r]) is not None), None)
        if root is None or path in self.roots:
            return False
        if self.patterns and not self.patterns.takes_path(path, root):
            return True
        return not self.follow_symlinks and _through_link(path, self.roots)


def absolute(path: str | Path) -> str:
    return os.path.abspath(os.path.expanduser(str(path)))


FoundCallback = Callable[[int, str], None]  # (candidates found so far, the latest one's path)


def crawl(roots: Iterable[str | Path], extensions: frozenset[str], *, follow_symlinks: bool = True,
          patterns: PathPatterns = PathPatterns(), on_found: Optional[FoundCallback] = None,
          confine_to: Optional[Sequence[str | Path]] = None) -> CrawlResult:
    """Every file under `roots` whose extension is in `extensions` and that `patterns` take; a
    root that is itself a file is taken whatever its extension and patterns (the user named it).
    `on_found` hears of each candidate as the walk finds it (progress on a big archive).
    `confine_to`: the folders symlinks may lead into (None: anywhere); see the module's note."""
    abs_roots = [absolute(r) for r in roots]
    allowed = None if confine_to is None else [os.path.realpath(absolute(r)) for r in confine_to]
    walk = _Walk(extensions, follow_symlinks, patterns, on_found, allowed)
    for root in abs_roots:
        if not os.path.lexists(root):
            raise AvsearchError(f"{root} does not exist; check the path (nothing was changed in the index)")
        if walk.escapes(root, link=os.path.islink(root)):
            continue
        if os.path.isdir(root):
            walk.tree(root, root, follow=False)
        else:
            walk.add(root, via_link=os.path.islink(root))
    walk.linked_folders()
    files = sorted(walk.files.values(), key=lambda c: c.path)
    return CrawlResult(abs_roots, files, walk.problems, patterns, follow_symlinks, walk.skipped)


class _Walk:
    def __init__(self, extensions: frozenset[str], follow_symlinks: bool, patterns: PathPatterns,
                 on_found: Optional[FoundCallback] = None, allowed: Optional[list[str]] = None):
        self.on_found = on_found
        self.allowed = allowed  # real paths of the folders links may lead into; None: anywhere
        self.skipped: list[CrawlProblem] = []
        self.extensions = extensions
        self.follow_symlinks = follow_symlinks
        self.patterns = patterns
        self.files: dict[str, Candidate] = {}
        self.problems: list[CrawlProblem] = []
        self.walked: set[str] = set()  # real paths of the folders listed so far
        self.links: list[tuple[str, str]] = []  # (symlinked folder, its root), walked after the real ones

    def tree(self, top: str, root: str, *, follow: bool) -> None:
        def on_error(err: OSError) -> None:
            self.problems.append(CrawlProblem(absolute(err.filename or top), f"cannot list directory: {err.strerror}"))

        for dirpath, dirnames, filenames in os.walk(top, onerror=on_error, followlinks=follow):
            real = os.path.realpath(dirpath)
            if real in self.walked:  # a linked folder seen before, or a loop back up the tree
                dirnames[:] = []
                continue
            self.walked.add(real)
            via_link = follow  # everything the second pass lists lies in a symlinked folder
            kept = []
            for name in sorted(dirnames):
                sub = os.path.join(dirpath, name)
                if not self.patterns.takes_folder_path(sub, root):
                    continue
                is_link = os.path.islink(sub)
                if is_link and self.follow_symlinks and self.escapes(sub):
                    continue
                if not follow and is_link:
                    if self.follow_symlinks:
                        self.links.append((sub, root))
                    continue
                kept.append(name)
            dirnames[:] = kept
            for name in sorted(filenames):
                if name.startswith(".") or _extension(name) not in self.extensions:
                    continue
                path = os.path.join(dirpath, name)
                if not self.patterns.takes_path(path, root):
                    continue
                is_link = os.path.islink(path)
                if is_link and (not self.follow_symlinks or self.escapes(path)):
                    continue
                self.add(path, via_link=via_link or is_link)

    def escapes(self, path: str, *, link: bool = True) -> bool:
        """Whether `path` (a symlink, or a root) leads outside the allowed folders; if so it is
        listed in `skipped`. A walk with no `allowed` list never escapes."""
        if self.allowed is None or under_roots(os.path.realpath(path), self.allowed):
            return False
        # The target is not named: a client of the service learns nothing about the rest of the disk.
        what = "symlink not followed: its target is" if link else "not read: it is"
        self.skipped.append(CrawlProblem(path, f"{what} outside the folders this run may read"))
        return True

    def linked_folders(self) -> None:
        while self.links:
            link, root = self.links.pop(0)
            self.tree(link, root, follow=True)

    def add(self, path: str, *, via_link: bool = False) -> None:
        try:
            st = os.stat(path)
        except OSError as err:
            reason = "symlink loop" if err.errno == 40 else (err.strerror or str(err))
            self.problems.append(CrawlProblem(path, f"cannot read file: {reason}"))
            return
        if not stat_mod.S_ISREG(st.st_mode):
            self.problems.append(CrawlProblem(path, "not a regular file"))
            return
        self.files[path] = Candidate(path, int(st.st_size), float(st.st_mtime), via_link)
        if self.on_found is not None:
            self.on_found(len(self.files), path)


def _through_link(path: str, roots: list[str]) -> bool:
    """Whether `path` is a symlink or lies in a symlinked folder below its root."""
    for root in roots:
        prefix = root.rstrip(os.sep) + os.sep
        if path.startswith(prefix):
            return os.path.realpath(path) != os.path.join(os.path.realpath(root), path[len(prefix):])
    return False


def _extension(name: str) -> str:
    return name.rsplit(".", 1)[-1].lower() if "." in name else ""


def under_roots(path: str, roots: list[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


def find_problem(problems: list[CrawlProblem], path: str) -> Optional[CrawlProblem]:
    return next((p for p in problems if p.path == path), None)
