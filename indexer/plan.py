"""Decide what an indexing run must do, comparing the disk with the `files` table.

The size+mtime pair is the fast path (as rsync does): an unchanged pair means an unchanged file.
Otherwise the content fingerprint decides: the same fingerprint under the same path is a touch,
the same fingerprint as a row whose file is gone is a move, anything else is new or changed.

Content de-duplication: one content (fingerprint) has one "canonical" files row with the clips;
every other path of it (a copy, a hard link, a symlink) gets a "duplicate" row with no clips of
its own, tied to the canonical by the fingerprint alone (no extra column: indexes made before
de-duplication need no migration). Where the canonical's file is gone or changed while a
duplicate remains, the duplicate takes its clips over (a move: nothing is re-embedded); a gone
duplicate is pruned like any file. Among paths of one content the canonical is, in this order,
one already indexed, one not reached through a symlink, the first by path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable, Optional

from avsearch.indexer.crawl import Candidate, CrawlProblem, CrawlResult, under_roots


WORK_REASONS = ("new", "changed", "retry", "resume")
CANONICAL = ("ok", "partial")  # statuses of a row that holds (or is getting) its content's clips
DUPLICATE = "duplicate"  # status of a row whose content's clips another path's row holds


@dataclass
class Work:
    """A file to decode and embed."""

    path: str
    size: int
    mtime: float
    fingerprint: str
    reason: str  # one of WORK_REASONS ("resume": a long file an interrupted run committed in part)


@dataclass
class Move:
    old_path: str
    new_path: str
    size: int
    mtime: float
    row: dict


@dataclass
class Duplicate:
    """A path whose content another path's row holds (`canonical`): recorded, never embedded."""

    path: str
    size: int
    mtime: float
    fingerprint: str
    canonical: str


@dataclass
class Plan:
    work: list[Work] = field(default_factory=list)
    moved: list[Move] = field(default_factory=list)
    touched: list[dict] = field(default_factory=list)  # same content, new mtime: row to rewrite
    deleted: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    duplicates: list[Duplicate] = field(default_factory=list)  # new duplicate rows (unchanged ones are in unchanged)
    problems: list[CrawlProblem] = field(default_factory=list)  # unreadable before decoding

    def counts(self) -> dict[str, int]:
        return {
            **{reason: sum(w.reason == reason for w in self.work) for reason in WORK_REASONS},
            "moved": len(self.moved),
            "duplicate": len(self.duplicates),
            "deleted": len(self.deleted),
            "unchanged": len(self.unchanged) + len(self.touched),
            "unreadable": len(self.problems),
        }


def make_plan(
    crawl: CrawlResult,
    existing_rows: list[dict],
    fingerprint: Callable[[str], str],
    *,
    prune: bool = True,
    retry_failed: bool = False,
    exists: Callable[[str], bool] = os.path.lexists,
) -> Plan:
    plan = Plan(problems=list(crawl.problems))
    by_path = {r["path"]: r for r in existing_rows}
    on_disk = {c.path for c in crawl.files}

    # The content of every readable candidate now (fingerprinting only what size+mtime cannot vouch for).
    current: dict[str, str] = {}
    for cand in crawl.files:
        row = by_path.get(cand.path)
        if row is not None and row["size"] == cand.size and row["mtime"] == cand.mtime:
            current[cand.path] = row["fingerprint"]
        else:
            fp = _fingerprint(cand, fingerprint, plan)
            if fp is not None:
                current[cand.path] = fp
    unreadable = on_disk - set(current)

    def pruned(path: str) -> bool:
        return (prune and path not in on_disk and under_roots(path, crawl.roots)
                and (not exists(path) or crawl.left_out(path)))

    # Which path holds each content's clips: an indexed row whose file still has that content.
    # A row whose file is gone (or pruned) or changed releases its clips to a path of the same
    # content (a move); the first of those by path is the source.
    canonical: dict[str, str] = {}
    released: dict[str, dict] = {}
    linked = {c.path for c in crawl.files if c.via_link}
    preference = lambda p: (p in linked, p)  # noqa: E731  (real paths first, then by path)
    for r in existing_rows:  # no sort: only rows sharing a content are compared
        if r["status"] not in CANONICAL:
            continue
        fp, p = r["fingerprint"], r["path"]
        if p in on_disk:
            live = p in unreadable or current[p] == fp
        else:
            live = exists(p) and not pruned(p)
        if live:
            if fp not in canonical or preference(p) < preference(canonical[fp]):
                canonical[fp] = p
        elif r["status"] == "ok" and (fp not in released or p < released[fp]["path"]):
            released[fp] = r  # partial rows are resumed or dropped, never moved
    moved_from: set[str] = set()

    def take_over(cand: Candidate, fp: str) -> bool:
        """Give `cand` the clips a row released, if its content's are free; True if it did."""
        source = released.get(fp)
        if fp in canonical or source is None or source["path"] in moved_from:
            return False
        moved_from.add(source["path"])
        canonical[fp] = cand.path
        plan.moved.append(Move(source["path"], cand.path, cand.size, cand.mtime,
                               {**source, "path": cand.path, "size": cand.size, "mtime": cand.mtime}))
        return True

    for cand in sorted(crawl.files, key=lambda c: c.via_link):  # stable: by path within each kind
        if cand.path not in current:
            continue
        fp, row = current[cand.path], by_path.get(cand.path)
        same = row is not None and row["fingerprint"] == fp
        same_stat = row is not None and row["size"] == cand.size and row["mtime"] == cand.mtime
        if same and row["status"] == DUPLICATE:
            if take_over(cand, fp):
                continue
            if fp not in canonical:  # its content's clips are gone (the canonical was removed or failed)
                canonical[fp] = cand.path
                plan.work.append(_work(cand, fp, "new"))
            elif same_stat:
                plan.unchanged.append(cand.path)
            else:
                plan.touched.append({**row, "size": cand.size, "mtime": cand.mtime})
            continue
        if same:
            redo = _redo(row, retry_failed)
            other = canonical.get(fp, cand.path)
            if other != cand.path and (row["status"] == "ok" or redo == "retry"):
                # Two paths embedded for one content (an index made before de-duplication), or a
                # failed copy retried while another path of it is indexed: keep one.
                plan.duplicates.append(Duplicate(cand.path, cand.size, cand.mtime, fp, other))
            elif redo:
                canonical.setdefault(fp, cand.path)
                plan.work.append(_work(cand, fp, redo))
            elif same_stat:
                plan.unchanged.append(cand.path)
            else:
                plan.touched.append({**row, "size": cand.size, "mtime": cand.mtime})
            continue
        if row is None and take_over(cand, fp):
            continue
        if fp in canonical and canonical[fp] != cand.path:
            plan.duplicates.append(Duplicate(cand.path, cand.size, cand.mtime, fp, canonical[fp]))
            continue
        canonical[fp] = cand.path
        plan.work.append(_work(cand, fp, "new" if row is None else "changed"))

    # Content released here whose other path is a duplicate row outside this crawl (a copy in a
    # folder this run does not walk): that path takes the clips over, as a path found here would.
    for r in existing_rows:
        fp, p = r["fingerprint"], r["path"]
        source = released.get(fp)
        if (r["status"] == DUPLICATE and source is not None and fp not in canonical and p not in on_disk
                and source["path"] not in moved_from and exists(p) and not pruned(p)
                and _unchanged_on_disk(p, r)):
            take_over(Candidate(p, r["size"], r["mtime"]), fp)

    if prune:
        for r in existing_rows:
            p = r["path"]
            if p not in moved_from and pruned(p):
                plan.deleted.append(p)
    plan.work.sort(key=lambda w: w.path)
    return plan


def _redo(row: dict, retry_failed: bool) -> Optional[str]:
    """Why a file whose content the index already knows is worked on again, or None."""
    if row["status"] == "partial":  # unfinished, not failed: always carried on
        return "resume"
    if row["status"] != "ok" and retry_failed:
        return "retry"
    return None


def _work(cand: Candidate, fp: str, reason: str) -> Work:
    return Work(cand.path, cand.size, cand.mtime, fp, reason)


def _fingerprint(cand: Candidate, fingerprint: Callable[[str], str], plan: Plan) -> Optional[str]:
    try:
        return fingerprint(cand.path)
    except Exception as err:  # unreadable right now: report, never abort the plan
        plan.problems.append(CrawlProblem(cand.path, f"cannot read file: {err}"))
        return None


def _unchanged_on_disk(path: str, row: dict) -> bool:
    """Whether the file at `path` still has the size and mtime its row recorded: a copy outside
    this crawl takes clips over only while it still holds the content (it is not fingerprinted)."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    return int(st.st_size) == int(row["size"]) and float(st.st_mtime) == float(row["mtime"])
