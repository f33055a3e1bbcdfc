"""Re-scoring rows an ANN build adds, spilled to a file beyond a bound (avsearch/store/spill_rows.py):
without it a streamed 1M x 3584 build held all 7.2 GB of them in RAM and was killed for memory."""

from __future__ import annotations

import gc

import numpy as np

import avsearch.store.spill_rows as spill_rows
from avsearch.store import AnnConfig, FileCommit, IndexMeta, Store
from avsearch.store.rescore_vectors import RescoreVectors
from avsearch.store.spill_rows import SpillRows


def spills(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".rescore-spill-"))


def test_rows_past_the_bound_go_to_a_file_and_read_back_in_order(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 6)).astype(np.float16)
    rows = SpillRows(6, tmp_path, spill_bytes=10 * 6 * 2)  # 10 rows in RAM at most
    for start in range(0, 50, 7):
        rows.append(x[start : start + 7])
    assert len(rows) == 50 and rows.ram_bytes() < 10 * 6 * 2 and len(spills(tmp_path)) == 1
    ask = rng.permutation(50)
    assert np.array_equal(rows.take(ask), x[ask])  # from the file and from RAM, in the order asked
    assert np.array_equal(np.concatenate(list(rows.blocks())), x)
    del rows
    gc.collect()
    assert spills(tmp_path) == []  # the file goes with the rows


def test_a_folder_that_cannot_be_written_keeps_the_rows_in_ram(tmp_path):
    x = np.ones((30, 4), np.float16)
    rows = SpillRows(4, tmp_path / "no-such-folder", spill_bytes=8)
    for block in np.split(x, 3):
        rows.append(block)
    assert np.array_equal(rows.take(np.arange(30)), x) and rows.ram_bytes() == x.nbytes


def test_a_streamed_build_keeps_its_rescoring_rows_out_of_ram_and_leaves_no_spill(tmp_path, monkeypatch,
                                                                                  one_faiss_thread):
    monkeypatch.setattr(spill_rows, "SPILL_BYTES", 200 * 16 * 2)  # 200 rows of 16-d
    held = []
    real_add = RescoreVectors.add

    def add(self, vectors, ids):  # what the build's re-scoring rows hold in RAM after each block
        real_add(self, vectors, ids)
        held.append(self._tail.ram_bytes())

    monkeypatch.setattr(RescoreVectors, "add", add)
    rng = np.random.default_rng(1)
    store = Store.create(tmp_path / "idx", IndexMeta("m", "m", 16),
                         ann_config=AnnConfig(flat_threshold=1000, opq_dim=16, pq_m=4, nlist=8))
    x = rng.standard_normal((3000, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    for f in range(3):
        rows = [{"clip_id": f"c{r}", "row_id": r, "fingerprint": f"fp{f}", "path": f"/m/{f}.mp4", "start_s": float(r),
                 "end_s": r + 1.0, "view": "av", "file_duration_s": 1e4, "indexed_at": 0.0, "model_id": "m"}
                for r in range(f * 1000, (f + 1) * 1000)]
        store.commit([FileCommit({"path": f"/m/{f}.mp4", "fingerprint": f"fp{f}", "size": 1, "mtime": 0.0,
                                  "status": "ok", "n_clips": 1000}, rows, x[f * 1000 : (f + 1) * 1000])])
    blocks = store.tables.iter_vectors
    monkeypatch.setattr(store.tables, "iter_vectors", lambda keep=None: blocks(keep=keep, block_rows=500))
    ann = store._build_streamed(np.arange(3000))
    assert held and max(held) <= 500 * 16 * 2  # never more than a block past the bound, not all 3,000 rows
    assert spills(tmp_path / "idx")  # they are in the spill file meanwhile
    _, got = ann.search(x[:20], 1)
    assert (got[:, 0] == np.arange(20)).all()  # read back from the file for the re-score
    store._save_ann(ann, np.arange(3000), store._version_key())
    del ann
    gc.collect()
    assert spills(tmp_path / "idx") == []
    _, got = Store.open(tmp_path / "idx").search(x[:20], 1)
    assert (got[:, 0] == np.arange(20)).all()
