"""Decide what an indexing run must do, comparing the disk with the `files` table.

The size+mtime pair is the fast path (as rsync does): an unchanged pair means an unchanged file.
Otherwise the content fingerprint decides: the same fingerprint under the same path is a touch,
the same fingerprint as a row whose file is gone is a move, anything else is new or changed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable, Optional

from avsearch.indexer.crawl import Candidate, CrawlProblem, CrawlResult, under_roots


WORK_REASONS = ("new", "changed", "retry", "resume")


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
class Plan:
    work: list[Work] = field(default_factory=list)
    moved: list[Move] = field(default_factory=list)
    touched: list[dict] = field(default_factory=list)  # same content, new mtime: row to rewrite
    deleted: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    problems: list[CrawlProblem] = field(default_factory=list)  # unreadable before decoding

    def counts(self) -> dict[str, int]:
        return {
            **{reason: sum(w.reason == reason for w in self.work) for reason in WORK_REASONS},
            "moved": len(self.moved),
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
    # Rows whose file vanished, by fingerprint: the sources a moved file can come from.
    vanished = {
        r["fingerprint"]: r
        for r in existing_rows
        if r["status"] == "ok" and r["path"] not in on_disk and not exists(r["path"])
    }
    moved_from: set[str] = set()

    for cand in crawl.files:
        row = by_path.get(cand.path)
        if row is not None and row["size"] == cand.size and row["mtime"] == cand.mtime:
            redo = _redo(row, retry_failed)
            if redo:
                plan.work.append(_work(cand, row["fingerprint"], redo))
            else:
                plan.unchanged.append(cand.path)
            continue
        fp = _fingerprint(cand, fingerprint, plan)
        if fp is None:
            continue
        if row is not None and row["fingerprint"] == fp:
            redo = _redo(row, retry_failed)
            if redo:
                plan.work.append(_work(cand, fp, redo))
            else:
                plan.touched.append({**row, "size": cand.size, "mtime": cand.mtime})
        elif row is not None:
            plan.work.append(_work(cand, fp, "changed"))
        elif fp in vanished and vanished[fp]["path"] not in moved_from:
            source = vanished[fp]
            moved_from.add(source["path"])
            plan.moved.append(
                Move(source["path"], cand.path, cand.size, cand.mtime,
                     {**source, "path": cand.path, "size": cand.size, "mtime": cand.mtime})
            )
        else:
            plan.work.append(_work(cand, fp, "new"))

    if prune:
        for r in existing_rows:
            p = r["path"]
            if p not in on_disk and p not in moved_from and under_roots(p, crawl.roots) and not exists(p):
                plan.deleted.append(p)
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
