"""Pure clip planning: cut a duration into [start, end) ranges. No media needed to test it."""

from __future__ import annotations

import math


def plan_clips(duration_s: float, *, clip_s: float = 10.0, min_last_s: float = 1.0) -> list[tuple[float, float]]:
    """Fixed-length [start, end) ranges covering [0, duration_s).

    The last short piece is kept when it is at least `min_last_s` long, else merged into the
    clip before it. A file shorter than `min_last_s` (but not empty) is one clip.
    """
    if not (isinstance(duration_s, (int, float)) and math.isfinite(duration_s)) or duration_s <= 0:
        raise ValueError(f"duration_s must be a positive number of seconds, got {duration_s!r}")
    if not clip_s > 0:
        raise ValueError(f"clip_s must be positive, got {clip_s!r}")
    if not 0 <= min_last_s <= clip_s:
        raise ValueError(f"min_last_s must be within [0, clip_s={clip_s}], got {min_last_s!r}")
    ranges: list[tuple[float, float]] = []
    start = 0.0
    while start < duration_s - 1e-9:
        end = min(start + clip_s, duration_s)
        ranges.append((round(start, 6), round(end, 6)))
        start = end
    if len(ranges) > 1 and ranges[-1][1] - ranges[-1][0] < min_last_s:
        last = ranges.pop()
        ranges[-1] = (ranges[-1][0], last[1])
    return ranges
