from avsearch.retriever.merge import cap_per_file, merge_adjacent
from avsearch.types import Hit, View


def hit(path, start, end, score, view=View.AV, cid=None):
    return Hit(path, start, end, view, score, cid or f"{path}-{start}-{view.value}")


def test_adjacent_clips_of_one_file_merge_keeping_best_score():
    hits = [hit("a", 10, 20, 0.9), hit("a", 20, 30, 0.8), hit("b", 0, 10, 0.85), hit("a", 40, 50, 0.7)]
    merged = merge_adjacent(hits)
    assert [(h.path, h.start_s, h.end_s, round(h.score, 2)) for h in merged] == [
        ("a", 10, 30, 0.9), ("b", 0, 10, 0.85), ("a", 40, 50, 0.7)]
    assert merged[0].clip_id == "a-10-av" and merged[0].merged_clip_ids == ("a-10-av", "a-20-av")


def test_different_views_do_not_merge():
    merged = merge_adjacent([hit("a", 0, 10, 0.9, View.AV), hit("a", 10, 20, 0.8, View.AUDIO)])
    assert len(merged) == 2


def test_cap_per_file_keeps_best_first():
    hits = [hit("a", 0, 10, 0.9), hit("a", 30, 40, 0.8), hit("b", 0, 10, 0.7), hit("a", 60, 70, 0.6)]
    assert [(h.path, h.start_s) for h in cap_per_file(hits, 1)] == [("a", 0), ("b", 0)]
    assert cap_per_file(hits, None) == hits
