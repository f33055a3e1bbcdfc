"""Include/exclude glob patterns: which files under an indexed folder an index takes.

A pattern is a shell glob (fnmatch: `*` also crosses `/`). It matches a file when it matches the
file's path relative to the folder being indexed (`drafts/*`, `*/tmp/*.mp4`) or the file's name
(`*.part`); an exclude pattern also matches a folder by its relative path or name (`.git`,
`Trash`), and then nothing under it is read. With include patterns, only files matching one are
taken; exclude wins over include.

Patterns belong to the folders they were given for (stored with them as `include_roots` /
`exclude_roots`): relative paths start there, not at whatever a later run names, and files under
none of those folders are not filtered by them. After `index ~/Videos --include 'interviews/*'`, a
run on `~/Videos/interviews` still reads `interviews/a.mp4` (relative to ~/Videos), so it neither
skips new files nor prunes the indexed ones, and a run on `~/Music` takes every file there.
(Patterns stored without their folders are read from each run's folder.)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Iterable, Optional


@dataclass(frozen=True)
class PathPatterns:
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    include_roots: tuple[str, ...] = ()  # absolute folders the include patterns were given for
    exclude_roots: tuple[str, ...] = ()

    @classmethod
    def of(cls, include: Iterable[str] = (), exclude: Iterable[str] = (), include_roots: Iterable[str] = (),
           exclude_roots: Iterable[str] = ()) -> "PathPatterns":
        # Empty strings are dropped: `--exclude ''` is how a user clears the stored patterns.
        include, exclude = tuple(p for p in include if p), tuple(p for p in exclude if p)
        return cls(include, exclude, tuple(include_roots) if include else (), tuple(exclude_roots) if exclude else ())

    def __bool__(self) -> bool:
        return bool(self.include or self.exclude)

    def takes_file(self, rel_path: str) -> bool:
        """Whether the file at `rel_path` (relative to the indexed folder, `/`-separated) is indexed."""
        if self._excluded(rel_path):
            return False
        parts = rel_path.split("/")
        if any(self._excluded("/".join(parts[: i + 1])) for i in range(len(parts) - 1)):
            return False
        return not self.include or any(_matches(p, rel_path) for p in self.include)

    def takes_folder(self, rel_path: str) -> bool:
        """Whether the walk descends into the folder at `rel_path` (only excludes prune folders:
        an include such as `*.mp4` must still reach files deep down)."""
        return not self._excluded(rel_path)

    def takes_path(self, path: str, root: str) -> bool:
        """`takes_file` for the absolute `path` found under the run's folder `root`, each kind of
        pattern read from the folders it was given for (and not applied outside them)."""
        excluded_rel = _relative(path, self.exclude_roots, root)
        included_rel = _relative(path, self.include_roots, root)
        return ((excluded_rel is None or PathPatterns(exclude=self.exclude).takes_file(excluded_rel))
                and (included_rel is None or PathPatterns(include=self.include).takes_file(included_rel)))

    def takes_folder_path(self, path: str, root: str) -> bool:
        rel = _relative(path, self.exclude_roots, root)
        return rel is None or self.takes_folder(rel)

    def _excluded(self, rel_path: str) -> bool:
        return any(_matches(p, rel_path) for p in self.exclude)

    def to_dict(self) -> dict:
        return {"include": list(self.include), "exclude": list(self.exclude),
                "include_roots": list(self.include_roots), "exclude_roots": list(self.exclude_roots)}

    @classmethod
    def from_dict(cls, d: Optional[dict]) -> "PathPatterns":
        d = d or {}
        return cls.of(d.get("include") or (), d.get("exclude") or (), d.get("include_roots") or (),
                      d.get("exclude_roots") or ())


def _relative(path: str, anchors: tuple[str, ...], root: str) -> Optional[str]:
    """`path` relative to the outermost of `anchors` holding it, `/`-separated; None when anchors
    are stored and none holds it (the patterns do not apply there); relative to `root` when the
    patterns were stored without their folders."""
    if not anchors:
        return os.path.relpath(path, root).replace(os.sep, "/")
    holding = [a for a in anchors if path != a and relative_to_root(path, [a]) is not None]
    return os.path.relpath(path, min(holding, key=len)).replace(os.sep, "/") if holding else None


def _matches(pattern: str, rel_path: str) -> bool:
    return fnmatchcase(rel_path, pattern) or fnmatchcase(rel_path.rsplit("/", 1)[-1], pattern)


def relative_to_root(path: str, roots: Iterable[str]) -> Optional[str]:
    """`path` relative to the first root holding it, `/`-separated; a root that is the file
    itself gives the file's name. None when no root holds it."""
    for root in roots:
        if path == root:
            return os.path.basename(path)
        prefix = root.rstrip(os.sep) + os.sep
        if path.startswith(prefix):
            return path[len(prefix):].replace(os.sep, "/")
    return None


def merged(stored: PathPatterns, include: Optional[Iterable[str]], exclude: Optional[Iterable[str]],
           roots: Iterable[str] = ()) -> PathPatterns:
    """The patterns a run applies: each kind given on this run replaces the stored one of that
    kind (`['']` clears it), read from this run's folders `roots` (absolute); a kind not given
    (None) keeps what the index stored, with the folders it was given for."""
    roots = tuple(roots)
    return PathPatterns.of(stored.include if include is None else include,
                           stored.exclude if exclude is None else exclude,
                           stored.include_roots if include is None else roots,
                           stored.exclude_roots if exclude is None else roots)
