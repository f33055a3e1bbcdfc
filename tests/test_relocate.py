"""`relocate` (issue 17): re-point an archive moved to another mount point, without re-embedding."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from avsearch import Index
from avsearch.errors import RelocateError
from avsearch.store.ann import AnnIndex
from avsearch.store.store import ANN_DIR


@pytest.fixture
def moved(indexed, tmp_path):
    """The indexed library copied to a new mount point (the copy keeps content, not mtimes)."""
    index, lib, _ = indexed
    new = tmp_path / "new-disk" / "media"
    shutil.copytree(lib, new, copy_function=shutil.copyfile)
    return index, lib, new


def snapshot(index: Index):
    t = index.store.tables.clip_meta(columns=["clip_id", "row_id", "path"])
    ids = t.column("row_id").to_pylist()
    return dict(zip(t.column("clip_id").to_pylist(), t.column("path").to_pylist())), index.store.vectors(ids), ids


def test_relocate_repoints_both_tables_and_keeps_vectors_and_ann(moved):
    index, old, new = moved
    paths_before, vectors_before, ids = snapshot(index)
    ann_before, _ = AnnIndex.load(index.path / ANN_DIR)

    fresh = Index.open(index.path)
    done = fresh.relocate(old, new, verify=3)
    assert done["files"] == 6 and len(done["verified"]) == 3  # corrupt.mp4 (failed) moves, unchecked
    assert all(p.startswith(str(new) + os.sep) for p in done["verified"])
    assert fresh._embedder is None  # nothing was embedded: the model was never loaded

    paths_after, vectors_after, ids_after = snapshot(fresh)
    assert paths_after == {cid: str(new) + p[len(str(old)):] for cid, p in paths_before.items()}
    assert ids_after == ids and np.array_equal(vectors_after, vectors_before)
    assert {r["path"] for r in fresh.store.file_rows()} == {str(new / n) for n in os.listdir(new)}
    ann_after, covers = AnnIndex.load(index.path / ANN_DIR)
    assert np.array_equal(np.sort(ann_after.ids), np.sort(ann_before.ids))  # same row ids: no rebuild needed
    assert fresh.stats()["ann"]["fresh"]

    hits = fresh.search("x", k=20, path_prefix=str(new))
    assert hits and all(h.path.startswith(str(new)) for h in hits)
    assert fresh.search("x", k=20, path_prefix=str(old)) == []
    report = fresh.add([new])  # the index agrees the files are where it says: nothing to re-embed
    assert report.indexed == [] and report.clips_added == 0


def test_relocate_refuses_when_a_sampled_file_differs_and_changes_nothing(moved):
    index, old, new = moved
    before = snapshot(index)[0]
    with open(new / "street.mp4", "r+b") as fh:  # same size, other content
        fh.seek(100)
        fh.write(b"\x00" * 64)
    with pytest.raises(RelocateError, match="street.mp4 is not the file indexed as"):
        Index.open(index.path).relocate(old, new, verify=100)  # 100 >= all: every file is checked
    shutil.copyfile(old / "street.mp4", new / "street.mp4")
    os.remove(new / "garden.mp4")
    with pytest.raises(RelocateError, match="garden.mp4 .*does not exist"):
        Index.open(index.path).relocate(old, new, verify=100)
    assert snapshot(Index.open(index.path))[0] == before


def test_relocate_refuses_clashing_prefixes(moved):
    index, old, new = moved
    with pytest.raises(RelocateError, match="no indexed file is under"):
        Index.open(index.path).relocate(new, old)
    with pytest.raises(RelocateError, match="neither may contain the other"):
        Index.open(index.path).relocate(old, old / "sub")


def test_relocate_command(moved):
    index, old, new = moved
    out = subprocess.run([sys.executable, "-m", "avsearch.cli.app", "relocate", str(old), str(new), "--index",
                          str(index.path)], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "COLUMNS": "300"})
    assert out.returncode == 0, out.stderr
    assert "relocated 6 files" in out.stdout and "(5 checked by content)" in out.stdout
    out = subprocess.run([sys.executable, "-m", "avsearch.cli.app", "relocate", str(old), str(new), "--index",
                          str(index.path)], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "COLUMNS": "300"})
    assert out.returncode == 12 and "no indexed file is under" in out.stderr


def test_a_relocation_killed_half_way_is_completed_by_running_it_again(moved):
    index, old, new = moved
    paths_before, vectors_before, ids = snapshot(index)
    tables = index.store.tables
    # As if killed after the first step: the new rows are in, the clips and old rows not moved yet.
    rows = tables.file_rows()
    tables._upsert_files([dict(r, path=str(new) + r["path"][len(str(old)):]) for r in rows])
    assert Index.open(index.path).search("x", k=3)  # the old rows still vouch for every clip

    Index.open(index.path).relocate(old, new)
    fresh = Index.open(index.path)
    paths_after, vectors_after, ids_after = snapshot(fresh)
    assert paths_after == {cid: str(new) + p[len(str(old)):] for cid, p in paths_before.items()}
    assert ids_after == ids and np.array_equal(vectors_after, vectors_before)
    assert len(fresh.store.file_rows()) == 6
