"""A long file is committed in parts: an interrupted run keeps them, the next resumes after them
and ends with what one uninterrupted run gives; a failure still means no clips."""

from __future__ import annotations

import pytest

from avsearch import Index
from avsearch.errors import MediaError
from avsearch.media import parallel as parallel_mod
from avsearch.store.tables import Tables
from test_indexer import clip_set  # (path, start, end, view, clip_id) of every clip, sorted

PART_S = 20.0  # 7 clips of 10 s: parts of clips 0-1, 2-3, 4-5; clip 6 waits for the final commit
# Each clip embedded as soon as it is decoded (the tiny file would otherwise be one batch at the
# end, leaving no part to commit early); the same for every run compared.
RUN = dict(decode_workers=1, max_batch_tokens=1)


@pytest.fixture(scope="module")
def long_lib(tmp_path_factory):
    from avsearch.media.synth import write_video

    lib = tmp_path_factory.mktemp("parts") / "lib"
    write_video(lib / "long.mp4", duration_s=70.0, width=64, height=48, fps=5, audio=True, seed=2, gop=10)
    return lib


@pytest.fixture(scope="module")
def clean(tmp_path_factory, long_lib):
    index = Index.open(tmp_path_factory.mktemp("parts") / "clean", model="tiny", create=True)
    index.add([long_lib], partial_commit_s=float("inf"), **RUN)
    return index


def video_scores(index: Index, lib) -> list[tuple]:
    # Video vectors only: frames after a seek are the same pixels, sound only to float rounding.
    hits = index.search(lib / "long.mp4", k=100, target_views=["video"], merge_adjacent=False)
    return [(h.start_s, round(h.score, 5)) for h in hits]


@pytest.fixture
def commits(monkeypatch):
    """(status, n_clips, clip rows written) of every files row committed, in order."""
    seen = []
    real = Tables.commit

    def recording(self, batch):
        real(self, batch)
        seen.extend((c.file_row["status"], c.file_row["n_clips"], len(c.clip_rows)) for c in batch)

    monkeypatch.setattr(Tables, "commit", recording)
    return seen


def test_parts_are_committed_as_they_are_embedded_and_add_up_to_one_run(tmp_path, long_lib, clean, commits):
    index = Index.open(tmp_path / "idx", model="tiny", create=True)
    index.add([long_lib], partial_commit_s=PART_S, **RUN)
    # Three views per clip: parts of 2 clips are 6 rows; the final commit holds the last clip.
    assert commits == [("partial", 6, 6), ("partial", 12, 6), ("partial", 18, 6), ("ok", 21, 3)]
    assert clip_set(index) == clip_set(clean)
    assert video_scores(index, long_lib) == video_scores(clean, long_lib)
    assert index.stats()["files_ok"] == 1 and index.stats()["files_partial"] == 0


def interrupted_after_two_parts(path, long_lib, commits, monkeypatch) -> Index:
    recording = Tables.commit

    def interrupting(self, batch):
        recording(self, batch)
        if sum(s == "partial" for s, _, _ in commits) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(Tables, "commit", interrupting)
    with pytest.raises(KeyboardInterrupt):
        Index.open(path, model="tiny", create=True).add([long_lib], partial_commit_s=PART_S, **RUN)
    monkeypatch.setattr(Tables, "commit", recording)
    commits.clear()
    return Index.open(path)


def write_clips_as_a_killed_commit(index: Index, clean: Index, starts) -> None:
    """The clips (every view, real vectors) of these time ranges appended in one go, as a part
    commit killed before its files row leaves them."""
    from avsearch.store.tables import _clips_table

    meta = clean.store.tables.clip_meta(" OR ".join(f"start_s = {a}" for a in starts))
    vectors = clean.store.vectors(meta.column("row_id").to_pylist())
    index.store.tables.clips.add(_clips_table(meta.to_pylist(), vectors, index.store.meta.dim))


@pytest.fixture
def decoded_from(monkeypatch):
    """The first clip start of every decoder started."""
    starts = []
    real_iter = parallel_mod.iter_clips

    def recording(p, ranges, *args, **kwargs):
        starts.append(ranges[0][0])
        yield from real_iter(p, ranges, *args, **kwargs)

    monkeypatch.setattr(parallel_mod, "iter_clips", recording)
    return starts


def test_an_interrupted_file_keeps_its_parts_and_the_next_run_resumes_after_them(tmp_path, long_lib, clean,
                                                                               commits, decoded_from, monkeypatch):
    half = interrupted_after_two_parts(tmp_path / "idx", long_lib, commits, monkeypatch)
    stats = half.stats()
    assert stats["files_partial"] == 1 and stats["files_ok"] == 0 and stats["clips"] == 12
    assert {r[1] for r in clip_set(half)} == {0.0, 10.0, 20.0, 30.0}
    assert half.search("x", k=3)  # committed parts are searchable meanwhile
    assert half.plan([long_lib]).counts()["resume"] == 1

    # A third part written, then the run killed before that part's files row: its clips are
    # complete and vouched for by the partial row; the re-run keeps them and decodes only what has
    # no clips, never writing a clip id twice.
    write_clips_as_a_killed_commit(half, clean, [40.0])
    assert half.stats()["clips"] == 15
    decoded_from.clear()
    resumed = Index.open(half.path)
    report = resumed.add([long_lib], partial_commit_s=PART_S, **RUN)
    assert report.recovered_orphans == 0
    assert decoded_from == [50.0]  # only the clips with nothing committed are decoded
    assert commits == [("ok", 21, 6)]
    assert clip_set(resumed) == clip_set(clean)  # no duplicate, nothing missing
    assert video_scores(resumed, long_lib) == video_scores(clean, long_lib)
    assert resumed.stats()["files_ok"] == 1 and resumed.stats()["files_partial"] == 0


def test_a_file_whose_final_commit_wrote_every_clip_but_not_its_row_is_finished_without_decoding(
        tmp_path, long_lib, clean, commits, monkeypatch):
    half = interrupted_after_two_parts(tmp_path / "idx", long_lib, commits, monkeypatch)
    write_clips_as_a_killed_commit(half, clean, [40.0, 50.0, 60.0])
    starts = []
    monkeypatch.setattr(parallel_mod, "iter_clips", lambda *a, **k: starts.append(a) or iter(()))
    Index.open(half.path).add([long_lib], partial_commit_s=PART_S, **RUN)
    assert starts == [] and commits == [("ok", 21, 0)]
    assert clip_set(Index.open(half.path)) == clip_set(clean)


def test_parts_of_a_file_split_between_decoders_are_committed_out_of_order(tmp_path, long_lib, clean, commits,
                                                                         monkeypatch):
    # Two decode workers split the lone file (0-40 s, 40-70 s): clips are embedded out of time
    # order, and parts are whatever is embedded, not a prefix, so memory stays bounded anyway.
    import time

    real_iter = parallel_mod.iter_clips

    def slow(p, ranges, *args, **kwargs):
        for clip in real_iter(p, ranges, *args, **kwargs):
            time.sleep(0.05)  # as a full-size frame would take: the tiny file decodes too fast to share
            yield clip

    monkeypatch.setattr(parallel_mod, "iter_clips", slow)
    part_starts = []
    recording = Tables.commit

    def with_starts(self, batch):
        recording(self, batch)
        part_starts.extend(sorted({r["start_s"] for r in c.clip_rows}) for c in batch if c.file_row["status"] == "partial")

    monkeypatch.setattr(Tables, "commit", with_starts)
    index = Index.open(tmp_path / "idx", model="tiny", create=True)
    index.add([long_lib], partial_commit_s=PART_S, decode_workers=2, max_batch_tokens=1)
    assert len(part_starts) >= 2 and commits[-1][:2] == ("ok", 21)
    assert any(p[0] < 40.0 <= p[-1] for p in part_starts), part_starts  # a part from both halves
    assert sum(n for _, _, n in commits) == 21  # every clip row written once
    assert [r[:4] for r in clip_set(index)] == [r[:4] for r in clip_set(clean)]
    assert video_scores(index, long_lib) == video_scores(clean, long_lib)


def test_a_file_that_fails_after_parts_were_committed_keeps_no_clips(tmp_path, long_lib, commits, monkeypatch):
    real_iter = parallel_mod.iter_clips

    def failing_at_50s(p, ranges, *args, **kwargs):
        for clip in real_iter(p, ranges, *args, **kwargs):
            if clip.start_s >= 50.0:
                raise MediaError(f"{p}: decoding failed after 50.0 s (test)")
            yield clip

    monkeypatch.setattr(parallel_mod, "iter_clips", failing_at_50s)
    index = Index.open(tmp_path / "idx", model="tiny", create=True)
    report = index.add([long_lib], partial_commit_s=PART_S, **RUN)
    assert [s for s, _, _ in commits][:2] == ["partial", "partial"] and commits[-1][0] == "failed"
    assert report.failed and "50.0 s" in report.failed[0][1]
    assert index.stats()["clips"] == 0 and index.stats()["files_failed"] == 1


def test_a_changed_long_file_drops_the_old_contents_clips_with_its_first_part(tmp_path, commits):
    from avsearch.media.synth import write_video

    lib = tmp_path / "lib"
    write_video(lib / "long.mp4", duration_s=70.0, width=64, height=48, fps=5, audio=True, seed=2, gop=10)
    index = Index.open(tmp_path / "idx", model="tiny", create=True)
    index.add([lib], partial_commit_s=float("inf"), **RUN)
    old_fp = index.store.file_rows()[0]["fingerprint"]
    write_video(lib / "long.mp4", duration_s=70.0, width=64, height=48, fps=5, audio=True, seed=3, gop=10)
    commits.clear()
    index.add([lib], partial_commit_s=PART_S, **RUN)
    assert [s for s, _, _ in commits] == ["partial", "partial", "partial", "ok"]
    fps = set(index.store.tables.clip_meta(columns=["fingerprint"]).column("fingerprint").to_pylist())
    assert old_fp not in fps and len(fps) == 1 and index.stats()["clips"] == 21
