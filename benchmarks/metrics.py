"""Retrieval metrics for the benchmarks, pure numpy.

`recall_at_k` is the plain id-overlap recall against an exact top-k. `tie_aware_recall_at_k` counts a
returned id as correct when its exact score reaches the k-th exact score (within `atol`), so an index
that returns a different member of a tie at the k-th place is not penalised.
"""

from __future__ import annotations

import numpy as np


def recall_at_k(found_ids: np.ndarray, true_ids: np.ndarray, k: int) -> float:
    """Mean over queries of |found[:k] ∩ true[:k]| / k (ids < 0 are padding and never match)."""
    found = np.asarray(found_ids)[:, :k]
    true = np.asarray(true_ids)[:, :k]
    if found.shape[0] != true.shape[0]:
        raise ValueError("found_ids and true_ids must have one row per query")
    hits = 0
    for f, t in zip(found, true):
        t = t[t >= 0]
        f = np.unique(f[f >= 0])
        hits += np.isin(f, t, assume_unique=False).sum()
    return float(hits) / (k * found.shape[0])


def tie_aware_recall_at_k(found_exact_scores: np.ndarray, found_ids: np.ndarray, true_scores: np.ndarray,
                          k: int, atol: float = 1e-5) -> float:
    """Mean over queries of (#distinct returned ids whose exact score >= k-th true score - atol) / k.

    found_exact_scores: (q, >=k) exact inner products of the returned ids (recomputed, not the
    index's approximate scores); found_ids: the returned ids (-1 = padding); true_scores: (q, >=k)
    exact top scores sorted best first."""
    scores = np.asarray(found_exact_scores, dtype=np.float64)[:, :k]
    ids = np.asarray(found_ids)[:, :k]
    kth = np.asarray(true_scores, dtype=np.float64)[:, k - 1]
    total = 0
    for s, i, t in zip(scores, ids, kth):
        valid = i >= 0
        _, first = np.unique(i[valid], return_index=True)  # a duplicated id counts once
        s = s[valid][first]
        total += min(k, int((s >= t - atol).sum()))
    return float(total) / (k * scores.shape[0])


def percentiles_ms(latencies_s, qs=(50, 99)) -> dict:
    lat = np.asarray(latencies_s, dtype=np.float64) * 1e3
    return {f"p{q}_ms": float(np.percentile(lat, q)) for q in qs}
