"""Checks that need no model, no LanceDB and no torch: run them first, so a mistyped path, index,
number or model answers at once instead of after a minute of imports and loading.

Everything here reads only the file system and the index's `avsearch.json`; the CLI calls these
before `Index.open`, and `Index` calls them too, so the library refuses as early.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable, Optional

from avsearch.errors import IndexNotFoundError, ModelMismatchError, PathNotFoundError, UsageError
from avsearch.locations import IndexLocation, IndexURI

META_NAME = "avsearch.json"  # the index's identity card (avsearch.store.meta writes it)
# Registry names that stand for a hub id: "wave" loads the published checkpoint.
_ALIASES = {"wave": "tsinghua-ee/WAVE-7B"}


def check_location(directory: IndexLocation) -> None:
    """Refuse a path that can never hold an index (a regular file), or an object store that
    cannot be reached (no bucket, refused credentials, wrong endpoint)."""
    if isinstance(directory, IndexURI):
        from avsearch import objstore

        objstore.check_reachable(directory.uri)
        return
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise IndexNotFoundError(
            f"{directory} is a file, not an avsearch index directory; point --index (or "
            "AVSEARCH_INDEX) at a directory: an existing index, or a new one to create"
        )


def require_index(directory: IndexLocation) -> None:
    """Refuse a directory that holds no index (commands that read one)."""
    check_location(directory)
    present = (_meta_text(directory) is not None if isinstance(directory, IndexURI)
               else (Path(directory) / META_NAME).is_file())
    if not present:
        raise IndexNotFoundError(
            f"no avsearch index at {directory} (no {META_NAME}); create one with "
            f"`avsearch index FOLDER --index {directory}`, or point --index / AVSEARCH_INDEX at an existing one"
        )


def recorded_model(directory: IndexLocation) -> Optional[tuple[str, str]]:
    """(model_id, model_source) the index was built with, or None (no index, or unreadable: the
    store reports that one properly when it opens)."""
    try:
        data = json.loads(_meta_text(directory) or "")
        return str(data["model_id"]), str(data["model_source"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _meta_text(directory: IndexLocation) -> Optional[str]:
    """The index's avsearch.json, or None when there is none (locally: none readable)."""
    if isinstance(directory, IndexURI):
        from avsearch import objstore

        return objstore.read_text(f"{directory.uri}/{META_NAME}")
    try:
        return (Path(directory) / META_NAME).read_text()
    except OSError:
        return None


def check_model_spec(directory: IndexLocation, spec: Optional[str]) -> None:
    """Refuse `--model spec` for an index built with another model, before anything is downloaded
    or loaded, where the names alone prove it: both are registry names or hub ids and differ. A
    local checkpoint directory (on either side) may hold the same weights under another name, so
    that case is left to the model id check after loading."""
    if spec is None:
        return
    recorded = recorded_model(directory)
    if recorded is None:
        return
    model_id, source = recorded
    if spec in (model_id, source):
        return
    if _is_local(spec) or _is_local(source):
        return
    if _ALIASES.get(spec, spec) == _ALIASES.get(source, source):
        return
    raise ModelMismatchError(
        f"the index at {directory} was built with model {source} ({model_id}); --model {spec} is another "
        "model, and vectors of two models do not share a space: drop --model to use the index's own model, "
        "or index into another directory with --index"
    )


def _is_local(spec: str) -> bool:
    return os.path.isdir(os.path.expanduser(spec)) or spec.startswith((".", "/", "~"))


def check_paths_exist(paths: Iterable[str | Path]) -> None:
    """Refuse paths that do not exist (before the model loads or an index directory is made)."""
    missing = [str(p) for p in paths if not os.path.lexists(os.path.expanduser(str(p)))]
    if missing:
        verb = "does not exist" if len(missing) == 1 else "do not exist"
        raise PathNotFoundError(f"{', '.join(missing)} {verb}; check the path (nothing was changed in the index)")


def check_at_least_one(name: str, value: Optional[int]) -> None:
    """A count such as k must be 1 or more (0 or -1 would search and list nothing)."""
    if value is not None and value < 1:
        raise UsageError(f"{name} must be at least 1, not {value}")
