"""Arrow schemas of the two LanceDB tables and the index's metadata file."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

FORMAT_VERSION = 1

FILES_SCHEMA = pa.schema(
    [
        ("path", pa.string()),
        ("fingerprint", pa.string()),
        ("size", pa.int64()),
        ("mtime", pa.float64()),
        ("duration_s", pa.float64()),
        ("has_video", pa.bool_()),
        ("has_audio", pa.bool_()),
        ("fps", pa.float64()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("sample_rate", pa.int32()),
        ("channels", pa.int32()),
        ("status", pa.string()),  # "ok", "partial", "failed" or "duplicate" (content held by another path's row)
        ("error", pa.string()),
        ("n_clips", pa.int32()),
        ("model_id", pa.string()),
        ("indexed_at", pa.float64()),
    ]
)


def clips_schema(dim: int) -> pa.Schema:
    return pa.schema(
        [
            ("clip_id", pa.string()),
            ("row_id", pa.int64()),  # int64 twin of clip_id, the key of the FAISS index
            ("fingerprint", pa.string()),
            ("path", pa.string()),
            ("start_s", pa.float64()),
            ("end_s", pa.float64()),
            ("view", pa.string()),
            ("file_duration_s", pa.float64()),  # denormalised so duration filters need no join
            ("indexed_at", pa.float64()),
            ("model_id", pa.string()),
            ("vector", pa.list_(pa.float32(), dim)),
        ]
    )


def clips_table(rows: list[dict], vectors: np.ndarray, dim: int) -> pa.Table:
    """Clip rows and their vectors as an Arrow table of the clips schema: what the driver appends,
    and what a Ray worker writes as a Lance fragment (fragments.py), built the same way."""
    schema = clips_schema(dim)
    cols = {f.name: [r.get(f.name) for r in rows] for f in schema if f.name != "vector"}
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).ravel())
    cols["vector"] = pa.FixedSizeListArray.from_arrays(flat, dim)
    return pa.Table.from_pydict(cols, schema=schema)


RERANK_CACHE_SCHEMA_FIELDS = [
    ("key", pa.string()),  # hash of (clip_id, instruction, model_id)
    ("clip_id", pa.string()),
    ("created_at", pa.float64()),
]


def rerank_cache_schema(dim: int) -> pa.Schema:
    return pa.schema(RERANK_CACHE_SCHEMA_FIELDS + [("vector", pa.list_(pa.float32(), dim))])


def sql_str(value: str) -> str:
    """Quote a string literal for a LanceDB filter (paths may contain quotes)."""
    return "'" + value.replace("'", "''") + "'"


def sql_starts_with(column: str, prefix: str) -> str:
    """`column` begins with `prefix`, taken literally (LIKE with an escape, so % and _ in real
    paths match themselves)."""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"{column} LIKE {sql_str(escaped + '%')} ESCAPE '\\'"


def sql_in(column: str, values) -> str:
    vals = ", ".join(sql_str(v) if isinstance(v, str) else str(int(v)) for v in values)
    return f"{column} IN ({vals})"
