"""Plain data objects shared by every layer: views, clips, queries and hits.

Nothing here imports a heavy dependency, so any layer (and any user) can use these types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from avsearch.errors import QueryError, UsageError

SAMPLE_RATE = 16_000
"""Every decoded audio payload is mono float32 at this rate (WAVE's Whisper and BEATs both want it)."""

FRAME_CHOICES = ("bidir", "nonref", "none", "keyframes")
"""Frame-skipping modes of the decoder (DecodeOptions.skip_frames), the first the default; an index
stores its choice (IndexSettings.frames)."""

RESIZE_CHOICES = ("torch", "pil", "swscale")
"""How sampled frames are resized to the model's size (DecodeOptions.resize), the first the default:
"torch" PIL's bicubic through torch's SIMD kernel (at most two levels of 255 from "pil", on under
1% of pixels), "pil" WAVE's reference path exactly, "swscale" FFmpeg's bicubic (fastest, further off);
an index stores its choice (IndexSettings.resize)."""


def check_choice(name: str, value: str, choices: Sequence[str]) -> None:
    """Refuse a setting outside its choices with a message naming both (the CLI prints it as is)."""
    if value not in choices:
        raise UsageError(f"{name} {value!r}: choose one of {', '.join(choices)}")


class View(str, Enum):
    """Which part of a clip an embedding sees."""

    AV = "av"  # frames and sound together
    VIDEO = "video"  # frames only (silent video)
    AUDIO = "audio"  # sound only

    @classmethod
    def parse(cls, value: "str | View") -> "View":
        if isinstance(value, View):
            return value
        try:
            return cls(str(value).lower())
        except ValueError:
            choices = ", ".join(v.value for v in cls)
            raise UsageError(f"unknown view {value!r}; choose one of: {choices}") from None


@dataclass(frozen=True)
class MediaFile:
    """A source file with the facts a probe found. Times are seconds."""

    path: str
    duration_s: float
    has_video: bool
    has_audio: bool
    size: int
    mtime: float
    fps: Optional[float] = None
    width: Optional[int] = None
    height: Optional[int] = None
    rotation: int = 0
    sample_rate: Optional[int] = None
    channels: Optional[int] = None
    video_codec: Optional[str] = None
    audio_codec: Optional[str] = None

    def views(self) -> list[View]:
        """The views a clip of this file can be embedded as."""
        if self.has_video and self.has_audio:
            return [View.AV, View.VIDEO, View.AUDIO]
        if self.has_video:
            return [View.VIDEO]
        if self.has_audio:
            return [View.AUDIO]
        return []


@dataclass
class Clip:
    """A time range [start_s, end_s) of one file with its decoded payload.

    frames: uint8 array (T, H, W, 3) sampled uniformly at `fps` frames per second, or None.
    audio:  float32 mono array at SAMPLE_RATE, or None.
    """

    path: str
    start_s: float
    end_s: float
    frames: Optional[np.ndarray] = None
    fps: float = 2.0
    audio: Optional[np.ndarray] = None
    sample_rate: int = SAMPLE_RATE

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    @property
    def has_video(self) -> bool:
        return self.frames is not None and len(self.frames) > 0

    @property
    def has_audio(self) -> bool:
        return self.audio is not None and len(self.audio) > 0

    def views(self) -> list[View]:
        if self.has_video and self.has_audio:
            return [View.AV, View.VIDEO, View.AUDIO]
        if self.has_video:
            return [View.VIDEO]
        if self.has_audio:
            return [View.AUDIO]
        return []

    def supports(self, view: View) -> bool:
        return view in self.views()


@dataclass
class Query:
    """What to look for.

    Exactly one of `text`, `media`, `clip_id` or `vector` is set. `media` is a file read as `view`
    (default: the richest view the file has), optionally only the range [start_s, end_s).
    `clip_id` asks for "more like this" on a clip already in the index. `vector` is an embedding
    the index's own model produced (e.g. one an application cached from an earlier text query):
    searching with it loads no model. It must have the index's dimension; it is L2-normalised.
    """

    text: Optional[str] = None
    media: Optional[str | Path] = None
    view: Optional[View] = None
    start_s: Optional[float] = None
    end_s: Optional[float] = None
    clip_id: Optional[str] = None
    instruction: Optional[str] = None
    target_views: Optional[Sequence[View]] = None
    path_prefix: Optional[str] = None
    path_glob: Optional[str] = None
    min_duration_s: Optional[float] = None
    max_duration_s: Optional[float] = None
    indexed_after: Optional[float] = None  # unix seconds
    vector: Optional[np.ndarray] = None  # (dim,) float, from the index's model

    def __post_init__(self) -> None:
        given = [x is not None for x in (self.text, self.media, self.clip_id, self.vector)]
        if sum(given) != 1:
            raise QueryError("a Query needs exactly one of text, media, clip_id or vector")
        self._check_ranges()
        if self.vector is not None:
            self.vector = np.asarray(self.vector, dtype=np.float32)
            if self.vector.ndim != 1 or not np.isfinite(self.vector).all() or not self.vector.any():
                raise QueryError("a query vector is one non-zero, finite embedding of shape (dim,): pass a single "
                                 "row of what the index's model returned")
        if self.view is not None:
            self.view = View.parse(self.view)
        if self.target_views is not None:
            self.target_views = [View.parse(v) for v in self.target_views]

    def _check_ranges(self) -> None:
        """Ranges that can select nothing are refused here, before any model loads."""
        if (self.start_s is not None or self.end_s is not None) and self.media is None:
            raise QueryError("start_s/end_s (--start/--end) pick a range of a query file; give one "
                             "(--audio/--video/--av FILE) or drop them")
        if self.start_s is not None and self.start_s < 0:
            raise QueryError(f"the query range starts at {self.start_s:g} s; give a start of 0 or more")
        if self.start_s is not None and self.end_s is not None and self.end_s <= self.start_s:
            raise QueryError(f"the query range {self.start_s:g}-{self.end_s:g} s is empty; give an end after the start")
        if self.end_s is not None and self.end_s <= 0:
            raise QueryError(f"the query range ends at {self.end_s:g} s; give an end after 0")
        if (self.min_duration_s is not None and self.max_duration_s is not None
                and self.min_duration_s > self.max_duration_s):
            raise QueryError(f"min_duration_s {self.min_duration_s:g} is above max_duration_s "
                             f"{self.max_duration_s:g}: no file can match; swap or drop one")

    @classmethod
    def from_vector(cls, vector: np.ndarray, **fields) -> "Query":
        """A query by an embedding of the index's model, with any other Query field (filters,
        target_views, instruction): `Index.search(Query.from_vector(v, path_prefix="/films"))`."""
        return cls(vector=vector, **fields)


def _media_query(cls, path: str | Path, *, view: "Optional[str | View]" = None, start: Optional[float] = None,
                 end: Optional[float] = None, **fields) -> Query:
    """A query by a media file, read as `view` (default: the richest view the file has),
    optionally only [start, end) seconds of it, with any other Query field (filters,
    instruction). Use it rather than a bare string, which `Index.search` reads as text:
    `index.search(Query.media("bark.wav", view="audio", start=2, end=6))`."""
    return cls(media=Path(path), view=view, start_s=start, end_s=end, **fields)


# Attached after the dataclass is made, because `media` is also a field: on an instance the
# field's value (set in __init__) wins, so `q.media` is the path and `Query.media(...)` builds one.
Query.media = classmethod(_media_query)


@dataclass(frozen=True)
class Hit:
    """One search result: a time range of a file, the view that matched and its score."""

    path: str
    start_s: float
    end_s: float
    view: View
    score: float
    clip_id: str
    merged_clip_ids: tuple[str, ...] = field(default_factory=tuple)
    # Other paths of the same content (copies, hard links, symlinks): indexed once, under `path`.
    duplicate_paths: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "start_s": round(self.start_s, 3),
            "end_s": round(self.end_s, 3),
            "view": self.view.value,
            "score": round(float(self.score), 6),
            "clip_id": self.clip_id,
            "merged_clip_ids": list(self.merged_clip_ids),
            "duplicate_paths": list(self.duplicate_paths),
        }
