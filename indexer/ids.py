"""Deterministic clip identities.

A clip id hashes (path at embedding time, content fingerprint, view, start in ms), so a re-run
produces the same ids (no duplicates after a crash) and two copies of one file stay distinct.
A moved file keeps its ids. The int64 row id is the FAISS key.
"""

from __future__ import annotations

import hashlib


def clip_id(path: str, fingerprint: str, view: str, start_s: float) -> str:
    key = f"{path}\0{fingerprint}\0{view}\0{round(start_s * 1000)}"
    return hashlib.blake2b(key.encode(), digest_size=12).hexdigest()


def row_id(clip_id_hex: str) -> int:
    # 63 bits: non-negative, and -1 stays free as FAISS's "no result".
    return int(clip_id_hex[:16], 16) & 0x7FFF_FFFF_FFFF_FFFF
