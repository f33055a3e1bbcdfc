"""Finding row ids in a sorted id array: the one binary-search step the store's lookups share
(re-scoring rows, served ids, metadata and vectors by row id, row addresses)."""

from __future__ import annotations

import numpy as np


def find_sorted(sorted_ids: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(positions, found): where each of `ids` sits in the ascending `sorted_ids`, and whether it is
    there at all. Positions of ids not found are in range but meaningless; use them under `found`."""
    ids = np.asarray(ids, dtype=np.int64)
    if not len(sorted_ids):
        return np.zeros(len(ids), np.int64), np.zeros(len(ids), bool)
    at = np.minimum(np.searchsorted(sorted_ids, ids), len(sorted_ids) - 1)
    return at, sorted_ids[at] == ids
