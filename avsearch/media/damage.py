"""Damaged stretches of a file that was still decoded: what the indexer records as "partly indexed".

FFmpeg's decoders conceal a corrupt packet and carry on at the next one, and a demuxer that loses
its way ends the file early; either way the clips around the damage may be missing or show wrong
pixels. Where they lie is kept as time ranges and written into the file's `error` text (its status
stays "ok"), so `avsearch failures` and `status` show the file as partly indexed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

PARTLY_INDEXED = "partly indexed"  # the start of the error text of a file indexed despite damage
_JOIN_S = 1.0  # damage this close together is reported as one range


@dataclass(frozen=True)
class Damage:
    start_s: float
    end_s: float
    reason: str  # FFmpeg's words for it


def add_damage(damage: list[Damage], d: Damage) -> None:
    """Append `d`, or stretch the last range over it: a run of bad packets stays one entry."""
    if damage and damage[-1].reason == d.reason and damage[-1].start_s <= d.start_s <= damage[-1].end_s + _JOIN_S:
        last = damage[-1]
        damage[-1] = Damage(last.start_s, max(last.end_s, d.end_s), last.reason)
    else:
        damage.append(d)


def merged(damage: Iterable[Damage]) -> list[Damage]:
    """The ranges in time order, overlapping or nearby ones joined (keeping the first reason)."""
    out: list[Damage] = []
    for d in sorted(damage, key=lambda d: (d.start_s, d.end_s)):
        if out and d.start_s <= out[-1].end_s + _JOIN_S:
            last = out[-1]
            out[-1] = Damage(last.start_s, max(last.end_s, d.end_s), last.reason)
        else:
            out.append(d)
    return out


def damage_text(damage: Iterable[Damage], *, most: int = 5) -> str:
    """'partly indexed: damaged at 1.2–1.6 s, 4.0–6.0 s (Invalid data found when processing input)'."""
    ranges = merged(damage)
    shown = ", ".join(f"{d.start_s:.1f}–{d.end_s:.1f} s" for d in ranges[:most])
    more = f" and {len(ranges) - most} more" if len(ranges) > most else ""
    reasons = sorted({d.reason for d in ranges})
    return f"{PARTLY_INDEXED}: damaged at {shown}{more} ({'; '.join(reasons[:3])})"
