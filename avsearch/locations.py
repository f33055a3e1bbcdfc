"""Where an index lives, without importing the store (the CLI's service path stays light)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Optional

DEFAULT_INDEX = "avsearch-index"


def resolve_index_path(path: Optional[str | Path] = None) -> Path:
    """--index, else $AVSEARCH_INDEX, else ./avsearch-index."""
    given = str(path or os.environ.get("AVSEARCH_INDEX") or DEFAULT_INDEX)
    # "s3://bucket/x" as a path would quietly become a local folder "s3:/bucket/x" (a Path-typed
    # option has already folded the "//" when the CLI passes it; a drive letter has one letter).
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]+:/", given):
        from avsearch.errors import UsageError

        raise UsageError(
            f"{given}: an index on an object store (s3://, gs://, ...) is not supported yet, as the index "
            "directory holds the FAISS index, its memory-mapped vectors and the write lock as plain files. "
            "Mount the bucket as a folder (s3fs, gcsfuse, a shared filesystem) and pass that path")
    return Path(given).expanduser().absolute()
