"""Several files decoded by a few workers, a long file split when a worker runs idle: every clip
once, with the frames of one sequential decode, one final report per file, failures kept to their
file, bounded decoders, and a clean early stop."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from avsearch.errors import MediaError
from avsearch.media import parallel as parallel_mod
from avsearch.media.decode import iter_clips
from avsearch.media.parallel import FileToDecode, decode_files
from avsearch.media.segment import plan_clips
from avsearch.media.synth import write_video


@pytest.fixture(scope="module")
def long_video(tmp_path_factory):
    # A keyframe every second, so a split-off half really seeks instead of decoding from the start;
    # 48 kHz sound, so it is resampled (3:1) and the half's resampler must start on the grid.
    return write_video(tmp_path_factory.mktemp("par") / "long.mp4", duration_s=24.0, width=112, height=84,
                       fps=10, audio=True, sample_rate=48_000, seed=4, gop=10)


@pytest.fixture(scope="module")
def short_video(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("par") / "short.mp4", duration_s=4.0, width=64, height=48,
                       fps=10, audio=True, seed=5, gop=10)


@pytest.fixture
def recorded_lanes(monkeypatch):
    """The (path, first, last clip start) each decoder was started on, and the most decoders at
    once. Each clip of `long_video` takes 30 ms more, as a 1080p file's would: these tiny files
    decode so fast that an idle worker could otherwise find the work already done."""
    lanes, running, peak, lock = [], [0], [0], threading.Lock()
    real = parallel_mod.iter_clips

    def recording(path, ranges, *args, **kwargs):
        with lock:
            lanes.append((str(path), ranges[0][0], ranges[-1][0]))
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        try:
            for clip in real(path, ranges, *args, **kwargs):
                if "long" in str(path):
                    time.sleep(0.03)
                yield clip
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(parallel_mod, "iter_clips", recording)
    return lanes, peak


def collect(reports):
    clips, finals = {}, {}
    for r in reports:
        if r.kind == "clip":
            assert (r.file, r.index) not in clips, "a clip was handed back twice"
            assert r.file not in finals, "a clip came after its file's final report"
            clips[(r.file, r.index)] = r.clip
        else:
            assert r.file not in finals, "two final reports for one file"
            finals[r.file] = r
    return clips, finals


def test_a_lone_file_is_split_between_the_workers_with_the_same_clips(long_video, recorded_lanes):
    lanes, peak = recorded_lanes
    ranges = plan_clips(24.0, clip_s=2.0)
    one = list(iter_clips(long_video, ranges))
    clips, finals = collect(decode_files([FileToDecode(long_video, ranges)], workers=2, min_split_s=6.0))
    assert finals[0].kind == "done" and finals[0].index == len(ranges)
    assert sorted(i for _, i in clips) == list(range(len(ranges)))
    assert len(lanes) >= 2 and any(first > 0 for _, first, _ in lanes), "the file was never split"
    assert peak[0] == 2
    for i, a in enumerate(one):
        b = clips[(0, i)]
        assert (b.start_s, b.end_s) == (a.start_s, a.end_s) == ranges[i]
        assert np.array_equal(a.frames, b.frames)
        assert a.audio.shape == b.audio.shape
        # A split-off half's resampler starts afresh on the same sample grid: float rounding apart,
        # the same samples (off the grid by one 48 kHz sample, a 440 Hz tone differs by ~0.02).
        assert np.abs(a.audio - b.audio).max() < 1e-4


def test_no_split_leaves_a_part_shorter_than_the_minimum(long_video, recorded_lanes):
    lanes, _ = recorded_lanes
    ranges = plan_clips(24.0, clip_s=2.0)
    clips, finals = collect(decode_files([FileToDecode(long_video, ranges)], workers=4, min_split_s=7.0))
    assert finals[0].kind == "done" and len(clips) == len(ranges)
    bounds = sorted(first for _, first, _ in lanes) + [24.0]
    assert len(bounds) >= 3  # split at least once ...
    assert all(b - a >= 7.0 for a, b in zip(bounds, bounds[1:]))  # ... never into a part under 7 s


def test_files_keep_their_workers_busy_before_any_split(long_video, short_video, recorded_lanes):
    # Two workers, a long file first and three short ones: the second worker decodes the short files
    # while the first reads the long one, then takes part of the long one's remainder.
    lanes, peak = recorded_lanes
    files = [FileToDecode(long_video, plan_clips(24.0, clip_s=2.0))] + [
        FileToDecode(short_video, plan_clips(4.0, clip_s=2.0)) for _ in range(3)]
    clips, finals = collect(decode_files(files, workers=2, min_split_s=4.0))
    assert [finals[j].kind for j in range(4)] == ["done"] * 4
    assert [finals[j].index for j in range(4)] == [12, 2, 2, 2]
    assert len(clips) == 18 and peak[0] == 2
    starts = sorted((p, first) for p, first, _ in lanes if first == 0.0)
    assert starts == [(str(long_video), 0.0)] + [(str(short_video), 0.0)] * 3  # each file started once
    assert any(p == str(long_video) and first > 0 for p, first, _ in lanes), "the idle worker never helped"


def test_no_split_when_the_minimum_rules_it_out(long_video, recorded_lanes):
    lanes, _ = recorded_lanes
    clips, finals = collect(decode_files([FileToDecode(long_video, plan_clips(24.0, clip_s=2.0))],
                                         workers=2, min_split_s=100.0))
    assert finals[0].index == 12 and len(lanes) == 1


def test_an_audio_only_decode_is_never_split(long_video, recorded_lanes):
    lanes, _ = recorded_lanes
    clips, finals = collect(decode_files([FileToDecode(long_video, plan_clips(24.0, clip_s=2.0), video=False)],
                                         workers=2, min_split_s=4.0))
    assert finals[0].index == 12 and len(lanes) == 1
    assert all(c.frames is None and c.audio is not None for c in clips.values())


def test_a_failure_is_reported_once_and_stays_with_its_file(long_video, short_video, monkeypatch):
    real = parallel_mod.iter_clips

    def failing_late(path, ranges, *args, **kwargs):
        for clip in real(path, ranges, *args, **kwargs):
            if str(path) == str(long_video) and clip.start_s >= 10.0:
                raise MediaError(f"{path}: decoding failed after 10.0 s (test)")
            yield clip

    monkeypatch.setattr(parallel_mod, "iter_clips", failing_late)
    files = [FileToDecode(long_video, plan_clips(24.0, clip_s=2.0)), FileToDecode(short_video, plan_clips(4.0, clip_s=2.0))]
    clips, finals = collect(decode_files(files, workers=2, min_split_s=4.0))
    assert finals[0].kind == "error" and "after 10.0 s" in str(finals[0].error)
    assert finals[1].kind == "done" and finals[1].index == 2
    assert {(1, 0), (1, 1)} <= set(clips)


def test_stopping_early_ends_the_workers(long_video):
    before = threading.active_count()
    it = decode_files([FileToDecode(long_video, plan_clips(24.0, clip_s=2.0))], workers=2, queue_clips=1, min_split_s=4.0)
    first = next(it)
    it.close()
    assert first.kind == "clip"
    assert threading.active_count() <= before


def test_nothing_to_decode_yields_nothing():
    assert list(decode_files([])) == []


def test_a_split_off_part_whose_seek_fails_is_read_again_from_the_start(long_video, monkeypatch):
    # Some files decode well from the start but fail after a seek; splitting must not fail them.
    calls = []
    real = parallel_mod.iter_clips

    def seek_breaks(path, ranges, *args, seek=True, **kwargs):
        calls.append((ranges[0][0], seek))
        if seek and ranges[0][0] > 5.0:
            raise MediaError(f"{path}: decoding failed after 0.0 s (seek, test)")
        for clip in real(path, ranges, *args, seek=seek, **kwargs):
            time.sleep(0.03)  # slow enough for the second worker to find something to split
            yield clip

    monkeypatch.setattr(parallel_mod, "iter_clips", seek_breaks)
    ranges = plan_clips(24.0, clip_s=2.0)
    clips, finals = collect(decode_files([FileToDecode(long_video, ranges)], workers=2, min_split_s=6.0))
    assert finals[0].kind == "done" and sorted(i for _, i in clips) == list(range(len(ranges)))
    assert (12.0, True) in calls and (12.0, False) in calls  # split at 12 s, seek failed, read again
    one = list(iter_clips(long_video, ranges[6:], seek=False))
    assert all(np.array_equal(a.frames, clips[(0, 6 + i)].frames) for i, a in enumerate(one))


def test_workers_that_die_unexpectedly_raise_instead_of_hanging(long_video, monkeypatch):
    def broken_release(self, lane, error):
        raise AssertionError("bug in the plan")

    monkeypatch.setattr(parallel_mod._Plan, "release", broken_release)
    with pytest.raises(RuntimeError, match="stopped before every file") as caught:
        list(decode_files([FileToDecode(long_video, plan_clips(24.0, clip_s=2.0))], workers=2))
    assert "bug in the plan" in str(caught.value.__cause__)  # the worker's own error is kept


def test_the_default_worker_count_is_half_the_cpus_from_2_to_4():
    # Measured: more than 2 slowed a 2-core machine, more than 4 slowed a 16-core one.
    assert [parallel_mod.default_decode_workers(c) for c in (1, 2, 4, 6, 8, 16, 64)] == [2, 2, 2, 3, 4, 4, 4]
    assert 2 <= parallel_mod.default_decode_workers() <= 4


def test_no_worker_count_means_the_machine_default(long_video, short_video, monkeypatch):
    monkeypatch.setattr(parallel_mod, "default_decode_workers", lambda cpus=None: 3)
    names = set()
    real = parallel_mod.iter_clips

    def recording(*args, **kwargs):
        names.add(threading.current_thread().name)
        time.sleep(0.2)  # every worker gets a file before the first is done
        yield from real(*args, **kwargs)

    monkeypatch.setattr(parallel_mod, "iter_clips", recording)
    files = [FileToDecode(short_video, plan_clips(4.0, clip_s=2.0)) for _ in range(3)]
    clips, finals = collect(decode_files(files, min_split_s=100.0))
    assert names == {"decode-0", "decode-1", "decode-2"}
    assert len(finals) == 3 and len(clips) == 6
