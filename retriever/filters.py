"""Turn a Query's filters into a LanceDB filter over the clips table (plus a glob applied in Python)."""

from __future__ import annotations

import os
from typing import Optional

from avsearch.store.schema import sql_in, sql_starts_with, sql_str
from avsearch.types import Query


def clip_filter(query: Query) -> Optional[str]:
    parts: list[str] = []
    if query.target_views:
        parts.append(sql_in("view", [v.value for v in query.target_views]))
    if query.path_prefix:
        parts.append(path_under(query.path_prefix))
    if query.min_duration_s is not None:
        parts.append(f"file_duration_s >= {float(query.min_duration_s)!r}")
    if query.max_duration_s is not None:
        parts.append(f"file_duration_s <= {float(query.max_duration_s)!r}")
    if query.indexed_after is not None:
        parts.append(f"indexed_at >= {float(query.indexed_after)!r}")
    return " AND ".join(f"({p})" for p in parts) or None


def path_under(prefix: str) -> str:
    """Paths equal to `prefix` or inside it, by whole components: --path ~/Videos/2019 takes
    ~/Videos/2019/a.mp4 (and a file query ~/Videos/2019 itself), never ~/Videos/2019-old/a.mp4."""
    prefix = os.path.abspath(os.path.expanduser(prefix))  # abspath also drops a trailing separator
    folder = prefix if prefix.endswith(os.sep) else prefix + os.sep  # "/" stays "/"
    return f"path = {sql_str(prefix)} OR {sql_starts_with('path', folder)}"
