"""Batches of rows: grouping under a token budget, and left padding.

Rows are LEFT-padded (D:460, D:603) so the pooled position -1 is every row's real last token,
and the attention mask keeps real tokens from ever seeing a pad; a row's vector therefore does
not depend on its neighbours.
"""

from __future__ import annotations

from typing import Sequence

import torch


def group_by_budget(lengths: Sequence[int], budget: int) -> list[list[int]]:
    """Indices grouped so that (rows in group) x (longest row) <= budget; a longer row goes alone.

    Rows are sorted longest first so that rows of similar length share a batch (less padding).
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    groups: list[list[int]] = []
    current: list[int] = []
    for i in order:
        longest = lengths[current[0]] if current else lengths[i]
        if current and (len(current) + 1) * longest > budget:
            groups.append(current)
            current = []
        current.append(i)
    if current:
        groups.append(current)
    return groups


def left_pad(rows: Sequence[Sequence[int]], positions: Sequence[torch.Tensor], pad_id: int):
    """(ids (B, L), attention mask (B, L), positions (3, B, L)) with pads on the left.

    Pads get position 1, as the reference's get_rope_index gives them; they are masked anyway.
    """
    length = max(len(r) for r in rows)
    ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), length), dtype=torch.long)
    pos = torch.ones((3, len(rows), length), dtype=torch.long)
    for i, (row, p) in enumerate(zip(rows, positions)):
        n = len(row)
        ids[i, length - n:] = torch.tensor(row, dtype=torch.long)
        mask[i, length - n:] = 1
        pos[:, i, length - n:] = p
    return ids, mask, pos
