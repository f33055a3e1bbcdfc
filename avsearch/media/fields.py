"""Interlaced frames (DV, MPEG-2 and others from tape) as one field, so a sample shows one instant.

An interlaced frame holds two fields taken 1/50 or 1/60 s apart, on alternate lines. Scaled down as
a whole, anything that moved between them shows twice, combed or ghosted. A sample keeps one field
(the first in time when the stream says which, else the top one) and is then resized from its lines
like any frame: field-consistent sampling, not deinterlacing. At WAVE's pixel budget (420² here,
e.g. 476x364 for PAL's 720x576) a field's 288 or 240 lines lose little against a motion-adaptive
deinterlacer (bwdif, yadif), which would need the neighbouring frames decoded, and intra-only
sources (DV) decode only the sampled frames.
"""

from __future__ import annotations

import numpy as np

# AVFieldOrder, by the field displayed first: 2 TT and 5 BT top, 3 BB and 4 TB bottom.
_BOTTOM_FIRST = frozenset({3, 4})


def first_field(rgb: np.ndarray, field_order: int = 0) -> np.ndarray:
    """The lines (H, W, 3) of the field shown first: even lines (top) unless `field_order`
    (the codec context's AVFieldOrder, 0 when unknown) says bottom first. A view, no copy."""
    return rgb[1::2] if field_order in _BOTTOM_FIRST else rgb[0::2]
