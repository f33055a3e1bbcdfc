"""Frame sizing shared with the WAVE processor, so decoded frames already have the model's size."""

from __future__ import annotations

import math


def smart_resize(height: int, width: int, *, factor: int = 28, min_pixels: int = 784,
                 max_pixels: int = 176_400) -> tuple[int, int]:
    """Qwen2-VL's rule: each side a multiple of `factor`, area within [min_pixels, max_pixels],
    aspect ratio kept as closely as the rounding allows."""
    if height <= 0 or width <= 0:
        raise ValueError(f"frame size must be positive, got {width}x{height}")
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
