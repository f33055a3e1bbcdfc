"""LanceDB version housekeeping (issue 17): the version count stays bounded, removed media leaves
the index directory, and a running query's version survives a writer's cleanup."""

from __future__ import annotations

from pathlib import Path

import pytest

from avsearch import Index
from avsearch.store.tables import _CLEANUP_MARGIN_S
from avsearch.store import Retention
from avsearch.store.readers import reading
from avsearch.store.retention import removable_before


def test_removable_before_keeps_the_last_n_and_what_a_reader_may_hold():
    stamps = [100.0, 200.0, 300.0, 400.0, 500.0]  # commit times, oldest first
    keep3 = Retention(keep_versions=3, reader_grace_s=150.0)
    assert removable_before(stamps, keep3, now=1000.0, readers_active=False) == 300.0  # 100, 200 go
    assert removable_before(stamps, Retention(keep_versions=5), now=1000.0, readers_active=False) is None
    assert removable_before(stamps, Retention(keep_versions=1), now=1000.0, readers_active=False) == 500.0
    # A protected version (the one the ANN index covers) stays, and so does everything after it.
    assert removable_before(stamps, keep3, now=1000.0, readers_active=False, protect=[1]) == 200.0
    # With a query running, a version superseded within the grace (150 s) stays. At now=1000 every
    # old version was superseded long ago (at 200..500): only the count applies...
    assert removable_before(stamps, keep3, now=1000.0, readers_active=True) == 300.0
    # ...at now=420, the version of 200 stopped being current 120 s ago (at 300): it stays too.
    assert removable_before(stamps, keep3, now=420.0, readers_active=True) == 200.0
    assert removable_before(stamps, Retention(keep_versions=1, reader_grace_s=10_000), now=520.0,
                            readers_active=True) is None
    with pytest.raises(ValueError, match="at least 1"):
        Retention(keep_versions=0)


def test_incremental_runs_keep_a_bounded_number_of_versions(tmp_path):
    from avsearch.media.synth import write_audio

    media = tmp_path / "media"
    index = Index.open(tmp_path / "idx", model="tiny", create=True)
    for i in range(6):  # one tiny file per run, as a nightly cron job adding a recording would
        write_audio(media / f"a{i}.wav", duration_s=1.5, tone_hz=300.0 + 100 * i, seed=i)
        index.add([media])
    versions = index.store.tables.versions()
    keep = index.store.retention.keep_versions
    # The newest `keep` versions stay, plus only those committed within the cleanup's margin before
    # the oldest of them (LanceDB cleans up by age; tables.py keeps a margin so that it never keeps
    # one too few: on a quiet machine a run's commits can come milliseconds apart).
    for name in versions:
        listed = index.store.tables._db.open_table(name).list_versions()
        stamps = [v["timestamp"].timestamp() for v in listed]
        assert len(stamps) >= min(keep, 1)
        oldest_kept = stamps[-keep] if len(stamps) >= keep else stamps[0]
        assert all(t >= oldest_kept - _CLEANUP_MARGIN_S for t in stamps[:-keep]), (name, stamps)
        assert len(stamps) <= keep + 4, (name, stamps)  # bounded: six runs made far more than that
    ann = index.stats()["ann"]
    assert ann["fresh"] and ann["vectors"] == 6
    assert tuple(ann["covers_version"]) == (versions["clips"][-1], versions["files"][-1])
    assert len(index.search("x", k=10, merge_adjacent=False)) == 6


def _bytes_of(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file())


def test_removed_media_leaves_no_trace_in_the_index_directory(indexed):
    index, lib, _ = indexed
    gone = str(lib / "garden.mp4")
    vectors = index.store.tables.clip_meta(f"path = '{gone}'", ["row_id"]).column("row_id").to_pylist()
    secret = index.store.vectors(vectors)[0].tobytes()[:64]  # 16 floats of one removed clip
    assert gone.encode() in _bytes_of(index.path) and secret in _bytes_of(index.path)  # the probe works
    assert index.remove([gone]) == 1
    left = _bytes_of(index.path)
    assert gone.encode() not in left
    assert secret not in left
    assert str(lib / "street.mp4").encode() in left  # the rest is all there
    fresh = Index.open(index.path)
    assert {Path(h.path).name for h in fresh.search("x", k=20)} == {"street.mp4", "silent.mp4", "speech.wav",
                                                                    "birds.flac"}


def test_a_running_query_keeps_its_version_through_a_writers_cleanup(indexed, tmp_path):
    index, lib, _ = indexed
    from avsearch.media.synth import write_audio

    extra = tmp_path / "extra"
    reader = Index.open(index.path).store
    writer = Index.open(index.path)
    writer.store.retention = Retention(keep_versions=1)

    with reading(index.path):  # as Index.search does: the query announced, then its tables opened
        reader.tables.refresh()
        opened_at = reader.tables.clips_version()
        write_audio(extra / "late.wav", duration_s=1.5, tone_hz=700.0)
        writer.add([extra])
        assert opened_at in writer.store.tables.versions()["clips"]  # kept for the running query
        assert reader.tables.clip_meta().num_rows == 12  # and readable to the end
        assert len(reader.vectors(reader.tables.all_row_ids())) == 12

    write_audio(extra / "later.wav", duration_s=1.5, tone_hz=900.0)
    writer.add([extra])  # no query now: the count rules
    assert writer.store.tables.versions()["clips"] == [writer.store.tables.clips_version()]
    assert len(Index.open(index.path).search("x", k=50, merge_adjacent=False)) == 14


def test_remove_purges_a_file_that_compaction_alone_would_leave_in_place(tmp_path):
    # One file in 40: under LanceDB's 10% threshold, compaction keeps its rows in the data files
    # (marked deleted). `remove` must rewrite them away.
    import numpy as np

    from avsearch.store import FileCommit, IndexMeta, Store

    dim = 8
    index_dir = tmp_path / "idx"
    store = Store.create(index_dir, IndexMeta("m", "m", dim))
    rng = np.random.default_rng(0)
    commits = []
    for f in range(40):
        path = f"/archive/tape-{f:02d}.mp4"
        rows = [{"clip_id": f"c{f}-{i}", "row_id": f * 10 + i + 1, "fingerprint": f"fp{f}", "path": path,
                 "start_s": float(i), "end_s": float(i + 1), "view": "av", "file_duration_s": 2.0,
                 "indexed_at": 0.0, "model_id": "m"} for i in range(2)]
        vecs = rng.standard_normal((2, dim)).astype(np.float32)
        commits.append(FileCommit({"path": path, "fingerprint": f"fp{f}", "size": 1, "mtime": 0.0, "status": "ok",
                                   "n_clips": 2}, rows, vecs))
    store.commit(commits)
    store.finish_writes()
    secret = store.vectors([71])[0].tobytes()  # tape-07's first clip
    assert b"tape-07" in _bytes_of(index_dir) and secret in _bytes_of(index_dir)

    index = Index.open(index_dir)
    assert index.remove(["/archive/tape-07.mp4"]) == 1
    left = _bytes_of(index_dir)
    assert b"tape-07" not in left and secret not in left
    assert b"tape-06" in left and index.stats()["clips"] == 78


def test_compaction_leaves_old_versions_to_the_retention(tmp_path, monkeypatch):
    # LanceDB's optimize() also deletes every version older than 7 days unless told otherwise:
    # after a week without writes, the next run's compaction would drop the version a running
    # query reads, behind the readers lock and the retention's back.
    from datetime import timedelta

    from avsearch.store.tables import Tables

    tables = Tables(tmp_path, 4)
    asked = []
    for table in (tables.files, tables.clips):
        optimize = table.optimize

        def spy(*args, _optimize=optimize, **kwargs):
            asked.append(kwargs.get("cleanup_older_than"))
            return _optimize(*args, **kwargs)

        monkeypatch.setattr(table, "optimize", spy)
    tables.compact()
    assert len(asked) == 2
    assert all(age is not None and age >= timedelta(days=3650) for age in asked), asked


def test_an_index_kept_open_reads_the_current_version_after_another_writers_cleanup(indexed, tmp_path):
    # `avsearch serve` keeps one Index open: its table handles stay at the version of its last
    # read, which a writer in another process then cleans up. Status and clip look-ups must read
    # the current version (announced, as a query is), not call the index damaged.
    from avsearch.media.synth import write_audio
    from avsearch.server.app import _clip_row

    index, lib, _ = indexed
    files_before = index.stats()["files_ok"]
    clip_id = index.search("x", k=1)[0].clip_id
    writer = Index.open(index.path)
    writer.store.retention = Retention(keep_versions=1)
    write_audio(tmp_path / "extra" / "late.wav", duration_s=1.5, tone_hz=700.0)
    writer.add([tmp_path / "extra"])

    stats = index.stats()
    assert not stats.get("damaged"), stats.get("problems")
    assert stats["files_ok"] == files_before + 1
    assert _clip_row(index, clip_id)["clip_id"] == clip_id
