"""Qwen2-VL's frame sizing rule, with no dependencies: the media layer sizes decoded frames with it
and the WAVE processor sizes model inputs with it, so frames arrive already at the model's size."""

from __future__ import annotations

import math


def round_to_budget(height: int, width: int, factor: int, min_pixels: int, max_pixels: int) -> tuple[int, int]:
    """Each side a multiple of `factor`, area within [min_pixels, max_pixels], aspect ratio kept as
    closely as the rounding allows. Sides must be positive (callers check)."""
    h = max(factor, round(height / factor) * factor)
    w = max(factor, round(width / factor) * factor)
    if h * w > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h = max(factor, math.floor(height / beta / factor) * factor)
        w = max(factor, math.floor(width / beta / factor) * factor)
    elif h * w < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h = math.ceil(height * beta / factor) * factor
        w = math.ceil(width * beta / factor) * factor
    return h, w
