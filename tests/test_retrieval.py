"""Retrieval features (issue #5): filters, more-like-this, ranges, merging, min score,
instruction re-rank with its cache, and the ANN index kept in step with the table."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from avsearch import Query, View
from avsearch.store import AnnConfig, FileCommit, IndexMeta, Store
from avsearch.store.ann import CODES, AnnIndex
from avsearch.store.store import ANN_DIR


def test_filters_keep_k_results_when_selective(indexed):
    index, lib, _ = indexed
    hits = index.search("x", k=3, path_glob="*street.mp4", merge_adjacent=False)
    assert len(hits) == 3 and {Path(h.path).name for h in hits} == {"street.mp4"}
    audio = index.search("x", k=20, target_views=["audio"], merge_adjacent=False)
    assert len(audio) == 5 and {h.view for h in audio} == {View.AUDIO}
    short = index.search("x", k=20, max_duration_s=4.5, merge_adjacent=False)
    assert {Path(h.path).name for h in short} == {"silent.mp4", "birds.flac"}
    assert index.search("x", k=20, path_prefix=str(lib / "nothing-here")) == []
    assert index.search("x", k=20, indexed_after=time.time() + 3600) == []
    assert len(index.search("x", k=20, indexed_after=0, merge_adjacent=False)) == 12


def test_more_like_this_excludes_the_clip_itself(indexed):
    index, lib, _ = indexed
    seed = index.search(Query(media=lib / "street.mp4", view=View.AV, start_s=0, end_s=10), k=1, merge_adjacent=False)[0]
    hits = index.search(Query(clip_id=seed.clip_id), k=5, merge_adjacent=False)
    assert hits and seed.clip_id not in {h.clip_id for h in hits}


def test_adjacent_clips_merge_into_one_hit(indexed):
    index, lib, _ = indexed
    hits = index.search("x", k=20, path_glob="*street.mp4", target_views=["av"], merge_adjacent=True)
    from avsearch.media import probe

    assert [(h.start_s, h.end_s) for h in hits] == [(0.0, probe(lib / "street.mp4").duration_s)]
    assert len(hits[0].merged_clip_ids) == 2


def test_min_score_drops_weak_hits_and_per_file_caps(indexed):
    index, _, _ = indexed
    all_hits = index.search("x", k=20, merge_adjacent=False)
    cut = (all_hits[0].score + all_hits[-1].score) / 2
    kept = index.search("x", k=20, merge_adjacent=False, min_score=cut)
    assert 0 < len(kept) < len(all_hits) and all(h.score >= cut for h in kept)
    assert index.search("x", k=20, min_score=1.01) == []
    per_file = index.search("x", k=20, merge_adjacent=False, per_file=1)
    assert len({h.path for h in per_file}) == len(per_file) == 5


def test_instruction_rerank_changes_scores_and_hits_the_cache(indexed):
    index, _, _ = indexed
    plain = index.search_detailed("x", k=6, merge_adjacent=False)
    first = index.search_detailed("x", k=6, merge_adjacent=False, instruction="Is there a dog?", rerank_top=6)
    assert first.rerank.embedded == 6 and first.rerank.cached == 0
    assert [h.score for h in first.hits] != [h.score for h in plain.hits]
    again = index.search_detailed("x", k=6, merge_adjacent=False, instruction="Is there a dog?", rerank_top=6)
    assert again.rerank.cached == 6 and again.rerank.embedded == 0
    assert [(h.clip_id, h.score) for h in again.hits] == [(h.clip_id, h.score) for h in first.hits]
    other = index.search_detailed("x", k=6, merge_adjacent=False, instruction="Is it raining?", rerank_top=6)
    assert other.rerank.embedded == 6  # the cache is keyed by instruction too


def _random_store(path: Path, n: int, dim: int, config: AnnConfig, seed: int = 0):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((16, dim)).astype(np.float32)
    vecs = centers[rng.integers(0, 16, n)] + 0.3 * rng.standard_normal((n, dim)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    store = Store.create(path, IndexMeta("m", "m", dim), ann_config=config)
    rows = [{"clip_id": f"c{i}", "row_id": i + 1, "fingerprint": "f", "path": "/x.mp4", "start_s": float(i),
             "end_s": float(i + 1), "view": "av", "file_duration_s": float(n), "indexed_at": 0.0, "model_id": "m"}
            for i in range(n)]
    file_row = {"path": "/x.mp4", "fingerprint": "f", "size": 1, "mtime": 0.0, "status": "ok", "n_clips": n}
    store.commit([FileCommit(file_row, rows, vecs)])
    return store, vecs


@pytest.mark.parametrize("codes", CODES)
def test_ivf_through_the_store_recalls_the_exact_neighbours_and_reloads(tmp_path, codes):
    # 64-d vectors whose noise is isotropic: the 32-d PQ codes rank candidates coarsely, so 20x k
    # candidates are re-scored (10x recalls 0.88 here).
    config = AnnConfig(flat_threshold=1000, codes=codes, opq_dim=32, pq_m=8, refine_factor=20)
    store, vecs = _random_store(tmp_path / "s", 3000, 64, config)
    store.finish_writes()
    assert store.ann_state()["kind"] == "ivf" and store.ann_state()["fresh"]
    assert Store.open(tmp_path / "s").ensure_ann(save=False).config.codes == codes  # saved, loaded as saved
    queries = vecs[:50] + 0.05 * np.random.default_rng(1).standard_normal((50, 64)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    _, got = store.search(queries, 10)
    exact = np.argsort(-(queries @ vecs.T), axis=1)[:, :10] + 1
    recall = np.mean([len(set(g) & set(e)) / 10 for g, e in zip(got, exact)])
    assert recall >= 0.95


def test_ivf_pq_probes_the_lists_that_hold_the_neighbours_even_with_more_topics_than_code_dims():
    """300 topics (clusters) in 128-d plus a shared low-rank part, codes in a 16-d rotated space.
    refine_factor=100 re-scores every vector of the probed lists, so recall here measures only
    whether the probed lists hold the true neighbours. Lists are chosen in the full space: 0.99;
    with lists chosen in the 16-d code space (layout 1) this test measured 0.39."""
    rng = np.random.default_rng(3)
    n, dim, topics, rank = 12_000, 128, 300, 8
    centers = rng.standard_normal((topics, dim)).astype(np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    basis = rng.standard_normal((rank, dim)).astype(np.float32) / np.sqrt(dim)

    def sample(k):
        low = rng.standard_normal((k, rank)).astype(np.float32) @ basis * (0.7 / np.sqrt(rank))
        noise = 0.3 / np.sqrt(dim) * rng.standard_normal((k, dim)).astype(np.float32)
        x = centers[rng.integers(0, topics, k)] + low + noise
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    vecs, queries = sample(n), sample(100)
    ann = AnnIndex.build(vecs, np.arange(n), AnnConfig(flat_threshold=1000, codes="pq", opq_dim=16, pq_m=4,
                                                                refine_factor=100))
    assert ann.kind == "ivf" and np.array_equal(ann.ids, np.arange(n))
    _, got = ann.search(queries, 10, fetch_vectors=lambda ids: vecs[ids])
    exact = np.argsort(-(queries @ vecs.T), axis=1)[:, :10]
    recall = np.mean([len(set(g) & set(e)) / 10 for g, e in zip(got, exact)])
    assert recall >= 0.95, recall


def test_an_ann_index_of_another_layout_is_rebuilt_not_misread(tmp_path):
    config = AnnConfig(flat_threshold=1000, opq_dim=32, pq_m=8)
    store, vecs = _random_store(tmp_path / "s", 3000, 64, config)
    store.finish_writes()
    meta_path = tmp_path / "s" / ANN_DIR / "ann.json"
    meta = json.loads(meta_path.read_text())
    meta["layout"] = 1
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="run `avsearch reindex`"):
        AnnIndex.load(tmp_path / "s" / ANN_DIR)
    reader = Store.open(tmp_path / "s")
    _, ids = reader.search(vecs[:1], 1)
    assert ids[0, 0] == 1  # rebuilt from the table and served (a reader does not write it back)
    Store.open(tmp_path / "s").finish_writes()  # the next indexing run saves it
    assert AnnIndex.load(tmp_path / "s" / ANN_DIR)[0].ntotal == 3000


def test_a_stale_ann_index_is_detected_and_never_served(tmp_path):
    store, vecs = _random_store(tmp_path / "s", 200, 16, AnnConfig())
    store.finish_writes()
    covers = store.ann_state()["covers_version"]
    # change the table behind the saved ANN index (as another process would)
    new = np.zeros((1, 16), np.float32)
    new[0, 0] = 1.0
    row = {"clip_id": "fresh", "row_id": 999_999, "fingerprint": "g", "path": "/y.mp4", "start_s": 0.0,
           "end_s": 1.0, "view": "audio", "file_duration_s": 1.0, "indexed_at": 0.0, "model_id": "m"}
    store.commit([FileCommit({"path": "/y.mp4", "fingerprint": "g", "size": 1, "mtime": 0.0, "status": "ok",
                              "n_clips": 1}, [row], new)])
    reader = Store.open(tmp_path / "s")
    assert reader.ann_state()["fresh"] is False and reader.ann_state()["covers_version"] == covers
    _, ids = reader.search(new, 1)
    assert ids[0, 0] == 999_999  # the new clip is found: the stale index was updated first


def test_the_gpu_list_chooser_branch_gives_the_cpu_results(monkeypatch, tmp_path):
    """No CUDA here, so faiss-gpu cannot run. A stand-in with faiss-gpu's names (exact float32, on
    the CPU) exercises avsearch's GPU branch instead: built once from the coarse centroids, asking
    for float16, used for every list choice, never saved. Its results must be the CPU path's. What
    this cannot show: the real GPU index, whose float16 centroids may pick slightly other lists."""
    import faiss

    built, searched = [], []

    class StandInGpuFlatIP(faiss.IndexFlatIP):
        def __init__(self, resources, dim, config):
            super().__init__(dim)
            built.append(config.useFloat16)

        def search(self, x, k, **kwargs):
            searched.append(len(x))
            return super().search(x, k, **kwargs)

    class StandInConfig:
        useFloat16 = False

    rng = np.random.default_rng(5)
    vecs = rng.standard_normal((1500, 16)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    queries = vecs[:20] + 0.05 * rng.standard_normal((20, 16)).astype(np.float32)
    config = AnnConfig(flat_threshold=1000, opq_dim=8, pq_m=4)
    cpu = AnnIndex.build(vecs, np.arange(1500), AnnConfig(**{**config.__dict__, "use_gpu": False}))
    want = cpu.search(queries, 10, fetch_vectors=lambda ids: vecs[ids])

    monkeypatch.setattr(faiss, "StandardGpuResources", object, raising=False)
    monkeypatch.setattr(faiss, "GpuIndexFlatConfig", StandInConfig, raising=False)
    monkeypatch.setattr(faiss, "GpuIndexFlatIP", StandInGpuFlatIP, raising=False)
    monkeypatch.setattr(faiss, "get_num_gpus", lambda: 1)
    gpu = AnnIndex.build(vecs, np.arange(1500), config)
    for _ in range(2):
        got = gpu.search(queries, 10, fetch_vectors=lambda ids: vecs[ids])
        assert np.array_equal(got[1], want[1]) and np.allclose(got[0], want[0])
    assert built == [True] and searched == [20, 20]  # one GPU copy, float16 asked, used each time
    gpu.save(tmp_path / "ann", covers_version=1)  # the GPU copy is not part of what is saved
    loaded, _ = AnnIndex.load(tmp_path / "ann")
    assert np.array_equal(loaded.search(queries, 10, fetch_vectors=lambda ids: vecs[ids])[1], want[1])


def test_a_saved_ann_index_of_another_index_at_the_same_place_is_never_served(tmp_path):
    # An index made anew where another was (an object-store index's cache folder outlives it):
    # row ids come from paths and fingerprints, so they, and even the table versions, can match.
    config = AnnConfig(flat_threshold=1000)
    store, vecs = _random_store(tmp_path / "s", 1500, 32, config)
    store.finish_writes()
    again = Store.open(tmp_path / "s")
    assert again._load_ann()[0] is not None  # its own index: served
    again.meta.created_at += 1  # the same place, another index
    assert again._load_ann() == (None, None)


def test_an_ann_index_of_an_older_layout_is_rebuilt_with_a_warning_that_names_reindex(tmp_path):
    store, vecs = _random_store(tmp_path / "s", 1500, 32, AnnConfig(flat_threshold=1000))
    store.finish_writes()
    meta = tmp_path / "s" / ANN_DIR / "ann.json"
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "layout": 3}))
    with pytest.warns(UserWarning, match="reindex"):
        ann = Store.open(tmp_path / "s").ensure_ann(save=False)
    assert ann.ntotal == 1500
