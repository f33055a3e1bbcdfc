"""Where an index lives, without importing the store (the CLI's service path stays light)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

DEFAULT_INDEX = "avsearch-index"


def resolve_index_path(path: Optional[str | Path] = None) -> Path:
    """--index, else $AVSEARCH_INDEX, else ./avsearch-index."""
    return Path(path or os.environ.get("AVSEARCH_INDEX") or DEFAULT_INDEX).expanduser().absolute()
