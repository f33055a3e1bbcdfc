"""Pictures and cuts of hits: thumbnails, a contact sheet, exported clips.

Frames come from the media layer; drawing the sheet is plain Pillow.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from avsearch.media import export_range, extract_frame
from avsearch.types import Hit
from avsearch.cli.common import hms

THUMB_SIDE = 320


def _stem(rank: int, hit: Hit) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(hit.path).stem)[:60]
    return f"{rank:02d}_{base}_{int(hit.start_s)}-{int(hit.end_s)}"


def _frame(hit: Hit) -> Image.Image:
    try:
        return Image.fromarray(extract_frame(hit.path, (hit.start_s + hit.end_s) / 2, max_side=THUMB_SIDE))
    except Exception:  # audio-only or unreadable: a grey tile with a note in its caption
        return Image.new("RGB", (THUMB_SIDE, THUMB_SIDE * 9 // 16), (60, 60, 60))


def write_thumbnails(hits: list[Hit], directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for rank, hit in enumerate(hits, 1):
        path = directory / f"{_stem(rank, hit)}.jpg"
        _frame(hit).save(path, quality=90)
        out.append(path)
    return out


def write_contact_sheet(hits: list[Hit], path: Path, *, columns: int = 4) -> Path:
    tile_w, tile_h, caption = THUMB_SIDE, THUMB_SIDE * 9 // 16, 36
    rows = max(1, math.ceil(len(hits) / columns))
    cols = max(1, min(columns, len(hits)))
    sheet = Image.new("RGB", (cols * tile_w, rows * (tile_h + caption)), (20, 20, 20))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for i, hit in enumerate(hits):
        x, y = (i % cols) * tile_w, (i // cols) * (tile_h + caption)
        frame = _frame(hit)
        frame.thumbnail((tile_w, tile_h))
        sheet.paste(frame, (x + (tile_w - frame.width) // 2, y + (tile_h - frame.height) // 2))
        name = os.path.basename(hit.path)
        draw.text((x + 4, y + tile_h + 2), f"{i + 1}. {name[:40]}", fill=(235, 235, 235), font=font)
        draw.text((x + 4, y + tile_h + 18), f"{hms(hit.start_s)}–{hms(hit.end_s)}  {hit.view.value}  {hit.score:.3f}",
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
