"""Indexer at archive scale (issue #4): incremental runs, crash safety, locking, robustness."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from avsearch import Index
from avsearch.errors import IndexLockedError


def clip_set(index: Index) -> list[tuple]:
    t = index.store.tables.clip_meta(columns=["clip_id", "path", "start_s", "end_s", "view"])
    rows = sorted(zip(*(t.column(c).to_pylist() for c in ["path", "start_s", "end_s", "view", "clip_id"])))
    return rows


def test_move_change_delete_are_applied_incrementally(tmp_path, library):
    index = Index.open(tmp_path / "idx", model="tiny", create=True)
    index.add([library])
    before = {r[:4]: r[4] for r in clip_set(index)}

    (library / "sub").mkdir()
    os.rename(library / "garden.mp4", library / "sub" / "garden-moved.mp4")  # move
    from avsearch.media.synth import write_audio
    write_audio(library / "speech.wav", duration_s=7.0, tone_hz=600.0, seed=9)  # change
    os.remove(library / "birds.flac")  # delete

    plan = index.plan([library])
    assert plan.counts()["moved"] == 1 and plan.counts()["changed"] == 1 and plan.counts()["deleted"] == 1

    report = index.add([library])
    assert report.moved == [(str(library / "garden.mp4"), str(library / "sub" / "garden-moved.mp4"))]
    assert [Path(p).name for p in report.indexed] == ["speech.wav"]  # only the changed file is embedded
    assert report.deleted == [str(library / "birds.flac")]
    after = clip_set(index)
    paths = {r[0] for r in after}
    assert str(library / "birds.flac") not in paths and str(library / "garden.mp4") not in paths
    moved = [r for r in after if r[0].endswith("garden-moved.mp4")]
    # re-pointed, not re-embedded: the clip ids are the ones from before the move
    assert sorted(r[4] for r in moved) == sorted(v for k, v in before.items() if k[0].endswith("garden.mp4"))
    speech = [r for r in after if r[0].endswith("speech.wav")]
    assert [(r[1], r[2]) for r in speech] == [(0.0, 7.0)]  # old 5 s clip gone, new 7 s clip there
    assert len(after) == len(set(r[4] for r in after))  # no duplicates
    # a move must survive a query: the hit points at the new path
    hit = index.search(Path(library / "sub" / "garden-moved.mp4"), k=1, merge_adjacent=False)[0]
    assert hit.path.endswith("garden-moved.mp4")


def test_orphan_clips_from_an_interrupted_commit_are_recovered(indexed):
    index, lib, _ = indexed
    store = index.store
    before = clip_set(index)
    # Simulate a kill between "append clips" and "upsert files row": clips nobody vouches for.
    row = {"clip_id": "deadbeef" * 3, "row_id": 12345, "fingerprint": "nope", "path": str(lib / "ghost.mp4"),
           "start_s": 0.0, "end_s": 10.0, "view": "av", "file_duration_s": 10.0, "indexed_at": 0.0, "model_id": "m"}
    from avsearch.store.tables import _clips_table
    store.tables.clips.add(_clips_table([row], np.ones((1, store.meta.dim), np.float32), store.meta.dim))
    assert len(clip_set(index)) == len(before) + 1
    assert store.recover() == 1
    assert clip_set(index) == before


KILL_SCRIPT = textwrap.dedent("""
    import sys, time
    from avsearch import Index

    def progress(p):
        # Report each finished file; after the third, stall as a slow embedding would, so the
        # parent can SIGKILL this process at a known point in the middle of the run.
        print(p.files_done, flush=True)
        if p.files_done == 3:
            time.sleep(120)

    index = Index.open(sys.argv[1], model="tiny", create=True)
    index.add([sys.argv[2]], decode_workers=1, commit_every_files=1, progress=progress)
""")


def test_sigkill_mid_run_then_rerun_equals_a_clean_run(tmp_path, library):
    from avsearch.media.synth import write_video

    for i in range(4):
        write_video(library / f"extra-{i}.mp4", duration_s=10.0, audio=True, tone_hz=200.0 + 50 * i, seed=20 + i)
    killed_idx = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(killed_idx), str(library)],
                            stdout=subprocess.PIPE, text=True)
    try:
        for line in proc.stdout:
            if line.strip() == "3":
                break
        assert proc.poll() is None, "the indexer finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    total = 9  # 5 good library files + 4 extra; corrupt.mp4 is recorded as failed
    partial = Index.open(killed_idx).stats()["files_ok"]
    assert 1 <= partial < total  # files committed before the kill survive; the rest is missing

    resumed = Index.open(killed_idx)
    report = resumed.add([library])  # also proves the killed process's lock was released
    assert len(report.indexed) == total - partial

    clean = Index.open(tmp_path / "clean", model="tiny", create=True)
    clean.add([library])
    assert clip_set(resumed) == clip_set(clean)
    assert len({r[4] for r in clip_set(resumed)}) == len(clip_set(resumed))
    a = resumed.search("x", k=5, merge_adjacent=False)
    b = clean.search("x", k=5, merge_adjacent=False)
    assert [(h.clip_id, round(h.score, 4)) for h in a] == [(h.clip_id, round(h.score, 4)) for h in b]


def test_second_indexer_is_refused_and_queries_still_work(indexed):
    index, lib, _ = indexed
    with index.store.write_lock():
        with pytest.raises(IndexLockedError, match="being written by"):
            Index.open(index.path).add([lib])
        assert Index.open(index.path).search("x", k=2)  # readers are never blocked


def test_robustness_corpus_never_aborts_and_loses_nothing(tmp_path, library):
    from avsearch.media.synth import make_robustness_corpus

    index = Index.open(tmp_path / "idx", model="tiny", create=True)
    index.add([library])
    good_before = clip_set(index)

    corpus = tmp_path / "corpus"
    expected = make_robustness_corpus(corpus)
    report = index.add([corpus])
    failed = {str(Path(p).relative_to(corpus)): reason for p, reason in report.failed}
    indexed = {str(Path(p).relative_to(corpus)) for p in report.indexed}
    for name, outcome in expected.items():
        if outcome == "ok":
            assert name in indexed, f"{name} should have been indexed; failed with {failed.get(name)}"
        else:
            assert name in failed, f"{name} should have failed"
            assert failed[name] and "Traceback" not in failed[name]
    assert set(expected) == set(failed) | indexed  # every case ended one way or the other
    # nothing indexed before was lost
    assert set(good_before) <= set(clip_set(index))


def test_a_file_indexed_on_its_own_is_split_between_the_decode_workers_with_the_same_clips(tmp_path, monkeypatch):
    # One long file: the second decode worker, finding no other file, takes the second part of it
    # (avsearch.media.decode_files). The clips must be the plan's, once each, and their video
    # vectors those of one sequential decode (one worker, which never splits).
    import time

    from avsearch.media import parallel as parallel_mod
    from avsearch.media.synth import write_video

    lib = tmp_path / "lib"
    write_video(lib / "long.mp4", duration_s=70.0, width=64, height=48, fps=5, audio=True, seed=2, gop=10)
    calls = []
    real = parallel_mod.iter_clips

    def recording(path, ranges, *args, **kwargs):
        calls.append([tuple(r) for r in ranges])
        for clip in real(path, ranges, *args, **kwargs):
            time.sleep(0.05)  # as a full-size frame would take: the tiny file decodes too fast to share
            yield clip

    monkeypatch.setattr(parallel_mod, "iter_clips", recording)
    split = Index.open(tmp_path / "split", model="tiny", create=True)
    split.add([lib])
    assert sorted(c[0][0] for c in calls) == [0.0, 40.0]  # 0-40 s and 40-70 s (both >= 30 s)
    calls.clear()
    whole = Index.open(tmp_path / "whole", model="tiny", create=True)
    whole.add([lib], decode_workers=1)
    assert len(calls) == 1
    assert [r[:4] for r in clip_set(split)] == [r[:4] for r in clip_set(whole)]
    assert len(clip_set(split)) == 7 * 3  # 7 clips x 3 views, no duplicates
    # Video vectors equal (frames are identical); the query scores each clip against one query.
    a = split.search(lib / "long.mp4", k=100, target_views=["video"], merge_adjacent=False)
    b = whole.search(lib / "long.mp4", k=100, target_views=["video"], merge_adjacent=False)
    assert [(h.start_s, round(h.score, 5)) for h in a] == [(h.start_s, round(h.score, 5)) for h in b]
