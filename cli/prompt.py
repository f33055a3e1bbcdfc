"""The line language of `avsearch query -`: each line is a text query, or a ':' command that
changes the settings of the queries after it (:k, :view, ...) or asks one media or clip query
(:audio FILE, :like CLIP_ID). So a session at the prompt, or a script piped in, can do what
separate `avsearch query` runs would, with the index and model loaded once."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from avsearch.errors import QueryError
from avsearch.types import Query, View

HELP = """\
A line is a text query. Lines starting with ':' are commands:
  :k N                 hits per query
  :view av|video|audio|any
                       which indexed views to search
  :instruction [TEXT]  re-rank with this instruction (none: stop re-ranking)
  :min-score [X]       drop hits below X (none: keep all)
  :per-file [N]        at most N hits per file (none: no limit)
  :path [FOLDER]       only files under FOLDER (none: everywhere)
  :audio FILE [START END]   query with a file's sound (START/END in seconds)
  :video FILE [START END]   ... its pictures
  :av FILE [START END]      ... both
  :like CLIP_ID        more like an indexed clip
  :settings            show the settings
  :help                this text
A text query that starts with ':' is written with two ('::30 seconds to mars')."""

_MEDIA_VIEWS = {":audio": View.AUDIO, ":video": View.VIDEO, ":av": View.AV}
_VIEW_CHOICES = ("any", *(v.value for v in View))


@dataclass
class Reply:
    """What a line asks for: a query to run, a message to show, or an error (counted as failed)."""

    query: Optional[Query] = None
    message: Optional[str] = None
    error: Optional[str] = None


@dataclass
class PromptSession:
    fields: dict  # Query fields the command line gave (instruction, target_views, filters)
    search_args: dict  # Index.search_detailed arguments (k, per_file, min_score, ...)

    def handle(self, line: str) -> Reply:
        if line.startswith("::"):
            return Reply(query=Query(text=line[1:], **self.fields))
        if not line.startswith(":"):
            return Reply(query=Query(text=line, **self.fields))
        try:
            words = shlex.split(line)
        except ValueError as err:  # an unclosed quote
            return Reply(error=f"{err} in {line!r}")
        name, args = words[0], words[1:]
        try:
            return self._command(name, args)
        except (ValueError, QueryError) as err:
            return Reply(error=str(err))

    def _command(self, name: str, args: list[str]) -> Reply:
        rest = " ".join(args) or None
        if name == ":help":
            return Reply(message=HELP)
        if name == ":settings":
            return Reply(message=self.describe())
        if name == ":k":
            self.search_args["k"] = _positive_int(name, rest, optional=False)
        elif name == ":view":
            if rest not in _VIEW_CHOICES:
                raise ValueError(f":view takes one of {', '.join(_VIEW_CHOICES)}")
            self.fields["target_views"] = None if rest == "any" else [View.parse(rest)]
        elif name == ":instruction":
            self.fields["instruction"] = rest
        elif name == ":min-score":
            self.search_args["min_score"] = None if rest is None else _number(name, rest)
        elif name == ":per-file":
            self.search_args["per_file"] = _positive_int(name, rest, optional=True)
        elif name == ":path":
            self.fields["path_prefix"] = rest
        elif name in _MEDIA_VIEWS:
            return Reply(query=self._media_query(name, args))
        elif name == ":like":
            if len(args) != 1:
                raise ValueError(":like takes one clip_id (from a --json result)")
            return Reply(query=Query(clip_id=args[0], **self.fields))
        else:
            raise ValueError(f"unknown command {name!r}; :help lists them")
        return Reply(message=self.describe())

    def _media_query(self, name: str, args: list[str]) -> Query:
        if len(args) not in (1, 3):
            raise ValueError(f"{name} takes FILE, or FILE START END (seconds)")
        path = Path(args[0]).expanduser()
        if not path.is_file():
            raise ValueError(f"{name}: no such file: {path}")
        start, end = (_number(name, args[1]), _number(name, args[2])) if len(args) == 3 else (None, None)
        return Query(media=path, view=_MEDIA_VIEWS[name], start_s=start, end_s=end, **self.fields)

    def describe(self) -> str:
        views = self.fields.get("target_views")
        parts = [f"k={self.search_args['k']}", "view=" + ("any" if not views else ",".join(v.value for v in views))]
        for key, label in (("instruction", "instruction"), ("path_prefix", "path")):
            if self.fields.get(key):
                parts.append(f"{label}={self.fields[key]!r}")
        for key, label in (("min_score", "min-score"), ("per_file", "per-file")):
            if self.search_args.get(key) is not None:
                parts.append(f"{label}={self.search_args[key]}")
        return "settings: " + " ".join(parts)


def _number(name: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{name} takes a number, not {text!r}") from None


def _positive_int(name: str, text: Optional[str], *, optional: bool) -> Optional[int]:
    if text is None and optional:
        return None
    try:
        value = int(text or "")
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"{name} takes a whole number of at least 1" + (" (or nothing: no limit)" if optional else ""))
    return value
