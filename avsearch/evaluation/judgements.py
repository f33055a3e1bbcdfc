"""A user's relevance judgements: which indexed moments should answer which query.

The file is a CSV with a header. Each row judges one (query, relevant target) pair; rows with the
same query are one query with several targets.

    query,query_file,query_start,query_end,query_view,file,start,end,grade
    a dog barking,,,,,dogs/park.mp4,12,20,2
    ,clips/bark.wav,0,3,audio,dogs/park.mp4,,,1

- `query` (text) or `query_file` (a media file, optionally `query_start`/`query_end` seconds and
  `query_view` av|video|audio, default the richest view the file has): exactly one per row.
- `file`: the relevant file, as indexed; `start`/`end` seconds narrow it to a range (a hit
  counts when its time range overlaps it), empty = the whole file.
- `grade`: relevance, a number > 0 (default 1); nDCG uses it, recall and MRR count any grade.
Relative paths are read from the CSV's folder. A bad row is reported with its line number and
the fix, and the other rows are still evaluated.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from avsearch.errors import UsageError
from avsearch.types import View

COLUMNS = ("query", "query_file", "query_start", "query_end", "query_view", "file", "start", "end", "grade")


@dataclass(frozen=True)
class Target:
    """A relevant file, or a time range of it, with its grade. `key` is the indexed path (or,
    for a caption gallery, the caption's id)."""

    key: str
    start_s: Optional[float] = None
    end_s: Optional[float] = None
    grade: float = 1.0

    def covers(self, key: str, start_s: float, end_s: float) -> bool:
        """Whether a unit [start_s, end_s) of `key` overlaps this target."""
        if key != self.key:
            return False
        lo = self.start_s if self.start_s is not None else float("-inf")
        hi = self.end_s if self.end_s is not None else float("inf")
        return start_s < hi and end_s > lo


@dataclass
class EvalQuery:
    """One query and everything judged relevant to it. `rows`: the CSV lines it came from."""

    text: Optional[str] = None
    media: Optional[str] = None
    view: Optional[View] = None  # the media's view (None for text)
    start_s: Optional[float] = None
    end_s: Optional[float] = None
    targets: list[Target] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)

    @property
    def query_view(self) -> str:
        return "text" if self.text is not None else self.view.value

    @property
    def identity(self) -> tuple:
        return (self.text, self.media, self.view, self.start_s, self.end_s)


@dataclass
class Problem:
    """Something left out of an evaluation: `where` names the CSV row(s) or benchmark item."""

    where: str
    error: str

    def to_dict(self) -> dict:
        return {"where": self.where, "error": self.error}


def rows_label(rows: list[int]) -> str:
    """"row 3" or "rows 3, 4": CSV line numbers (the header is line 1)."""
    return ("row " if len(rows) == 1 else "rows ") + ", ".join(str(r) for r in rows)


def read_judgements(path: str | Path) -> tuple[list[EvalQuery], list[Problem]]:
    """(queries, problems) of a judgements CSV. Only a file that cannot be read at all, or has no
    usable header, raises (UsageError); everything wrong with a row is a Problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise UsageError(f"cannot read the judgements file {path}: {err}; give a UTF-8 CSV") from None
    reader = csv.DictReader(text.splitlines())
    header = [h.strip() for h in (reader.fieldnames or [])]
    if "file" not in header or not ({"query", "query_file"} & set(header)):
        raise UsageError(f"{path} needs a header row with `file` and `query` or `query_file` columns "
                         f"(all columns: {','.join(COLUMNS)}); see `avsearch eval custom --help`")
    base = path.parent
    queries: dict[tuple, EvalQuery] = {}
    problems: list[Problem] = []
    for line, raw in enumerate(reader, start=2):
        row = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        if not any(row.values()):
            continue  # a blank line
        try:
            query, target = _parse_row(row, base)
        except UsageError as err:
            problems.append(Problem(rows_label([line]), str(err)))
            continue
        known = queries.setdefault(query.identity, query)
        known.targets.append(target)
        known.rows.append(line)
    return list(queries.values()), problems


def _parse_row(row: dict, base: Path) -> tuple[EvalQuery, Target]:
    text, qfile = row.get("query", ""), row.get("query_file", "")
    if bool(text) == bool(qfile):
        raise UsageError("give exactly one of `query` (text) and `query_file` (media)")
    if not row.get("file"):
        raise UsageError("`file` is empty: name the relevant file")
    grade = _number(row, "grade", 1.0)
    if grade <= 0:
        raise UsageError(f"grade {grade:g} must be above 0 (leave non-relevant pairs out of the file)")
    target = Target(_resolve(row["file"], base), *_range(row, "start", "end"), grade=grade)
    if text:
        return EvalQuery(text=text), target
    view = View.parse(row["query_view"]) if row.get("query_view") else None
    start, end = _range(row, "query_start", "query_end")
    return EvalQuery(media=_resolve(qfile, base), view=view, start_s=start, end_s=end), target


def _resolve(name: str, base: Path) -> str:
    return os.path.abspath(os.path.expanduser(name if os.path.isabs(os.path.expanduser(name)) else base / name))


def _number(row: dict, column: str, default: Optional[float]) -> Optional[float]:
    value = row.get(column, "")
    if not value:
        return default
    try:
        return float(value)
    except ValueError:
        raise UsageError(f"`{column}` is {value!r}, not a number") from None


def _range(row: dict, start_col: str, end_col: str) -> tuple[Optional[float], Optional[float]]:
    start, end = _number(row, start_col, None), _number(row, end_col, None)
    if start is not None and start < 0:
        raise UsageError(f"`{start_col}` is {start:g}: give 0 or more")
    if start is not None and end is not None and end <= start:
        raise UsageError(f"the range {start:g}-{end:g} s is empty: `{end_col}` must be after `{start_col}`")
    return start, end
