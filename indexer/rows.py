"""A clip's row in the clips table, built the same way wherever it is written: by the local
pipeline (pipeline.py) and by a Ray embed actor writing its own fragment (distributed/work.py).
Light on purpose (no store, no model): an embed actor imports it."""

from __future__ import annotations

from avsearch.indexer.ids import clip_id, row_id


def clip_row(path: str, fingerprint: str, view: str, start_s: float, end_s: float, *, file_duration_s: float,
             indexed_at: float, model_id: str) -> dict:
    cid = clip_id(path, fingerprint, view, start_s)
    return {
        "clip_id": cid, "row_id": row_id(cid), "fingerprint": fingerprint, "path": path,
        "start_s": float(start_s), "end_s": float(end_s), "view": view,
        "file_duration_s": file_duration_s, "indexed_at": indexed_at, "model_id": model_id,
    }
