"""Turn a Query's filters into a LanceDB filter over the clips table (plus a glob applied in Python)."""

from __future__ import annotations

import os
from typing import Optional

from avsearch.store.schema import sql_in, sql_str
from avsearch.types import Query


def clip_filter(query: Query) -> Optional[str]:
    parts: list[str] = []
    if query.target_views:
        parts.append(sql_in("view", [v.value for v in query.target_views]))
    if query.path_prefix:
        prefix = os.path.abspath(os.path.expanduser(query.path_prefix))
        # LIKE with an escape so % and _ in real paths match literally.
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        parts.append(f"path LIKE {sql_str(escaped + '%')} ESCAPE '\\'")
    if query.min_duration_s is not None:
        parts.append(f"file_duration_s >= {float(query.min_duration_s)!r}")
    if query.max_duration_s is not None:
        parts.append(f"file_duration_s <= {float(query.max_duration_s)!r}")
    if query.indexed_after is not None:
        parts.append(f"indexed_at >= {float(query.indexed_after)!r}")
    return " AND ".join(f"({p})" for p in parts) or None
