"""Frame sizing shared with the WAVE processor, so decoded frames already have the model's size."""

from __future__ import annotations

from avsearch.sizing import round_to_budget


def smart_resize(height: int, width: int, *, factor: int = 28, min_pixels: int = 784,
                 max_pixels: int = 176_400) -> tuple[int, int]:
    """Qwen2-VL's rule: each side a multiple of `factor`, area within [min_pixels, max_pixels],
    aspect ratio kept as closely as the rounding allows."""
    if height <= 0 or width <= 0:
        raise ValueError(f"frame size must be positive, got {width}x{height}")
    return round_to_budget(height, width, factor, min_pixels, max_pixels)
