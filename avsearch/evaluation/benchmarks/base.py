"""What every benchmark reader returns, and the helpers they share: reading a data set's own
metadata file, finding each item's media under --data by its documented names (never
downloading), and turning captioned items into text→media and media→text directions."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

from avsearch.errors import UsageError
from avsearch.evaluation.benchmarks.paper import figure
from avsearch.evaluation.judgements import EvalQuery, Problem, Target
from avsearch.evaluation.runner import Direction
from avsearch.types import View

MEDIA_EXTENSIONS = ("wav", "flac", "mp3", "m4a", "ogg", "opus", "mp4", "mkv", "webm", "avi", "mov")


@dataclass
class BenchData:
    """A benchmark's test split as found under --data."""

    name: str
    media: list[str]  # the items' files: what is indexed
    directions: list[Direction]
    problems: list[Problem] = field(default_factory=list)  # items whose media is missing
    clip_s: float = 10.0  # the default clip length: one clip per item, as the paper embeds each item whole
    views: tuple[str, ...] = ("audio",)  # the views indexed (the galleries' views)
    protocol: str = ""
    items: int = 0  # items in the metadata's test split


@dataclass
class Item:
    key: str  # the data set's id of the item, named in problems
    path: str  # its media file
    captions: list[str] = field(default_factory=list)


def metadata_file(data_dir: Path, names: Sequence[str], benchmark: str) -> Path:
    """The first of `names` that exists under data_dir (or its metadata/ folder)."""
    for name in names:
        for place in (data_dir / name, data_dir / "metadata" / name):
            if place.is_file():
                return place
    raise UsageError(f"no {' or '.join(names)} under {data_dir}: put {benchmark}'s published metadata file "
                     f"there (see `avsearch eval {benchmark} --help`)")


def read_csv(path: Path, fieldnames: Optional[Sequence[str]] = None) -> list[dict]:
    with open(path, newline="", encoding="utf-8-sig") as f:
        return [{k: (v or "").strip() for k, v in row.items() if k is not None}
                for row in csv.DictReader(f, fieldnames=fieldnames)]


def find_media(data_dir: Path, stems: Sequence[str], folders: Sequence[str] = ("",)) -> Optional[str]:
    """The first existing file named <stem>.<ext> (or <stem> itself when it has an extension) in
    one of `folders` under data_dir, as an absolute path."""
    for folder in folders:
        base = data_dir / folder
        for stem in stems:
            candidates = [base / stem] if Path(stem).suffix[1:].lower() in MEDIA_EXTENSIONS else []
            candidates += [base / f"{stem}.{ext}" for ext in MEDIA_EXTENSIONS]
            for c in candidates:
                if c.is_file():
                    return os.path.abspath(c)
    return None


def missing(key: str, data_dir: Path, stems: Sequence[str], folders: Sequence[str]) -> Problem:
    where = ", ".join(f"{f}/" if f else "./" for f in folders)
    return Problem(f"item {key}", f"no media file {stems[0]}.<wav|flac|mp4|...> in {where} under {data_dir}; "
                   "the item is left out")


def caption_directions(benchmark: str, items: list[Item], media_view: View) -> list[Direction]:
    """text→media: every caption a query whose one relevant item is its own; media→text: every
    item a query, the gallery all captions of the found items, any of its own captions relevant."""
    t2m = [EvalQuery(text=c, targets=[Target(it.path)]) for it in items for c in it.captions]
    captions, m2t = [], []
    for it in items:
        ids = [f"caption:{len(captions) + i}" for i in range(len(it.captions))]
        captions += it.captions
        m2t.append(EvalQuery(media=it.path, view=media_view, targets=[Target(i) for i in ids]))
    v = media_view.value
    return [Direction("text", v, t2m, paper=figure(benchmark, f"text→{v}")),
            Direction(v, "text", m2t, captions=captions, paper=figure(benchmark, f"{v}→text"))]
