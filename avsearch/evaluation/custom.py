"""`avsearch eval custom`: a user's judgements (judgements.py) against an existing index.

Rows whose files the index does not hold, query files that cannot be read and ranges past a
file's end are reported one problem each; every other row is evaluated.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Sequence

from avsearch.errors import AvsearchError, UsageError
from avsearch.evaluation.judgements import EvalQuery, Problem, read_judgements, rows_label
from avsearch.evaluation.runner import Direction, evaluate
from avsearch.types import View


def evaluate_custom(index, judgements: str | Path, *, target_views: Optional[Sequence[str]] = None,
                    depth: int = 100, ann: bool = True, seed: int = 0, progress=None) -> dict:
    """{"directions": [DirectionResult], "problems": [Problem], "queries": n} for a judgements CSV."""
    queries, problems = read_judgements(judgements)
    queries = check_against_index(index, queries, problems)
    views = [View.parse(v).value for v in (target_views or index.settings.views)]
    directions = []
    for query_view in dict.fromkeys(q.query_view for q in queries):
        mine = [q for q in queries if q.query_view == query_view]
        directions += [Direction(query_view, v, mine) for v in views]
    results, query_problems = evaluate(index, directions, depth=depth, ann=ann, seed=seed, progress=progress)
    scored = [r for r in results if r.queries]  # a target view none of the judged files has: no row
    return {"directions": scored, "problems": problems + query_problems, "queries": len(queries)}


def check_against_index(index, queries: list[EvalQuery], problems: list[Problem]) -> list[EvalQuery]:
    """The queries whose query file reads and with at least one target the index holds; the rest
    (and every target dropped) become problems."""
    files = {r["path"]: r for r in index.store.file_rows()}
    kept = []
    for q in queries:
        if q.media is not None and (why := _query_problem(q)):
            problems.append(Problem(rows_label(q.rows), why))
            continue
        good = []
        for target, row in zip(q.targets, q.rows):
            if why := _target_problem(target, files.get(target.key)):
                problems.append(Problem(rows_label([row]), why))
            else:
                good.append((target, row))
        if good:
            q.targets, q.rows = [t for t, _ in good], [r for _, r in good]
            kept.append(q)
    if not kept:
        raise UsageError("no row of the judgements file can be evaluated: "
                         + "; ".join(f"{p.where}: {p.error}" for p in problems[:5]))
    return kept


def _query_problem(q: EvalQuery) -> Optional[str]:
    from avsearch.media.sandbox import shared_sandbox

    if not os.path.isfile(q.media):
        return f"the query file {q.media} does not exist; fix `query_file` (relative paths start at the CSV's folder)"
    try:
        # In the sandbox child, as indexing and `avsearch query` probe: a file that crashes FFmpeg
        # takes the child down (one row's problem), never this run. Absolute: the child keeps
        # the working directory it started in.
        media = shared_sandbox().probe(os.path.abspath(q.media))
    except AvsearchError as err:
        return f"the query file cannot be read: {err}"
    except Exception as err:  # whatever a broken file makes the decoder raise: a problem of this row
        return f"the query file {q.media} cannot be read: {type(err).__name__}: {err}"
    if not media.views():
        return f"the query file {q.media} has no audio or video to search with"
    q.view = q.view or media.views()[0]
    if q.view not in media.views():
        have = ", ".join(v.value for v in media.views())
        return f"the query file {q.media} cannot be read as {q.view.value} (it has: {have}); fix `query_view`"
    if q.start_s is not None and q.start_s >= media.duration_s:
        return f"the query range starts at {q.start_s:g} s, past the end of {q.media} ({media.duration_s:.1f} s)"
    return None


def _target_problem(target, row: Optional[dict]) -> Optional[str]:
    if row is None:
        return (f"{target.key} is not in the index; index it (`avsearch index {target.key}`) "
                "or fix `file` (relative paths start at the CSV's folder)")
    if row["status"] == "failed":
        return f"{target.key} failed to index ({row['error']}); fix the file and re-index it, or drop the row"
    duration = row.get("duration_s") or 0.0
    if target.start_s is not None and target.start_s >= duration:
        return f"the range starts at {target.start_s:g} s, past the end of {target.key} ({duration:.1f} s); fix `start`"
    return None
