"""Pure post-processing of ranked hits: merge neighbours, cap hits per file."""

from __future__ import annotations

from collections import defaultdict
from typing import Optional

from avsearch.types import Hit

_TOUCH_S = 0.05  # clips whose gap is below this count as adjacent (float rounding of clip edges)


def merge_adjacent(hits: list[Hit]) -> list[Hit]:
    """Merge hits of one file and view whose time ranges touch or overlap into one hit spanning
    them all; it keeps the best score and clip id. Order by score is preserved."""
    groups: dict[tuple[str, str], list[Hit]] = defaultdict(list)
    for h in hits:
        groups[(h.path, h.view.value)].append(h)
    merged: list[Hit] = []
    for group in groups.values():
        group.sort(key=lambda h: h.start_s)
        run = [group[0]]
        for h in group[1:]:
            if h.start_s <= max(r.end_s for r in run) + _TOUCH_S:
                run.append(h)
            else:
                merged.append(_combine(run))
                run = [h]
        merged.append(_combine(run))
    merged.sort(key=lambda h: -h.score)
    return merged


def _combine(run: list[Hit]) -> Hit:
    best = max(run, key=lambda h: h.score)
    if len(run) == 1:
        return best
    return Hit(
        path=best.path,
        start_s=min(h.start_s for h in run),
        end_s=max(h.end_s for h in run),
        view=best.view,
        score=best.score,
        clip_id=best.clip_id,
        merged_clip_ids=tuple(h.clip_id for h in sorted(run, key=lambda h: h.start_s)),
    )


def cap_per_file(hits: list[Hit], per_file: Optional[int]) -> list[Hit]:
    if not per_file:
        return hits
    seen: dict[str, int] = defaultdict(int)
    out = []
    for h in hits:
        if seen[h.path] < per_file:
            out.append(h)
            seen[h.path] += 1
    return out
