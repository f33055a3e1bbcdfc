"""A batch of file commits drops the clips it supersedes in one scan and one delete, not one of each
per file: on an object store each is several requests (benchmarks/results/objstore.md)."""

from __future__ import annotations

import numpy as np

from avsearch.store import FileCommit, IndexMeta, Store

DIM = 8


def commit_for(f: int, tag: str, *, fingerprint: str | None = None, append: bool = False) -> FileCommit:
    fp = fingerprint or f"fp{f}"
    rows = [{"clip_id": f"{tag}-{f}-{i}", "row_id": hash((tag, f, i)) & 0x7FFF_FFFF_FFFF, "fingerprint": fp,
             "path": f"/m/{f}.mp4", "start_s": float(i) * 10, "end_s": float(i) * 10 + 10, "view": "av",
             "file_duration_s": 20.0, "indexed_at": 0.0, "model_id": "m"} for i in range(2)]
    vectors = np.random.default_rng(f).standard_normal((2, DIM)).astype(np.float32)
    row = {"path": f"/m/{f}.mp4", "fingerprint": fp, "size": 1, "mtime": 0.0, "status": "ok", "n_clips": 2,
           "indexed_at": 0.0}
    return FileCommit(row, rows, vectors, append=append)


def test_a_batch_replacing_several_files_clips_deletes_them_in_one_commit(tmp_path):
    store = Store.create(tmp_path / "idx", IndexMeta("m", "m", DIM))
    store.commit([commit_for(f, "old") for f in range(4)])
    before = store.tables.clips_version()
    # Files 0-2 re-embedded (new clip ids); file 3's next part continues its clips, while its
    # earlier content (another fingerprint) is superseded.
    batch = [commit_for(f, "new") for f in range(3)] + [commit_for(3, "part", fingerprint="fp3b", append=True)]
    store.commit(batch)
    ids = set(store.tables.clip_meta(columns=["clip_id"]).column("clip_id").to_pylist())
    assert ids == {f"new-{f}-{i}" for f in range(3) for i in range(2)} | {"part-3-0", "part-3-1"}
    # One append and one delete (before: a delete per file, 5 versions here).
    assert store.tables.clips_version() - before == 2
