"""Issue 19: the search path end to end — re-scoring from the ANN index's own vectors (exact after
deletes, appends and compaction), a candidate pool that holds recall at small k when groups of
near-duplicates crowd it, and search by a cached query vector."""

from __future__ import annotations

import os

import faiss
import numpy as np
import pytest

from avsearch import Index, Query
from avsearch.errors import QueryError
from avsearch.store import AnnConfig, FileCommit, IndexMeta, SearchState, Store
from avsearch.store.ann import AnnIndex
from avsearch.store.rescore_vectors import DATA_FILE, RescoreVectors
from avsearch.store.store import ANN_DIR
from avsearch.store.tables import Tables


def _unit(x):
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def _crowded(seed=0, dim=32, n_queries=5, background=1500):
    """Per query: 10 clips at cosine 0.95-0.96 and 12 groups of 20 near-duplicates (cosine 0.999
    within a group, like consecutive clips of one video) whose centres sit at 0.93-0.945, so ~250
    candidates compete for the top 10 and PQ ranks them coarsely. Values are float16-exact, so
    re-scoring with float16 vectors is exact too and recall measures only the candidate pool."""
    rng = np.random.default_rng(seed)

    def around(c, cos):
        e = rng.standard_normal((len(cos), dim))
        e = _unit(e - (e @ c)[:, None] * c)
        return _unit(cos[:, None] * c + np.sqrt(1 - cos[:, None] ** 2) * e)

    parts, queries = [_unit(rng.standard_normal((background, dim)))], []
    for _ in range(n_queries):
        q = _unit(rng.standard_normal(dim))
        queries.append(q)
        parts.append(around(q, rng.uniform(0.95, 0.96, 10)))
        parts += [around(c, np.full(20, 0.999)) for c in around(q, rng.uniform(0.93, 0.945, 12))]
    return np.concatenate(parts).astype(np.float16).astype(np.float32), np.stack(queries)


def _recall(got, truth):
    return float(np.mean([len(set(g) & set(t)) / len(t) for g, t in zip(got, truth)]))


def test_small_k_recall_holds_when_near_duplicate_groups_fill_the_candidate_pool(one_faiss_thread):
    x, queries = _crowded()
    # every list probed: what is missed, the candidate pool missed
    base = AnnConfig(flat_threshold=1000, codes="pq", opq_dim=16, pq_m=4, nlist=8, nprobe=8)
    ann = AnnIndex.build(x, np.arange(len(x)), base)
    assert ann.kind == "ivf"
    truth = np.argsort(-(queries @ x.T), axis=1, kind="stable")[:, :10]

    def recall(**config):
        ann.config = AnnConfig(**{**base.__dict__, **config})
        return _recall(ann.search(queries, 10)[1], truth)

    # The old pool: k x refine_factor = 100 candidates, never more.
    assert recall(min_candidates=0, max_candidates=100) < 0.8
    assert recall() >= 0.97  # the defaults: a floor of 256 candidates, growing while needed
    assert recall(min_candidates=0) >= 0.97  # growing alone, from 100, finds them too


def test_rabitq_codes_rank_the_crowded_candidates_well_enough_for_the_small_pool(one_faiss_thread):
    # The same crowd, RaBitQ codes (the default): one bit per dimension of the whole space ranks
    # the true 10 inside the first 100 candidates, where PQ's coarse codes did not (above).
    x, queries = _crowded()
    ann = AnnIndex.build(x, np.arange(len(x)), AnnConfig(flat_threshold=1000, nlist=8, nprobe=8, min_candidates=0,
                                                         max_candidates=100))
    assert ann.config.codes == "rabitq"
    truth = np.argsort(-(queries @ x.T), axis=1, kind="stable")[:, :10]
    assert _recall(ann.search(queries, 10)[1], truth) >= 0.97


def test_a_growing_pool_fetches_each_candidate_once_and_ranks_as_a_full_rescore_does(one_faiss_thread):
    x, queries = _crowded(seed=1)
    config = AnnConfig(flat_threshold=1000, codes="pq", opq_dim=16, pq_m=4, nlist=8, nprobe=8, min_candidates=0,
                       refine_factor=2)  # a pool of 20 that must grow for these crowded queries
    ann = AnnIndex.build(x, np.arange(len(x)), config)
    for q in queries:
        fetched = []

        def fetch(ids):
            fetched.extend(ids.tolist())
            return x[ids]

        scores, ids = ann.search(q[None, :], 10, fetch_vectors=fetch)
        assert len(fetched) > 20, "the pool did not grow: the test checks nothing"
        assert len(fetched) == len(set(fetched))  # no candidate fetched twice
        # the same exact top 10 as scoring every candidate of the final pool at once
        pool = ann._scan(ann._probe(q[None, :], 8), len(fetched), None)[1][0]
        full = np.argsort(-(x[pool] @ q), kind="stable")[:10]
        assert set(ids[0].tolist()) == set(pool[full].tolist())
        np.testing.assert_allclose(scores[0], np.sort(x[ids[0]] @ q)[::-1], rtol=1e-6)


def _counting(ann, monkeypatch):
    """Counts of the ANN index's list choices (probes), PQ scans and vectors re-scored."""
    counts = {"probes": 0, "scans": 0, "rescored": 0, "ids": []}
    real_probe, real_scan, real_score = ann._probe, ann._scan, ann.rescore.inner_products

    def probe(*a):
        counts["probes"] += 1
        return real_probe(*a)

    def scan(*a):
        counts["scans"] += 1
        return real_scan(*a)

    def score(ids, query):
        counts["rescored"] += len(ids)
        counts["ids"].extend(ids.tolist())
        return real_score(ids, query)

    monkeypatch.setattr(ann, "_probe", probe)
    monkeypatch.setattr(ann, "_scan", scan)
    monkeypatch.setattr(ann.rescore, "inner_products", score)
    return counts


def _crowded_index():
    x, queries = _crowded(seed=1)
    config = AnnConfig(flat_threshold=1000, codes="pq", opq_dim=16, pq_m=4, nlist=8, nprobe=8, min_candidates=0,
                       refine_factor=2, max_candidates=640)  # a pool of 20 that must grow for these queries
    ann = AnnIndex.build(x, np.arange(len(x)), config)
    return ann, x, queries


def test_a_growing_pool_scans_the_lists_at_most_twice(one_faiss_thread, monkeypatch):
    ann, x, queries = _crowded_index()
    counts = _counting(ann, monkeypatch)
    for q in queries:
        counts.update(scans=0, rescored=0)
        scores, ids = ann.search(q[None, :], 10)
        assert counts["rescored"] > 40, "the pool did not grow twice: the test checks nothing"
        # the first scan, then one at max_candidates that every later pool size is cut from
        # (rescanning at each doubling took a scan per step: 20 -> 40 -> 80 ... 4 or more)
        assert counts["scans"] <= 2
        # the same exact top 10 as scoring every candidate of the final pool at once
        pool = ann._scan(ann._probe(q[None, :], 8), counts["rescored"], None)[1][0]
        full = np.argsort(-(x[pool] @ q), kind="stable")[:10]
        assert set(ids[0].tolist()) == set(pool[full].tolist())


def test_asking_again_for_more_continues_the_first_search(one_faiss_thread, monkeypatch):
    ann, x, queries = _crowded_index()
    q = queries[0][None, :]
    fresh = ann.search(q, 200)  # what a search for 200 finds on its own
    counts = _counting(ann, monkeypatch)
    state = SearchState()
    ann.search(q, 10, state=state)
    first = dict(counts, ids=list(counts["ids"]))
    scores, ids = ann.search(q, 200, state=state)  # a pool of 400: deeper than the first one grew
    assert counts["probes"] == first["probes"] == 1  # the lists were chosen once
    # nothing scored in the first search is scored again: the second only adds candidates
    again = counts["ids"][len(first["ids"]):]
    assert first["ids"] and again and not set(again) & set(first["ids"])
    assert len(set(counts["ids"])) == len(counts["ids"]) <= 640  # each candidate once, at most the deepest pool
    assert np.array_equal(ids, fresh[1]) and np.allclose(scores, fresh[0])
    # another query, or the index changed, with the same state: searched afresh
    other = ann.search(queries[1][None, :], 10, state=state)
    assert np.array_equal(other[1], ann.search(queries[1][None, :], 10)[1])
    ann.add(_unit(q + 1e-3).astype(np.float32), np.array([10**6]))
    again = ann.search(q, 10, state=state)
    assert again[1][0, 0] == 10**6


def test_a_continued_search_answers_as_a_fresh_one_when_pq_scores_tie(one_faiss_thread):
    # Every vector four times over: tied PQ scores everywhere, so which of them a scan keeps at
    # its cut-off depends on how deep it scans.
    x, queries = _crowded(seed=2)
    x = np.repeat(x, 4, axis=0)
    config = AnnConfig(flat_threshold=1000, codes="pq", opq_dim=16, pq_m=4, nlist=8, nprobe=8, min_candidates=0,
                       refine_factor=2, max_candidates=640)
    ann = AnnIndex.build(x, np.arange(len(x)), config)
    for q in queries:
        state = SearchState()
        for k in (10, 25, 40, 90):
            got = ann.search(q[None, :], k, state=state)
            fresh = ann.search(q[None, :], k)
            assert np.array_equal(got[1], fresh[1]) and np.array_equal(got[0], fresh[0])


def test_a_vector_that_is_not_a_number_scores_nan_and_leaves_the_others_alone(one_faiss_thread):
    rv = RescoreVectors(8)
    x = np.eye(8, dtype=np.float32)[:3]
    x[1] = np.nan
    rv.add(x, np.array([10, 11, 12]))
    got = rv.inner_products(np.array([10, 11, 12]), np.ones(8, np.float32))
    assert got[0] == 1 and np.isnan(got[1]) and got[2] == 1


def _store_with_files(path, files, clips_per_file, dim, config, seed=0):
    rng = np.random.default_rng(seed)
    store = Store.create(path, IndexMeta("m", "m", dim), ann_config=config)
    vectors = {}
    for f in range(files):
        vectors.update(_commit_file(store, f, clips_per_file, dim, rng))
    return store, vectors


def _commit_file(store, f, clips, dim, rng):
    # float16-exact unit vectors in 16 topics, so float16 re-scoring equals the float32 truth
    centers = np.random.default_rng(99).standard_normal((16, dim)).astype(np.float32)
    x = centers[rng.integers(0, 16, clips)] + 0.4 * rng.standard_normal((clips, dim)).astype(np.float32)
    x = _unit(x).astype(np.float16).astype(np.float32)
    ids = [f * 10_000 + i + 1 for i in range(clips)]
    path = f"/media/f{f}.mp4"
    rows = [{"clip_id": f"c{rid}", "row_id": rid, "fingerprint": "fp", "path": path, "start_s": float(i),
             "end_s": float(i + 1), "view": "av", "file_duration_s": float(clips), "indexed_at": 0.0,
             "model_id": "m"} for i, rid in enumerate(ids)]
    row = {"path": path, "fingerprint": "fp", "size": 1, "mtime": 0.0, "status": "ok", "n_clips": clips}
    store.commit([FileCommit(row, rows, x)])
    return dict(zip(ids, x))


def _no_scans(*args, **kwargs):
    raise AssertionError("a filtered scan of the clips table on the search path")


def _exact(vectors, queries, k):
    ids = np.array(sorted(vectors))
    mat = np.stack([vectors[i] for i in ids])
    scores = queries @ mat.T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, order, 1), ids[order]


def test_rescoring_stays_exact_after_deletes_appends_and_compaction(tmp_path, one_faiss_thread, monkeypatch):
    dim = 32
    config = AnnConfig(flat_threshold=1000, opq_dim=16, pq_m=4, nlist=16, nprobe=16, refine_factor=400)
    store, vectors = _store_with_files(tmp_path / "s", 12, 200, dim, config)
    store.finish_writes()
    assert store.ann_state()["kind"] == "ivf"
    rng = np.random.default_rng(7)
    queries = _unit(np.stack([vectors[i] for i in list(vectors)[::300]]) + 0.1 * rng.standard_normal((8, dim)))

    def check(s):
        # brings the ANN index and the hits' metadata copy up to date (that may read the table:
        # once per table version, not per search)
        s.clip_meta_by_row_ids(s.search(queries[:1], 10)[1].ravel())
        with monkeypatch.context() as m:  # a search reads no vectors or metadata by a filtered scan
            m.setattr(Tables, "_scan", _no_scans)
            scores, ids = s.search(queries, 10)
            meta = s.clip_meta_by_row_ids(ids.ravel())
        want_s, want_i = _exact(vectors, queries, 10)
        assert np.array_equal(ids, want_i)
        assert np.allclose(scores, want_s, atol=1e-5)
        assert {m["clip_id"] for m in meta.values()} == {f"c{i}" for i in ids.ravel()}

    check(store)
    # deletes: three files go, and their clips must never come back from the re-scoring file
    store.remove_paths([f"/media/f{f}.mp4" for f in (0, 3, 5)])
    for rid in [r for r in vectors if r // 10_000 in (0, 3, 5)]:
        del vectors[rid]
    # appends: two new files
    vectors.update(_commit_file(store, 20, 200, dim, rng))
    vectors.update(_commit_file(store, 21, 200, dim, rng))
    store.finish_writes()  # compacts the tables (row addresses change), updates and saves the ANN
    assert store.ann_state()["fresh"] and store.ann_state()["kind"] == "ivf"
    check(store)
    check(Store.open(tmp_path / "s"))  # what was saved: the index and its re-scoring file
    # a reader whose saved index is stale updates it in memory (appends), exact as well
    vectors.update(_commit_file(store, 22, 50, dim, rng))
    check(Store.open(tmp_path / "s"))


def test_the_rescoring_file_is_extended_on_save_and_rewritten_once_removals_pile_up(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 8)).astype(np.float32)
    ids = np.arange(300) * 7 + 3
    first = RescoreVectors(8)
    first.add(x[:200], ids[:200])
    first.save(_mkdir(tmp_path / "a"))
    loaded = RescoreVectors.load(tmp_path / "a", 8)
    loaded.add(x[200:], ids[200:])
    loaded.remove(ids[:10])
    loaded.save(_mkdir(tmp_path / "b"))
    b = RescoreVectors.load(tmp_path / "b", 8)
    assert os.path.samefile(tmp_path / "a" / DATA_FILE, tmp_path / "b" / DATA_FILE)  # extended, not copied
    assert np.array_equal(b.get(ids[10:]), x[10:].astype(np.float16).astype(np.float32))
    assert not b.get(ids[:10]).any() and (b.rows_of(ids[:10]) == -1).all() and len(b) == 290
    # the first save still reads as it was: its id file names only its own rows
    a = RescoreVectors.load(tmp_path / "a", 8)
    assert len(a) == 200 and np.array_equal(a.get(ids[:200]), x[:200].astype(np.float16).astype(np.float32))
    b.remove(ids[10:150])  # now half the rows are removed ones
    b.save(_mkdir(tmp_path / "c"))
    c = RescoreVectors.load(tmp_path / "c", 8)
    assert (tmp_path / "c" / DATA_FILE).stat().st_size == 150 * 8 * 2  # rewritten without them
    assert np.array_equal(c.get(ids[150:]), x[150:].astype(np.float16).astype(np.float32))


def _saved_and_added(folder, rng, n, saved, dim):
    """(RescoreVectors holding n random rows, their ids): the first `saved` in its saved,
    memory-mapped file, the others added since."""
    x = rng.standard_normal((n, dim)).astype(np.float32)
    ids = np.arange(n) * 5 + 1
    first = RescoreVectors(dim)
    first.add(x[:saved], ids[:saved])
    first.save(_mkdir(folder))
    both = RescoreVectors.load(folder, dim)
    both.add(x[saved:], ids[saved:])
    return both, ids


def test_inner_products_score_the_float16_rows_as_get_then_a_float32_dot_does(tmp_path, one_faiss_thread):
    rng = np.random.default_rng(3)
    dim = 96  # not a multiple of faiss's SIMD width: the remainder is scored too
    both, ids = _saved_and_added(tmp_path / "a", rng, 120, 80, dim)
    # rows of the saved map and rows added since, asked for interleaved
    ask = np.concatenate([ids[::-3], [999_999], ids[85:90]])  # unsorted, one id not held
    query = rng.standard_normal(dim).astype(np.float32)
    got = both.inner_products(ask, query)
    want = both.get(ask).astype(np.float64) @ query
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert got[len(ids[::-3])] == 0  # the id not held scores 0, as its zero vector from get() does
    assert len(both.inner_products(np.zeros(0, np.int64), query)) == 0


def test_top_k_of_a_subset_ranks_as_get_then_a_float32_dot_does(tmp_path, one_faiss_thread):
    rng = np.random.default_rng(4)
    rv, ids = _saved_and_added(tmp_path / "a", rng, 90, 60, 40)
    subset = ids[rng.choice(90, 30, replace=False)]  # saved and added rows, in no order
    queries = rng.standard_normal((3, rv.dim)).astype(np.float32)
    scores, got = rv.top_k(subset, queries, 5)
    full = queries @ rv.get(subset).T
    for q in range(3):
        best = np.argsort(-full[q], kind="stable")[:5]
        assert got[q].tolist() == subset[best].tolist()
        np.testing.assert_allclose(scores[q], full[q, best], rtol=1e-5, atol=1e-5)
    scores, got = rv.top_k(subset[:2], queries, 4)  # fewer ids than k: padded
    assert (got[:, 2:] == -1).all() and np.isneginf(scores[:, 2:]).all() and (got[:, :2] >= 0).all()


def test_the_index_own_rescore_ranks_as_the_float32_fetch_path(tmp_path, one_faiss_thread):
    config = AnnConfig(flat_threshold=1000, opq_dim=16, pq_m=4, nlist=16)
    store, _ = _store_with_files(tmp_path / "s", 6, 200, 32, config)
    store.finish_writes()
    ann = store.ensure_ann(save=False)
    queries = _unit(np.random.default_rng(5).standard_normal((20, 32)).astype(np.float32))
    own_s, own_i = ann.search(queries, 10)
    ref_s, ref_i = ann.search(queries, 10, fetch_vectors=ann.rescore.get)
    assert np.array_equal(own_i, ref_i)
    np.testing.assert_allclose(own_s, ref_s, rtol=1e-5, atol=1e-6)


def _mkdir(path):
    path.mkdir()
    return path


def test_a_saved_index_without_its_rescoring_file_is_rebuilt(tmp_path, one_faiss_thread):
    config = AnnConfig(flat_threshold=1000, opq_dim=16, pq_m=4, nlist=16)
    store, vectors = _store_with_files(tmp_path / "s", 6, 200, 32, config)
    store.finish_writes()
    (tmp_path / "s" / ANN_DIR / DATA_FILE).write_bytes(b"")
    with pytest.raises(ValueError, match="reindex"):
        AnnIndex.load(tmp_path / "s" / ANN_DIR)
    q = np.stack([vectors[10_001]])
    assert Store.open(tmp_path / "s").search(q, 1)[1][0, 0] == 10_001


# -- search by vector through Index ----------------------------------------------------------


def test_search_by_a_cached_vector_matches_text_search_and_loads_no_model(indexed):
    index, lib, _ = indexed
    v = index.embed_text("x")
    want = index.search("x", k=5, merge_adjacent=False, target_views=["audio"])
    fresh = Index.open(index.path)
    got = fresh.search(Query.from_vector(v, target_views=["audio"]), k=5, merge_adjacent=False)
    assert [(h.clip_id, round(h.score, 5)) for h in got] == [(h.clip_id, round(h.score, 5)) for h in want]
    assert fresh._embedder is None  # the model was never loaded
    # a bare numpy array is a vector query too, any scale: it is normalised
    assert [h.clip_id for h in fresh.search(3.0 * v, k=5, merge_adjacent=False, target_views=["audio"])] == \
        [h.clip_id for h in got]
    by_vector = fresh.search(v, k=5, path_glob="*street.mp4", merge_adjacent=False)
    by_text = index.search("x", k=5, path_glob="*street.mp4", merge_adjacent=False)
    assert len(by_vector) == 5 and all(h.path.endswith("street.mp4") for h in by_vector)
    assert [(h.clip_id, round(h.score, 5)) for h in by_vector] == [(h.clip_id, round(h.score, 5)) for h in by_text]


def test_a_vector_of_the_wrong_shape_is_refused_with_the_fix(indexed):
    index, _, _ = indexed
    dim = index.store.meta.dim
    with pytest.raises(QueryError, match=f"{dim}-d vectors"):
        index.search(np.ones(dim + 1, np.float32))
    with pytest.raises(QueryError, match="non-zero, finite"):
        Query.from_vector(np.zeros(dim))
    with pytest.raises(QueryError, match="non-zero, finite"):
        Query(vector=np.ones((2, dim)))


def test_a_single_query_runs_faiss_on_the_calling_thread_and_answers_as_a_batch_does(one_faiss_thread):
    x, queries = _crowded(n_queries=2, background=1200)
    ann = AnnIndex.build(x, np.arange(len(x)), AnnConfig(flat_threshold=1000, opq_dim=16, pq_m=4, nlist=8))
    faiss.omp_set_num_threads(2)  # as a default process has
    seen = []
    scan = ann._scan
    ann._scan = lambda *a: (seen.append(faiss.omp_get_max_threads()), scan(*a))[1]
    one = ann.search(queries[:1], 10)
    assert seen and set(seen) == {1} and faiss.omp_get_max_threads() == 2  # and put back after
    seen.clear()
    both = ann.search(np.repeat(queries, 4, axis=0), 10)  # a batch keeps the threads
    assert set(seen) == {2}
    assert np.array_equal(one[1][0], both[1][0]) and np.allclose(one[0][0], both[0][0])


def test_the_rescoring_file_is_copied_where_hard_links_fail(tmp_path, monkeypatch):
    x = np.arange(40, dtype=np.float32).reshape(5, 8)
    first = RescoreVectors(8)
    first.add(x[:3], np.arange(3))
    first.save(_mkdir(tmp_path / "a"))
    loaded = RescoreVectors.load(tmp_path / "a", 8)
    loaded.add(x[3:], np.arange(3, 5))

    def no_links(*args):
        raise OSError("no hard links here")

    monkeypatch.setattr(os, "link", no_links)
    loaded.save(_mkdir(tmp_path / "b"))
    assert not os.path.samefile(tmp_path / "a" / DATA_FILE, tmp_path / "b" / DATA_FILE)
    assert np.array_equal(RescoreVectors.load(tmp_path / "b", 8).get(np.arange(5)), x)
    assert len(RescoreVectors.load(tmp_path / "a", 8)) == 3


def test_a_single_query_scans_its_lists_on_every_thread_and_finds_what_a_batch_finds(monkeypatch):
    import avsearch.store.ann as ann_module

    x, queries = _crowded(seed=3, n_queries=8)
    ann = AnnIndex.build(x, np.arange(len(x)), AnnConfig(flat_threshold=1000, nlist=16, nprobe=16))
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(2)
    try:
        batch = ann.search(queries, 10)  # more than a few queries: one thread per query
        assert ann._ivf.parallel_mode == 0
        ann.search(queries[:1], 10)  # a scan of ~3,500 codes: too small to split
        assert ann._ivf.parallel_mode == 0
        monkeypatch.setattr(ann_module, "_SPLIT_SCAN_CODES", 0)  # every scan large enough
        for row, q in enumerate(queries):
            scores, ids = ann.search(q[None, :], 10)  # one query: its lists split among 2 threads
            assert ann._ivf.parallel_mode == 1
            assert np.array_equal(ids[0], batch[1][row]) and np.allclose(scores[0], batch[0][row])
        assert faiss.omp_get_max_threads() == 2  # the caller's setting is back
    finally:
        faiss.omp_set_num_threads(before)
