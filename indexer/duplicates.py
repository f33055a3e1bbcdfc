"""Record the paths a plan found to hold content another path's row already has (plan.py).

They are written after the pipeline: a duplicate of a file this run embeds is tied to that
file's outcome. Its row copies the probe facts of the row that holds the clips and has none of
its own; where no path of its content ended indexed, it fails with the canonical's reason (a
copy of a broken file is as broken). A run killed before this step plans them again next time.
"""

from __future__ import annotations

import time
from typing import Sequence

from avsearch.store import FileCommit, Store
from avsearch.indexer.plan import DUPLICATE, Duplicate
from avsearch.indexer.report import IndexReport

_FACTS = ("duration_s", "has_video", "has_audio", "fps", "width", "height", "sample_rate", "channels", "model_id")


def commit_duplicates(store: Store, duplicates: Sequence[Duplicate], report: IndexReport) -> None:
    if not duplicates:
        return
    rows = store.file_rows_with_fingerprints(sorted({d.fingerprint for d in duplicates}))
    by_path = {r["path"]: r for r in rows}
    demoted = {d.path for d in duplicates}  # rows of these paths hold nothing once committed
    commits = []
    for d in duplicates:
        holders = [r for r in rows if r["fingerprint"] == d.fingerprint and r["status"] == "ok" and r["path"] not in demoted]
        holder = by_path[d.canonical] if by_path.get(d.canonical) in holders else min(
            holders, key=lambda r: r["path"], default=None)
        row = {"path": d.path, "fingerprint": d.fingerprint, "size": d.size, "mtime": d.mtime,
               "n_clips": 0, "indexed_at": time.time()}
        if holder is not None:
            commits.append(FileCommit({**{k: holder.get(k) for k in _FACTS}, **row, "status": DUPLICATE, "error": None}))
            report.duplicates.append((d.path, holder["path"]))
            continue
        cause = (by_path.get(d.canonical) or {}).get("error")
        reason = f"same content as {d.canonical}, which could not be indexed" + (f": {cause}" if cause else "")
        commits.append(FileCommit({**row, "status": "failed", "error": reason}))
        report.failed.append((d.path, reason))
    store.commit(commits)


def hand_over(store: Store, rows: Sequence[dict], doomed: set[str]) -> list[str]:
    """Before the rows of `doomed` paths are removed (`avsearch remove`): an indexed row whose
    content has a duplicate that stays gives that duplicate its clips (re-pointed, as a move), so
    the copies stay searchable without re-embedding. Returns the paths handed over (gone already)."""
    heirs: dict[str, dict] = {}
    for r in sorted(rows, key=lambda r: r["path"]):
        if r["status"] == DUPLICATE and r["path"] not in doomed:
            heirs.setdefault(r["fingerprint"], r)
    handed = []
    for r in rows:
        heir = heirs.pop(r["fingerprint"], None) if r["status"] == "ok" and r["path"] in doomed else None
        if heir is not None:
            store.repoint(r["path"], {**r, "path": heir["path"], "size": heir["size"], "mtime": heir["mtime"]})
            handed.append(r["path"])
    return handed
