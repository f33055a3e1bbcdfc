"""The walking skeleton end to end: index a generated library with the tiny WAVE model, query it
with text, sound, silent video and video+sound (issue #2)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from avsearch import Index, Query, View
from avsearch.errors import IndexNotFoundError, ModelMismatchError, QueryError
from avsearch.media import probe


def test_library_is_indexed_and_the_corrupt_file_recorded(indexed):
    index, lib, report = indexed
    assert sorted(Path(p).name for p in report.indexed) == ["birds.flac", "garden.mp4", "silent.mp4", "speech.wav", "street.mp4"]
    assert [Path(p).name for p, _ in report.failed] == ["corrupt.mp4"]
    assert report.failed[0][1]  # a readable reason
    stats = index.stats()
    assert stats["files_ok"] == 5 and stats["files_failed"] == 1
    # street 12 s -> clips [0,10) [10,12) x 3 views; garden 6 s -> 1 x 3; silent -> 1 video;
    # speech 5 s -> 1 audio; birds 3 s -> 1 audio
    assert stats["clips_by_view"] == {"av": 3, "video": 4, "audio": 5}
    assert [f["path"] for f in index.failures()] == [str(lib / "corrupt.mp4")]


def _assert_hits_are_real(hits, k):
    assert 0 < len(hits) <= k
    for h in hits:
        media = probe(h.path)
        assert 0 <= h.start_s < h.end_s <= media.duration_s + 0.05
        assert h.view in media.views()
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)


def test_text_query_returns_real_time_ranges(indexed):
    index, _, _ = indexed
    _assert_hits_are_real(index.search("anything at all", k=5), 5)


@pytest.mark.parametrize("name,view", [("speech.wav", View.AUDIO), ("silent.mp4", View.VIDEO), ("garden.mp4", View.AV)])
def test_media_queries_of_every_kind(indexed, name, view):
    index, lib, _ = indexed
    hits = index.search(Query(media=lib / name, view=view), k=4, merge_adjacent=False)
    _assert_hits_are_real(hits, 4)


@pytest.mark.parametrize("name,view,start,end", [
    ("street.mp4", View.AV, 0.0, 10.0), ("street.mp4", View.VIDEO, 10.0, None),
    ("speech.wav", View.AUDIO, 0.0, None), ("garden.mp4", View.AUDIO, 0.0, None),
])
def test_a_clips_own_media_ranks_that_clip_first(indexed, name, view, start, end):
    index, lib, _ = indexed
    end = end if end is not None else probe(lib / name).duration_s  # the last clip ends with the file
    q = Query(media=lib / name, view=view, start_s=start, end_s=end, target_views=[view])
    top = index.search(q, k=3, merge_adjacent=False)[0]
    assert (Path(top.path).name, top.start_s, top.end_s, top.view) == (name, start, end, view)
    assert top.score == pytest.approx(1.0, abs=1e-3)


def test_rerunning_index_on_an_unchanged_folder_adds_nothing(indexed):
    index, lib, _ = indexed
    before = index.stats()["clips"]
    report = index.add([lib])
    assert report.indexed == [] and report.clips_added == 0 and report.unchanged == 6
    assert index.stats()["clips"] == before


def test_vectors_in_the_index_are_unit_length_and_match_a_fresh_embedding(indexed, tiny_embedder):
    index, lib, _ = indexed
    from avsearch.media import read_clip

    q = Query(media=lib / "speech.wav", view=View.AUDIO)
    hit = index.search(q, k=1, merge_adjacent=False)[0]
    stored = index.store.vectors([index.store.clip_by_id(hit.clip_id)["row_id"]])[0]
    assert np.linalg.norm(stored) == pytest.approx(1.0, abs=1e-4)
    fresh = tiny_embedder.embed_clips([read_clip(lib / "speech.wav", 0.0, 5.0, video=False)], View.AUDIO)[0]
    assert float(stored @ fresh) == pytest.approx(1.0, abs=1e-4)


def test_opening_a_missing_index_says_how_to_make_one(tmp_path):
    with pytest.raises(IndexNotFoundError, match="avsearch index"):
        Index.open(tmp_path / "nowhere")


def test_another_model_is_refused(indexed, tmp_path):
    from avsearch.models.wave import make_tiny_checkpoint

    index, lib, _ = indexed
    other = make_tiny_checkpoint(tmp_path / "other-tiny", seed=7)
    with pytest.raises(ModelMismatchError, match="built with model"):
        Index.open(index.path, model=str(other)).search("x")


def test_bad_queries_get_clear_errors(indexed, tmp_path):
    index, lib, _ = indexed
    with pytest.raises(QueryError, match="empty"):
        index.search("   ")
    with pytest.raises(QueryError, match="cannot read the query file"):
        index.search(Path(lib / "corrupt.mp4"))
    with pytest.raises(QueryError, match="cannot be read as view"):
        index.search(Query(media=lib / "speech.wav", view=View.VIDEO))
