"""Pictures and cuts of hits: thumbnails, a contact sheet, exported clips.

Frames come from the media layer; drawing the sheet is plain Pillow.
"""

from __future__ import annotations

import math
import os
import re
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, ImageOps

from avsearch.errors import MediaError
from avsearch.media import export_range, range_picture
from avsearch.types import Hit
from avsearch.cli.common import hms

THUMB_SIDE = 320
TILE_SIZE = (THUMB_SIDE, THUMB_SIDE * 9 // 16)
CAPTION_FONTS = ("DejaVuSans.ttf", "LiberationSans-Regular.ttf", "FreeSans.ttf")  # have "–" and "…"


def _stem(rank: int, hit: Hit) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(hit.path).stem)[:60]
    return f"{rank:02d}_{base}_{int(hit.start_s)}-{int(hit.end_s)}"


def _frame(hit: Hit) -> Image.Image:
    """The hit's picture (its middle frame, or its sound drawn for a file without video)."""
    try:
        return Image.fromarray(range_picture(hit.path, hit.start_s, hit.end_s, max_side=THUMB_SIDE))
    except (MediaError, OSError):  # unreadable now (moved, damaged): a plain dark tile
        return Image.new("RGB", TILE_SIZE, (60, 60, 60))


@lru_cache(maxsize=1)
def caption_font(size: int = 12) -> ImageFont.ImageFont:
    """A system font that has the en dash and the ellipsis (Pillow's built-in font has neither),
    else Pillow's own; `fit_text`/`dash` fall back to ASCII where a glyph is missing."""
    for name in CAPTION_FONTS:
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default(size=size)


def has_glyph(font: ImageFont.ImageFont, char: str) -> bool:
    """False when `font` draws `char` as its missing-glyph box (the same mask as a code point no
    font has)."""
    def mask(c: str):
        m = font.getmask(c)
        return m.size, bytes(m)

    return mask(char) != mask("\U0010fffd")


def fit_text(draw: ImageDraw.ImageDraw, text: str, width: float, font: ImageFont.ImageFont) -> str:
    """`text` cut to fit `width` pixels, ending in an ellipsis when cut."""
    if draw.textlength(text, font=font) <= width:
        return text
    ellipsis = "…" if has_glyph(font, "…") else "..."
    low, high = 0, len(text)
    while low < high:  # the longest prefix that fits with the ellipsis
        mid = (low + high + 1) // 2
        if draw.textlength(text[:mid] + ellipsis, font=font) <= width:
            low = mid
        else:
            high = mid - 1
    return text[:low].rstrip() + ellipsis


def time_range(hit: Hit, font: ImageFont.ImageFont) -> str:
    dash = "–" if has_glyph(font, "–") else "-"
    return f"{hms(hit.start_s)}{dash}{hms(hit.end_s)}"


def write_thumbnails(hits: list[Hit], directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for rank, hit in enumerate(hits, 1):
        path = directory / f"{_stem(rank, hit)}.jpg"
        _frame(hit).save(path, quality=90)
        out.append(path)
    return out


def write_contact_sheet(hits: list[Hit], path: Path, *, columns: int = 4) -> Path:
    (tile_w, tile_h), caption = TILE_SIZE, 36
    rows = max(1, math.ceil(len(hits) / columns))
    cols = max(1, min(columns, len(hits)))
    sheet = Image.new("RGB", (cols * tile_w, rows * (tile_h + caption)), (20, 20, 20))
    draw = ImageDraw.Draw(sheet)
    font = caption_font()
    for i, hit in enumerate(hits):
        x, y = (i % cols) * tile_w, (i // cols) * (tile_h + caption)
        frame = _frame(hit)
        frame = ImageOps.contain(frame, (tile_w, tile_h))  # small videos are scaled up to the tile too
        sheet.paste(frame, (x + (tile_w - frame.width) // 2, y + (tile_h - frame.height) // 2))
        name = os.path.basename(hit.path)
        draw.text((x + 4, y + tile_h + 2), fit_text(draw, f"{i + 1}. {name}", tile_w - 8, font),
                  fill=(235, 235, 235), font=font)
        draw.text((x + 4, y + tile_h + 18), f"{time_range(hit, font)}  {hit.view.value}  {hit.score:.3f}",
                  fill=(180, 180, 180), font=font)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path


def export_hits(hits: list[Hit], directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for rank, hit in enumerate(hits, 1):
        suffix = Path(hit.path).suffix or ".mp4"
        out.append(export_range(hit.path, hit.start_s, hit.end_s, directory / f"{_stem(rank, hit)}{suffix}"))
    return out
