"""The metric functions of `avsearch eval` against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from avsearch.evaluation.judgements import Target
from avsearch.evaluation.metrics import (bootstrap_ci, ndcg_at_k, query_metrics, rank_by_score, recall_at_k,
                                         reciprocal_rank, summarise)
from avsearch.evaluation.runner import gains_of


def test_first_relevant_at_rank_three():
    gains = [0, 0, 1, 0, 0, 0]
    m = query_metrics(gains, [1])
    assert m["R@1"] == 0.0 and m["R@5"] == 1.0 and m["R@10"] == 1.0
    assert m["MRR"] == pytest.approx(1 / 3)
    assert m["nDCG@10"] == pytest.approx(1 / math.log2(4))  # DCG 1/log2(3+1), ideal 1/log2(2) = 1


def test_no_relevant_hit_scores_zero_everywhere():
    m = query_metrics([0] * 20, [2, 1])
    assert m == {"R@1": 0.0, "R@5": 0.0, "R@10": 0.0, "MRR": 0.0, "nDCG@10": 0.0}


def test_relevant_hit_past_rank_ten_counts_only_for_mrr():
    gains = [0] * 11 + [1]
    assert recall_at_k(gains, 10) == 0.0
    assert reciprocal_rank(gains) == pytest.approx(1 / 12)
    assert ndcg_at_k(gains, [1]) == 0.0


def test_several_relevant_hits_recall_is_any_hit():
    # Two relevant targets, found at ranks 2 and 4: recall@k asks whether *a* relevant one is in the top k.
    gains = [0, 1, 0, 1]
    m = query_metrics(gains, [1, 1])
    assert m["R@1"] == 0.0 and m["R@5"] == 1.0
    assert m["MRR"] == pytest.approx(0.5)
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    ideal = 1 / math.log2(2) + 1 / math.log2(3)
    assert m["nDCG@10"] == pytest.approx(dcg / ideal)


def test_graded_relevance_rewards_the_better_target_first():
    # grades 3 and 1: found in the wrong order, then in the right one; a third judged target (grade 2) never found.
    ideal = [3, 1, 2]
    best = 3 / math.log2(2) + 2 / math.log2(3) + 1 / math.log2(4)
    wrong = ndcg_at_k([1, 3], ideal)
    right = ndcg_at_k([3, 1], ideal)
    assert wrong == pytest.approx((1 + 3 / math.log2(3)) / best)
    assert right == pytest.approx((3 + 1 / math.log2(3)) / best)
    assert right > wrong


def test_ties_rank_irrelevant_units_first():
    scores = np.array([0.5, 0.5, 0.5, 0.2])
    grades = np.array([1.0, 0.0, 0.0, 0.0])
    order = rank_by_score(scores, grades)
    assert list(order[:3]) in ([1, 2, 0], [2, 1, 0])  # the relevant unit last among the tied three
    assert order[3] == 3
    gains = grades[order]
    assert reciprocal_rank(gains) == pytest.approx(1 / 3)  # a constant scorer gets no lucky first place


def test_gains_drop_later_clips_of_a_target_already_found():
    targets = [Target("a.mp4", 10.0, 20.0, grade=2.0), Target("b.mp4", grade=1.0)]
    ranked = [("a.mp4", 12.0, 14.0),   # overlaps the judged range: gain 2
              ("a.mp4", 14.0, 16.0),   # the same moment again: dropped
              ("a.mp4", 30.0, 40.0),   # a.mp4 outside the range: not relevant
              ("c.mp4", 0.0, 5.0),     # another file
              ("b.mp4", 50.0, 60.0)]   # b.mp4 judged whole: any range counts
    assert gains_of(ranked, targets) == [2.0, 0.0, 0.0, 1.0]


def test_touching_ranges_do_not_overlap():
    t = Target("a.mp4", 10.0, 20.0)
    assert not t.covers("a.mp4", 20.0, 30.0) and not t.covers("a.mp4", 0.0, 10.0)
    assert t.covers("a.mp4", 19.9, 30.0)


def test_bootstrap_is_seeded_and_brackets_the_mean():
    values = [1, 0, 1, 1, 0, 1, 0, 1, 1, 1]
    low, high = bootstrap_ci(values, seed=3)
    assert (low, high) == bootstrap_ci(values, seed=3)
    assert low < 0.7 < high and 0.0 <= low and high <= 1.0
    assert bootstrap_ci([1, 1, 1]) == (1.0, 1.0)  # no spread, no interval


def test_summarise_means_per_metric():
    s = summarise([query_metrics([1], [1]), query_metrics([0, 1], [1])])
    assert s["R@1"]["mean"] == pytest.approx(0.5)
    assert s["MRR"]["mean"] == pytest.approx(0.75)
