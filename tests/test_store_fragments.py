"""Clip rows written as Lance fragments by another process than the committer (what Ray embed
actors do, avsearch/store/fragments.py), on a store of synthetic vectors: no model, no Ray."""

from __future__ import annotations

import numpy as np
import pytest

from fragment_fixtures import unreferenced_data_files
from avsearch.store import FileCommit, IndexMeta, Store
from avsearch.store.fragments import FragmentTarget, FragmentWriteError, check_target, write_clip_fragments

DIM = 8


def rows_and_vectors(path: str, fp: str, n: int, seed: int) -> tuple[list[dict], np.ndarray]:
    rng = np.random.default_rng(seed)
    vecs = rng.standard_normal((n, DIM)).astype(np.float32)
    rows = [{"clip_id": f"{fp}-{i}", "row_id": seed * 1000 + i, "fingerprint": fp, "path": path, "start_s": float(i),
             "end_s": float(i + 1), "view": "audio", "file_duration_s": float(n), "indexed_at": 0.0, "model_id": "m"}
            for i in range(n)]
    return rows, vecs


def file_row(path: str, fp: str, n: int) -> dict:
    return {"path": path, "fingerprint": fp, "size": n, "mtime": 0.0, "status": "ok", "n_clips": n}


def stored(store: Store) -> dict[str, np.ndarray]:
    t = store.tables.clips.to_arrow()
    ids = t.column("clip_id").to_pylist()
    assert len(ids) == len(set(ids)), "duplicate clip ids"
    return dict(zip(ids, np.stack(t.column("vector").to_numpy(zero_copy_only=False))))


@pytest.fixture
def store(tmp_path) -> Store:
    s = Store.create(tmp_path / "idx", IndexMeta("m", "m", DIM))
    rows, vecs = rows_and_vectors("/a.wav", "a1", 4, seed=1)
    s.commit([FileCommit(file_row("/a.wav", "a1", 4), rows, vecs)])  # the local pipeline's way
    return s


def test_fragments_of_a_batch_are_committed_in_one_version_with_its_rows_and_supersede_old_clips(store):
    target = store.fragment_target()
    b_rows, b_vecs = rows_and_vectors("/b.wav", "b1", 3, seed=2)
    c_rows, c_vecs = rows_and_vectors("/c.wav", "c1", 2, seed=3)
    d_rows, d_vecs = rows_and_vectors("/d.wav", "d1", 2, seed=4)
    b = write_clip_fragments(target, b_rows[:2], b_vecs[:2]) + write_clip_fragments(target, b_rows[2:], b_vecs[2:])
    c = write_clip_fragments(target, c_rows, c_vecs)
    assert stored(store).keys() == {f"a1-{i}" for i in range(4)}, "written fragments showed before their commit"
    before = store.tables.versions()["clips"][-1]
    store.commit([
        FileCommit(file_row("/b.wav", "b1", 3), fragments=b, fragment_clip_ids=[r["clip_id"] for r in b_rows]),
        FileCommit(file_row("/c.wav", "c1", 2), fragments=c, fragment_clip_ids=[r["clip_id"] for r in c_rows]),
        FileCommit(file_row("/d.wav", "d1", 2), d_rows, d_vecs),  # rows the driver built, in the same batch
    ])
    assert store.tables.versions()["clips"][-1] == before + 1, "the batch's clips took more than one append"
    got = stored(store)
    for rows, vecs in ((b_rows, b_vecs), (c_rows, c_vecs), (d_rows, d_vecs)):
        for r, v in zip(rows, vecs):
            assert np.array_equal(got[r["clip_id"]], v)
    # /b.wav changed: its new content's fragment supersedes every clip of the old one.
    new_rows, new_vecs = rows_and_vectors("/b.wav", "b2", 1, seed=5)
    store.commit([FileCommit(file_row("/b.wav", "b2", 1), fragments=write_clip_fragments(target, new_rows, new_vecs),
                             fragment_clip_ids=[new_rows[0]["clip_id"]])])
    got = stored(store)
    assert not any(k.startswith("b1-") for k in got) and np.array_equal(got["b2-0"], new_vecs[0])
    assert not unreferenced_data_files(store.directory)


def test_fragments_never_committed_are_deleted_at_the_next_recovery_and_every_version_stays(store):
    target = store.fragment_target()
    rows, vecs = rows_and_vectors("/b.wav", "b1", 3, seed=2)
    write_clip_fragments(target, rows, vecs)  # a worker wrote them; the driver died before its commit
    orphans = unreferenced_data_files(store.directory)
    assert len(orphans) == 1
    versions = store.tables.versions()
    before = stored(store)
    assert Store.open(store.directory).recover() == 0  # no clip rows to delete: only the files
    assert not unreferenced_data_files(store.directory)
    assert store.tables.versions() == versions, "the clean-up removed versions a reader may be reading"
    again = Store.open(store.directory)
    after = stored(again)
    assert after.keys() == before.keys() and all(np.array_equal(after[k], before[k]) for k in before)


def test_fragments_left_by_a_run_are_deleted_when_it_finishes(store):
    rows, vecs = rows_and_vectors("/b.wav", "b1", 3, seed=2)
    write_clip_fragments(store.fragment_target(), rows, vecs)  # a chunk of a file that then failed
    store.finish_writes()
    assert not unreferenced_data_files(store.directory)
    assert len(stored(store)) == 4


def test_a_worker_that_cannot_reach_the_index_gets_an_error_naming_shared_storage(tmp_path):
    # A node that does not see the index: a local path that exists only on the driver's machine.
    missing = tmp_path / "elsewhere" / "lance" / "clips.lance"
    rows, vecs = rows_and_vectors("/b.wav", "b1", 2, seed=2)
    with pytest.raises(FragmentWriteError, match="every node reaches"):
        write_clip_fragments(FragmentTarget(str(missing), DIM, "2.2"), rows, vecs)
    assert not (tmp_path / "elsewhere").exists(), "a stray dataset was made where the index is not"


def test_another_table_at_the_index_path_is_refused_by_the_worker_check_and_at_the_commit(store, tmp_path):
    target = store.fragment_target()
    check_target(target)  # the index's own table, as the run began: writable
    other = Store.create(tmp_path / "elsewhere", IndexMeta("m", "m", DIM)).fragment_target()  # another node's
    with pytest.raises(FragmentWriteError, match="another one than the index's|could not write"):
        check_target(FragmentTarget(other.uri, DIM, target.storage_version, target.version, target.rows))
    # A worker that wrote there anyway: its fragments name files the index's table does not hold.
    rows, vecs = rows_and_vectors("/b.wav", "b1", 2, seed=2)
    stray = write_clip_fragments(other, rows, vecs)
    before = stored(store)
    with pytest.raises(FragmentWriteError, match="another table at the same path"):
        store.commit([FileCommit(file_row("/b.wav", "b1", 2), fragments=stray,
                                 fragment_clip_ids=[r["clip_id"] for r in rows])])
    assert stored(store).keys() == before.keys()  # nothing committed, the table reads as before
    assert not store.file_rows("path = '/b.wav'")
