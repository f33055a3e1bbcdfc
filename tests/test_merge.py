import itertools

import numpy as np

from avsearch.media import DecodeOptions
from avsearch.retriever.merge import cap_per_file, merge_adjacent
from avsearch.retriever.search import SearchOptions, search
from avsearch.store import FileCommit, IndexMeta, Store
from avsearch.types import Hit, Query, View


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


def _unit(x):
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def _near(q, cos, rng):
    e = rng.standard_normal((len(cos), len(q)))
    e = _unit(e - (e @ q)[:, None] * q)
    return _unit(cos[:, None] * q + np.sqrt(1 - cos[:, None] ** 2) * e)


_ROW_IDS = itertools.count(1)


def _commit(store, path, starts, vectors):
    rows = [{"clip_id": f"{path}-{s}", "row_id": next(_ROW_IDS), "fingerprint": path, "path": path, "start_s": float(s),
             "end_s": float(s + 1), "view": "av", "file_duration_s": 1000.0, "indexed_at": 0.0, "model_id": "m"}
            for s in starts]
    file_row = {"path": path, "fingerprint": path, "size": 1, "mtime": 0.0, "status": "ok", "n_clips": len(starts)}
    store.commit([FileCommit(file_row, rows, vectors)])


def test_merging_asks_for_more_candidates_until_k_hits_are_left(tmp_path):
    """A long, self-similar video fuses its consecutive clips into one hit: its 200 clips are the
    200 best candidates, so a fixed 4 x k over-fetch returned one hit for k=10."""
    dim, rng = 32, np.random.default_rng(0)
    q = _unit(rng.standard_normal(dim))
    store = Store.create(tmp_path / "idx", IndexMeta("m", "m", dim))
    _commit(store, "/m/long.mp4", range(200), _near(q, np.linspace(0.97, 0.9, 200), rng))
    for f in range(30):  # other files: three clips each, far apart in time, less like the query
        _commit(store, f"/m/other{f}.mp4", (0, 100, 200), _near(q, rng.uniform(0.5, 0.85, 3), rng))
    store.finish_writes()

    def run(**options):
        return search(Query(vector=q), store, lambda: None, SearchOptions(k=10, **options), DecodeOptions()).hits

    hits = run()
    assert len(hits) == 10
    assert hits[0].path == "/m/long.mp4" and (hits[0].start_s, hits[0].end_s) == (0.0, 200.0)
    assert len({(h.path, h.start_s) for h in hits}) == 10
    # the nine others are the best of the other files' clips, in order
    others = sorted((h for h in _all_hits(store, q) if h.path != "/m/long.mp4"), key=lambda h: -h.score)[:9]
    assert [(h.path, h.start_s) for h in hits[1:]] == [(h.path, h.start_s) for h in others]
    per_file = run(merge_adjacent=False, per_file=1)
    assert len(per_file) == 10 and len({h.path for h in per_file}) == 10


def _all_hits(store, q):
    return search(Query(vector=q), store, lambda: None, SearchOptions(k=10_000, merge_adjacent=False),
                  DecodeOptions()).hits
