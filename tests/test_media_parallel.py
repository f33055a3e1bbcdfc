"""One file decoded by several segment decoders (issue #4, item 3): the same clips and frames as
one decoder, in order, with a bounded number of segments in flight and a clean early stop."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from avsearch.errors import MediaError
from avsearch.media import parallel as parallel_mod
from avsearch.media.decode import iter_clips
from avsearch.media.parallel import iter_clips_parallel, segments_of
from avsearch.media.segment import plan_clips
from avsearch.media.synth import write_video


@pytest.fixture(scope="module")
def long_video(tmp_path_factory):
    # A keyframe every second, so later segments really seek instead of decoding from the start;
    # 48 kHz sound, so it is resampled (3:1) and a segment's resampler must start on the grid.
    return write_video(tmp_path_factory.mktemp("par") / "long.mp4", duration_s=24.0, width=112, height=84,
                       fps=10, audio=True, sample_rate=48_000, seed=4, gop=10)


def test_segments_group_consecutive_clips():
    ranges = plan_clips(95.0, clip_s=10.0)
    groups = segments_of(ranges, 30.0)
    assert [len(g) for g in groups] == [3, 3, 3, 1]
    assert [r for g in groups for r in g] == ranges


def test_parallel_decoding_gives_the_same_clips_and_frames(long_video):
    ranges = plan_clips(24.0, clip_s=2.0)
    one = list(iter_clips(long_video, ranges))
    many = list(iter_clips_parallel(long_video, ranges, workers=2, segment_s=6.0))
    assert [(c.start_s, c.end_s) for c in many] == [(c.start_s, c.end_s) for c in one] == ranges
    for a, b in zip(one, many):
        assert np.array_equal(a.frames, b.frames)
        assert a.audio.shape == b.audio.shape
        # Each segment's resampler starts afresh, on the same sample grid: float rounding apart,
        # the same samples (off the grid by one 48 kHz sample, a 440 Hz tone differs by ~0.02).
        assert np.abs(a.audio - b.audio).max() < 1e-4


def test_no_more_segments_in_flight_than_workers(long_video, monkeypatch):
    running, peak, lock = [0], [0], threading.Lock()
    real = parallel_mod.iter_clips

    def counting(*args, **kwargs):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        try:
            yield from real(*args, **kwargs)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(parallel_mod, "iter_clips", counting)
    clips = list(iter_clips_parallel(long_video, plan_clips(24.0, clip_s=2.0), workers=2, segment_s=4.0))
    assert len(clips) == 12 and peak[0] == 2


def test_stopping_early_ends_the_workers(long_video):
    before = threading.active_count()
    it = iter_clips_parallel(long_video, plan_clips(24.0, clip_s=2.0), workers=2, segment_s=4.0)
    first = next(it)
    it.close()
    assert first.start_s == 0.0
    assert threading.active_count() <= before


def test_a_failing_segment_ends_the_iteration_after_the_clips_before_it(long_video, monkeypatch):
    real = parallel_mod.iter_clips

    def failing_late(path, group, *args, **kwargs):
        for clip in real(path, group, *args, **kwargs):
            if clip.start_s >= 10.0:
                raise MediaError(f"{path}: decoding failed after 10.0 s (test)")
            yield clip

    monkeypatch.setattr(parallel_mod, "iter_clips", failing_late)
    got = []
    with pytest.raises(MediaError, match="after 10.0 s"):
        for clip in iter_clips_parallel(long_video, plan_clips(24.0, clip_s=2.0), workers=2, segment_s=4.0):
            got.append(clip.start_s)
    assert got == [0.0, 2.0, 4.0, 6.0, 8.0]
