"""`avsearch doctor`: find what is wrong with an index and, asked to, repair it.

Checks: each table opens at its newest version and its data files read; the metadata agrees with
the clips table; no clips without a files row (orphans); no "ok" row whose clips are gone; the
ANN index covers exactly the clips that count.

Repair works from what Lance keeps: every commit is a version, and a version whose data files
are all there is a consistent table. A damaged table is restored to its newest readable version
(a new commit; nothing is deleted). What that loses is handed to the next `avsearch index`:
rows whose clips went missing become "partial", so the run re-embeds only the missing clips.
A table with no readable version at all is moved aside and made again: an empty clips table
(every file is re-embedded), or a files table rebuilt from the clips as "partial" rows (the
next run checks each file's content and embeds only what has no clips). Then orphans are
dropped and the ANN index is rebuilt.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import lancedb

from avsearch.store.faults import clean_message
from avsearch.store.schema import FILES_SCHEMA, clips_schema
from avsearch.store.tables import CLIPS, FILES

LANCE_DIR = "lance"
# A narrow column per table: reading it opens every data file of the version, without reading
# the vectors.
_PROBE = {FILES: "path", CLIPS: "row_id"}
_U64 = 2**64 - 1


@dataclass
class Finding:
    part: str  # "files", "clips", "metadata", "orphans", "rows", "ann"
    problem: str
    repair: str  # what `--repair` does about it


@dataclass
class DoctorReport:
    index: str
    findings: list[Finding] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    remaining: list[Finding] = field(default_factory=list)  # after a repair: what it could not fix

    @property
    def ok(self) -> bool:
        return not self.findings

    def as_dict(self) -> dict:
        return {"index": self.index, "ok": self.ok, "findings": [f.__dict__ for f in self.findings],
                "repaired": list(self.repaired), "remaining": [f.__dict__ for f in self.remaining]}


# -- looking ----------------------------------------------------------------------------------


def table_versions(directory: Path, name: str) -> list[int]:
    """Version numbers with a manifest on disk, newest first (read from the file names, so this
    works when the table itself will not open)."""
    vdir = Path(directory) / LANCE_DIR / f"{name}.lance" / "_versions"
    out = []
    for p in vdir.glob("*.manifest") if vdir.is_dir() else []:
        if p.stem.isdigit():
            n = int(p.stem)
            out.append(_U64 - n if n > 2**63 else n)  # v2 paths count down from u64::MAX
    return sorted(out, reverse=True)


def _read_problem(db, name: str, version: Optional[int] = None) -> Optional[str]:
    """Why the table (at `version`, default newest) cannot be read, or None."""
    try:
        table = db.open_table(name) if version is None else db.open_table(name, version=version)
        table.search().select([_PROBE[name]]).limit(None).to_arrow()
    except (OSError, RuntimeError, ValueError) as err:
        return clean_message(err)
    return None


def _table_findings(directory: Path, db, name: str) -> list[Finding]:
    if not (Path(directory) / LANCE_DIR / f"{name}.lance").is_dir():
        return [Finding(name, f"the {name} table is missing", _lost_table_repair(name))]
    why = _read_problem(db, name)
    if why is None:
        return []
    readable = newest_readable_version(directory, db, name)
    fix = (f"restore version {readable} (the newest readable one)" if readable is not None
           else _lost_table_repair(name))
    return [Finding(name, f"the {name} table cannot be read: {why}", fix)]


def _lost_table_repair(name: str) -> str:
    if name == CLIPS:
        return "make an empty clips table; the next `avsearch index` re-embeds every file"
    return "rebuild the files rows from the clips; the next `avsearch index` checks each file and finishes it"


def newest_readable_version(directory: Path, db, name: str) -> Optional[int]:
    for version in table_versions(directory, name):
        if _read_problem(db, name, version) is None:
            return version
    return None


def _local_only(store) -> None:
    """The checks read and remake table folders on disk: an object-store index is refused."""
    from avsearch.errors import UsageError
    from avsearch.locations import IndexURI

    if isinstance(store.location, IndexURI):
        raise UsageError(
            f"avsearch doctor checks indexes in a local folder, not {store.location}: copy the index to a "
            f"folder (e.g. `aws s3 sync {store.location} ./copy`), run `avsearch doctor --index ./copy`, and "
            "copy a repaired one back while nothing writes to it")


def check(store) -> DoctorReport:
    """Every problem of the index at `store.directory`; changes nothing."""
    _local_only(store)
    directory = store.directory
    report = DoctorReport(str(directory))
    db = lancedb.connect(str(directory / LANCE_DIR))
    for name in (FILES, CLIPS):
        report.findings += _table_findings(directory, db, name)
    if report.findings:  # the checks below read both tables
        return report
    try:
        report.findings += _content_findings(store)
    except (OSError, RuntimeError, ValueError) as err:  # damage the one-column probe cannot see
        report.findings.append(Finding("tables", f"reading the tables failed: {clean_message(err)}",
                                       "nothing automatic: restore the index from a backup or index again"))
    return report


def _content_findings(store) -> list[Finding]:
    out = []
    tables = store.tables
    tables.refresh()
    vector = tables.clips.schema.field("vector").type
    if getattr(vector, "list_size", store.meta.dim) != store.meta.dim:
        out.append(Finding("metadata", f"avsearch.json says dimension {store.meta.dim}, the clips table holds "
                           f"{vector.list_size}-d vectors", "nothing: restore avsearch.json from a backup"))
    models = set(tables.clip_meta(columns=["model_id"]).column("model_id").to_pylist()) - {None}
    if models - {store.meta.model_id}:
        out.append(Finding("metadata", f"clips of model(s) {sorted(models - {store.meta.model_id})} in an index "
                           f"of {store.meta.model_id}", "nothing: re-index into a new directory"))
    served = len(tables.vouched_row_ids())  # the clips that count: what the ANN index must hold
    orphans = tables.count_clips() - served
    if orphans:
        out.append(Finding("orphans", f"{orphans} clips have no committed files row (never served)", "delete them"))
    short = short_rows(tables)
    if short:
        out.append(Finding("rows", f"{len(short)} files marked indexed have clips missing (e.g. {short[0]['path']})",
                           "mark them part done; the next `avsearch index` embeds only the missing clips"))
    ann = store.ann_state()
    if ann["kind"] is not None and ann["fresh"] and ann["vectors"] != served:
        out.append(Finding("ann", f"the ANN index holds {ann['vectors']} vectors for {served} clips", "rebuild it"))
    elif ann["kind"] is None and served:
        out.append(Finding("ann", "there is no ANN index (built on the next query)", "build it"))
    elif ann["kind"] is not None and not ann["fresh"]:
        out.append(Finding("ann", f"the ANN index covers table versions {ann['covers_version']}, the tables are at "
                           f"{ann['table_version']} (brought up to date on the next query)", "rebuild it"))
    return out


def short_rows(tables) -> list[dict]:
    """"ok" rows with fewer clips than their n_clips says (a restored clips table lost them)."""
    rows = [r for r in tables.file_rows("status = 'ok'") if (r["n_clips"] or 0) > 0]
    if not rows:
        return []
    meta = tables.clip_meta(columns=["path", "fingerprint"])
    counts = Counter(zip(meta.column("path").to_pylist(), meta.column("fingerprint").to_pylist()))
    return [r for r in rows if counts[(r["path"], r["fingerprint"])] < r["n_clips"]]


# -- repairing --------------------------------------------------------------------------------


def repair(store) -> DoctorReport:
    """Fix what `check` finds, as the module docstring says. The caller holds the write lock and
    opens a fresh Store afterwards (this one's table handles may point at replaced tables)."""
    _local_only(store)
    directory = store.directory
    report = DoctorReport(str(directory))
    db = lancedb.connect(str(directory / LANCE_DIR))
    lost_files = False
    for name in (CLIPS, FILES):
        if not _table_findings(directory, db, name):
            continue
        version = newest_readable_version(directory, db, name)
        if version is not None:
            db.open_table(name, version=version).restore()
            report.repaired.append(f"{name}: restored version {version}, the newest readable one")
        else:
            _remake(directory, db, name, store.meta.dim)
            lost_files = lost_files or name == FILES
            report.repaired.append(f"{name}: no readable version; moved aside and made again")
    store._tables = None  # reopen at the repaired versions
    tables = store.tables
    if lost_files:
        n = _rows_from_clips(tables)
        report.repaired.append(f"files: {n} rows rebuilt from the clips as part done")
    short = short_rows(tables)
    if short:
        tables._upsert_files([{**r, "status": "partial"} for r in short])
        report.repaired.append(f"{len(short)} files with missing clips marked part done")
    orphans = tables.recover()
    if orphans:
        report.repaired.append(f"{orphans} orphan clips deleted")
    store.reindex()
    report.repaired.append("ANN index rebuilt")
    return report


def _remake(directory: Path, db, name: str, dim: int) -> None:
    path = Path(directory) / LANCE_DIR / f"{name}.lance"
    if path.exists():  # kept for whoever wants to dig; the name no longer ends in .lance
        path.rename(path.with_name(f"{name}.lance.damaged-{int(time.time())}"))
    db.create_table(name, schema=FILES_SCHEMA if name == FILES else clips_schema(dim))


def _rows_from_clips(tables) -> int:
    meta = tables.clip_meta(columns=["path", "fingerprint", "file_duration_s", "model_id"])
    seen: dict[tuple, dict] = {}
    for path, fp, dur, model in zip(*(meta.column(c).to_pylist() for c in meta.column_names)):
        row = seen.setdefault((path, fp), {"path": path, "fingerprint": fp, "size": -1, "mtime": -1.0,
                                           "duration_s": dur, "status": "partial", "n_clips": 0, "model_id": model})
        row["n_clips"] += 1
    by_path: dict[str, dict] = {}
    for row in seen.values():  # a path with clips of two contents: the one with more clips
        if row["path"] not in by_path or row["n_clips"] > by_path[row["path"]]["n_clips"]:
            by_path[row["path"]] = row
    if by_path:
        tables._upsert_files(list(by_path.values()))
    return len(by_path)
