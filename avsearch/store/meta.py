"""The index's identity card, `avsearch.json`: which model made its vectors and how clips are cut.

It is written once when the index is created. Opening the index with another model is refused,
because vectors of two models do not share a space.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from avsearch.errors import IndexDamagedError, IndexNotFoundError
from avsearch.locations import IndexLocation, IndexURI
from avsearch.types import FRAME_CHOICES, RESIZE_CHOICES, check_choice
from avsearch.store.schema import FORMAT_VERSION

META_NAME = "avsearch.json"


@dataclass
class IndexSettings:
    """How files are cut and decoded; fixed for the life of an index so clips stay comparable."""

    clip_s: float = 10.0
    min_last_s: float = 1.0
    fps: float = 2.0
    max_pixels: int = 176_400
    views: tuple[str, ...] = ("av", "video", "audio")
    # Which decoded frames may answer a sample instant (DecodeOptions.skip_frames): "bidir" I/P
    # frames, "nonref" also referenced B-frames, "none" every frame, "keyframes" one per GOP (the
    # coarse, several-times-faster pass). Indexes made before this setting existed used "nonref".
    frames: str = FRAME_CHOICES[0]
    # How sampled frames are resized (DecodeOptions.resize): "torch" PIL's bicubic through torch's
    # kernel, "pil" WAVE's reference exactly, "swscale" FFmpeg's. Older indexes used "pil".
    resize: str = RESIZE_CHOICES[0]
    # Each codec decoded its own way (DecodeOptions.by_codec: intra-only codecs decode only the
    # sampled packets, HEVC skips non-reference frames, interlaced frames are sampled one field at
    # a time). Indexes made before it existed keep the one way for all (False), so the files
    # added later are decoded as their first ones were.
    by_codec: bool = True

    def __post_init__(self) -> None:
        check_choice("frames", self.frames, FRAME_CHOICES)
        check_choice("resize", self.resize, RESIZE_CHOICES)

    @classmethod
    def from_dict(cls, d: dict) -> "IndexSettings":
        known = {"frames": "nonref", "resize": "pil", "by_codec": False} | {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        if "views" in known:
            known["views"] = tuple(known["views"])
        return cls(**known)


@dataclass
class IndexMeta:
    model_id: str
    model_source: str
    dim: int
    settings: IndexSettings = field(default_factory=IndexSettings)
    created_at: float = field(default_factory=time.time)
    format_version: int = FORMAT_VERSION
    # Include/exclude glob patterns later runs apply ({"include": [...], "exclude": [...]});
    # absent in indexes made before they existed (= none). Older avsearch ignores the key.
    patterns: dict = field(default_factory=dict)

    def save(self, directory: IndexLocation) -> None:
        data = asdict(self)
        data["settings"]["views"] = list(self.settings.views)
        if isinstance(directory, IndexURI):  # one PUT: readers see the old or the new file whole
            from avsearch import objstore

            objstore.write_text(f"{directory.uri}/{META_NAME}", json.dumps(data, indent=2))
            return
        tmp = Path(directory) / (META_NAME + ".tmp")
        tmp.write_text(json.dumps(data, indent=2))
        os.replace(tmp, Path(directory) / META_NAME)

    @classmethod
    def load(cls, directory: IndexLocation) -> "IndexMeta":
        text = _read(directory)
        if text is None:
            raise IndexNotFoundError(
                f"no avsearch index at {directory} (no {META_NAME}); create one with "
                f"`avsearch index FOLDER --index {directory}`, or point --index / AVSEARCH_INDEX at an existing one"
            )
        try:
            data = json.loads(text)
        except (OSError, ValueError) as err:
            raise IndexDamagedError(
                f"the index's {META_NAME} at {directory} cannot be read ({err}); restore it from a backup, "
                "or index again into a new directory") from err
        if data.get("format_version", 0) > FORMAT_VERSION:
            raise IndexNotFoundError(
                f"the index at {directory} was written by a newer avsearch (format "
                f"{data['format_version']}); upgrade avsearch to read it"
            )
        data["settings"] = IndexSettings.from_dict(data.get("settings", {}))
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def _read(directory: IndexLocation):
    """The text of the index's avsearch.json, or None when it has none."""
    if isinstance(directory, IndexURI):
        from avsearch import objstore

        return objstore.read_text(f"{directory.uri}/{META_NAME}")
    path = Path(directory) / META_NAME
    if not path.is_file():
        return None
    try:
        return path.read_text()
    except OSError as err:
        raise IndexDamagedError(
            f"the index's {META_NAME} at {directory} cannot be read ({err}); restore it from a backup, "
            "or index again into a new directory") from err
