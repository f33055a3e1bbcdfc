"""Decode options of the media layer (issue #4, item 5): frame skipping, the resize paths and
converting a decoded frame once however many sample instants it answers."""

from __future__ import annotations

import numpy as np
import pytest

from avsearch.media import read_clip
from avsearch.media import decode as decode_mod
from avsearch.media.decode import DecodeOptions
from avsearch.media.resize import smart_resize
from avsearch.media.synth import write_video


@pytest.fixture(scope="module")
def wide(tmp_path_factory):
    """640x360 frames: above WAVE's pixel budget, so both resize paths really scale."""
    return write_video(tmp_path_factory.mktemp("dec") / "wide.mp4", duration_s=2.0, width=640, height=360,
                       fps=10, audio=True, seed=5)


def test_swscale_resize_gives_the_reference_size_and_nearly_the_reference_pixels(wide):
    pil = read_clip(wide, options=DecodeOptions(resize="pil")).frames
    fast = read_clip(wide, options=DecodeOptions(resize="swscale")).frames
    assert pil.shape[1:3] == smart_resize(360, 640) == fast.shape[1:3]
    assert pil.shape == fast.shape and fast.dtype == np.uint8
    diff = np.abs(pil.astype(np.int16) - fast.astype(np.int16))
    # Two bicubic kernels (PIL a=-0.5 on RGB, swscale on YUV planes): close, not identical.
    assert 0 < diff.mean() < 3.0, diff.mean()


def test_unknown_decode_options_are_refused():
    with pytest.raises(ValueError, match="choose one of torch, pil, swscale"):
        DecodeOptions(resize="nearest")
    with pytest.raises(ValueError, match="skip_frames"):
        DecodeOptions(skip_frames="some")


def test_a_frame_answering_many_sample_instants_is_converted_once(tmp_path, monkeypatch):
    # 1 frame per second sampled at 4 fps: each decoded frame is the nearest one for ~4 instants.
    path = write_video(tmp_path / "sparse.mp4", duration_s=4.0, fps=1, audio=False, seed=9)
    calls = []
    original = decode_mod._State._to_rgb

    def counting(self, frame):
        calls.append(frame.pts)
        return original(self, frame)

    monkeypatch.setattr(decode_mod._State, "_to_rgb", counting)
    frames = read_clip(path, options=DecodeOptions(fps=4.0)).frames
    assert len(frames) == 16
    assert len(calls) == len(set(calls)) <= 5  # each distinct frame once (4 frames, +1 at most at a boundary)
    # Instants sharing a frame got the same picture.
    assert sum(not np.array_equal(a, b) for a, b in zip(frames[:-1], frames[1:])) == len(calls) - 1


@pytest.mark.parametrize("skip", ["none", "nonref", "keyframes"])
def test_every_skip_mode_fills_every_sample_instant(wide, skip):
    clip = read_clip(wide, options=DecodeOptions(skip_frames=skip))
    assert clip.frames.shape[0] == round(clip.end_s * 2)  # 2 fps (the AAC track makes the file ~2.05 s)
    assert clip.audio is not None and len(clip.audio) == round(clip.end_s * 16_000)
    distinct = len({f.tobytes() for f in clip.frames})
    # The picture moves, so decoded frames differ; keyframe-only decoding has one frame here (one GOP).
    assert distinct == 1 if skip == "keyframes" else distinct > 1


def _with_b_frames(path, fps: int, seconds: float, *, fixed: bool = False):
    """H.264 with x264's B-frames (synth's test files have none): adaptive runs on a picture that
    changes everywhere, or (fixed) strict IBBBP runs on a still picture with one moving block."""
    import av

    options = {"preset": "veryfast", "bframes": "3"} | ({"x264-params": "b-adapt=0"} if fixed else {})
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=fps, options=options)
        vs.width, vs.height, vs.pix_fmt = 112, 84, "yuv420p"
        rng = np.random.default_rng(0)
        for i in range(int(fps * seconds)):
            if fixed:
                img = np.full((84, 112, 3), 100, np.uint8)
                img[10:20, (i * 3) % 100: (i * 3) % 100 + 10] = 250
            else:
                img = np.full((84, 112, 3), (i * 7) % 256, np.uint8)
                img[:, (i * 3) % 112] = rng.integers(0, 255, 3)
            for packet in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in vs.encode(None):
            out.mux(packet)
    return path


@pytest.mark.parametrize("fixed", [False, True], ids=["adaptive-b", "fixed-ibbbp"])
def test_skipping_b_frames_falls_back_when_decoded_frames_get_too_sparse(tmp_path, fixed):
    # 4 fps with B-frames: I/P frames alone are ~1 s apart, wider than half a 2 fps slot, so
    # "bidir" must switch to "nonref" after the first gap and from then on give nonref's frames.
    # The switch takes effect at once only without frame threads (which have packets in flight
    # under the old setting): with thread_type "AUTO" the fixed-IBBBP file's first sample after
    # the switch still came from an I/P frame. bidir's default threading is slice threading.
    path = _with_b_frames(tmp_path / "lowfps.mp4", fps=4, seconds=6.0, fixed=fixed)
    ranges = [(0.0, 2.0), (2.0, 6.0)]
    from avsearch.media.decode import iter_clips

    bidir = [c.frames for c in iter_clips(path, ranges, DecodeOptions(skip_frames="bidir"), audio=False)]
    nonref = [c.frames for c in iter_clips(path, ranges, DecodeOptions(skip_frames="nonref"), audio=False)]
    assert np.array_equal(bidir[1], nonref[1])
    # Without the fallback, the later clip would repeat I/P frames: fewer distinct pictures.
    assert len({f.tobytes() for f in bidir[1]}) == len({f.tobytes() for f in nonref[1]}) > 4


def test_skipping_b_frames_keeps_going_when_i_and_p_frames_are_dense(tmp_path):
    path = _with_b_frames(tmp_path / "dense.mp4", fps=30, seconds=2.0)
    frames = read_clip(path, options=DecodeOptions(skip_frames="bidir"), audio=False).frames
    assert len(frames) == 4 and len({f.tobytes() for f in frames}) == 4


def test_decoding_stops_right_after_the_last_clip_still_wanted(tmp_path):
    # A split in parallel.py lowers how many clips a running decoder must deliver; it must stop
    # after the new last one, not decode (and deliver) the clips that another decoder now has.
    from avsearch.media.decode import iter_clips
    from avsearch.media.segment import plan_clips

    path = write_video(tmp_path / "v.mp4", duration_s=12.0, width=64, height=48, fps=10, audio=True, seed=1, gop=10)
    ranges = plan_clips(12.0, clip_s=2.0)
    wanted = [len(ranges)]
    got = []
    for clip in iter_clips(path, ranges, wanted=lambda: wanted[0]):
        got.append(clip.start_s)
        wanted[0] = 3  # shrinks while the first clip is being handed out
    assert got == [0.0, 2.0, 4.0]
    assert [c.start_s for c in iter_clips(path, ranges)] == [r[0] for r in ranges]  # and all without it
