"""The ANN index after a large (distributed) run is built from a sample and streamed blocks
(issue 14, item 4): never from every vector read into one process at once."""

from __future__ import annotations

import numpy as np

from avsearch.store import AnnConfig
from avsearch.store.tables import Tables
from test_retrieval import _random_store


def test_ivf_is_trained_on_a_sample_and_filled_from_streamed_blocks(tmp_path, monkeypatch):
    # 8 dims per PQ sub-quantizer and a small sample: seconds to train (4-dim ones take minutes here).
    config = AnnConfig(flat_threshold=1000, opq_dim=32, pq_m=4, refine_factor=20, train_size=800)
    store, vecs = _random_store(tmp_path / "s", 2000, 32, config)

    def no_full_read(self):
        raise AssertionError("the build read every vector at once")

    blocks = []
    streamed = Tables.iter_vectors

    def small_blocks(self, keep=None, block_rows=65_536):
        for ids, v in streamed(self, keep=keep, block_rows=700):
            blocks.append(len(ids))
            yield ids, v

    monkeypatch.setattr(Tables, "all_vectors", no_full_read)
    monkeypatch.setattr(Tables, "iter_vectors", small_blocks)
    store.finish_writes()
    state = store.ann_state()
    assert state["kind"] == "ivf" and state["vectors"] == 2000
    assert len(blocks) >= 3 and max(blocks) <= 700 and sum(blocks) == 2000  # streamed, a block at a time
    queries = vecs[:50] + 0.05 * np.random.default_rng(1).standard_normal((50, 32)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    _, got = store.search(queries, 10)
    exact = np.argsort(-(queries @ vecs.T), axis=1)[:, :10] + 1
    recall = np.mean([len(set(g) & set(e)) / 10 for g, e in zip(got, exact)])
    assert recall >= 0.95, recall
