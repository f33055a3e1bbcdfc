"""Ranking metrics of search quality, pure numpy.

A query's result is a *ranked list of gains*: the relevance grade of each returned unit, best
first (0 = not relevant). Each judged target appears at most once in it: a unit that matches a
target already found is dropped by the caller (see runner.py), as `avsearch query` merges the
adjacent clips of one moment into one hit. `ideal` is the grades of all of the query's judged
targets, found or not.

- recall@k: 1 when a relevant unit is in the top k, else 0, averaged over queries. This is the
  WAVE paper's R@k (and clip-retrieval's, CLIP's): the share of queries answered within k. With
  several relevant targets (audio→text: five captions) any one counts.
- MRR: 1 / rank of the first relevant unit (0 when none is in the list), averaged.
- nDCG@10: sum of grade / log2(rank + 1) over the top 10, divided by the same sum for the ideal
  order of the query's judged grades (linear gains, as pytrec_eval and MTEB).

Ties: `rank_by_score` orders units of equal score pessimistically, irrelevant before relevant,
so a model that scores everything alike gets no credit for luck (a constant scorer has
recall@1 = 0 unless every unit is relevant).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

RECALL_KS = (1, 5, 10)
NDCG_K = 10


def rank_by_score(scores: np.ndarray, grades: np.ndarray) -> np.ndarray:
    """The order (indices into `scores`) best first; equal scores put lower grades first."""
    scores = np.asarray(scores, dtype=np.float64)
    grades = np.asarray(grades, dtype=np.float64)
    return np.lexsort((grades, -scores))  # the last key is the primary one


def recall_at_k(gains: Sequence[float], k: int) -> float:
    """1.0 when any of the first k gains is positive, else 0.0."""
    return float(np.any(np.asarray(gains[:k], dtype=np.float64) > 0))


def reciprocal_rank(gains: Sequence[float]) -> float:
    relevant = np.flatnonzero(np.asarray(gains, dtype=np.float64) > 0)
    return 1.0 / (relevant[0] + 1) if len(relevant) else 0.0


def dcg(gains: Sequence[float], k: int) -> float:
    g = np.asarray(gains[:k], dtype=np.float64)
    return float(np.sum(g / np.log2(np.arange(2, len(g) + 2))))


def ndcg_at_k(gains: Sequence[float], ideal: Sequence[float], k: int = NDCG_K) -> float:
    """DCG of the ranking over DCG of the ideal order of `ideal`; 0 when nothing is relevant."""
    best = dcg(sorted((float(x) for x in ideal), reverse=True), k)
    return dcg(gains, k) / best if best > 0 else 0.0


def query_metrics(gains: Sequence[float], ideal: Sequence[float]) -> dict[str, float]:
    """Every metric of one query."""
    out = {f"R@{k}": recall_at_k(gains, k) for k in RECALL_KS}
    out["MRR"] = reciprocal_rank(gains)
    out[f"nDCG@{NDCG_K}"] = ndcg_at_k(gains, ideal, NDCG_K)
    return out


def bootstrap_ci(values: Sequence[float], *, resamples: int = 1000, confidence: float = 0.95,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of per-query values (queries resampled with
    replacement). Seeded, so the same values always give the same interval: two runs differ
    only where their values do. Intervals that overlap mean the difference may be chance."""
    v = np.asarray(values, dtype=np.float64)
    if len(v) == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, len(v), size=(resamples, len(v)))].mean(axis=1)
    tail = (1.0 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def summarise(per_query: Sequence[dict[str, float]], **bootstrap) -> dict[str, dict[str, float]]:
    """{metric: {"mean", "ci_low", "ci_high"}} over queries (an empty dict for no queries)."""
    if not per_query:
        return {}
    out = {}
    for name in per_query[0]:
        values = [q[name] for q in per_query]
        low, high = bootstrap_ci(values, **bootstrap)
        out[name] = {"mean": float(np.mean(values)), "ci_low": low, "ci_high": high}
    return out
