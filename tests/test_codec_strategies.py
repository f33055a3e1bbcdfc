"""Per-codec decode strategies (avsearch.media.strategy): the sampled frames they give, per codec family.

Fixtures are tiny files encoded by PyAV: each frame is a moving texture with a band whose grey
level tells the frame's number, so a sampled frame says which frame it is.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

import av
import numpy as np
import pytest

import avsearch.media.decode as decode_mod
from avsearch.media.decode import DecodeOptions, read_clip
from avsearch.media.fields import first_field
from avsearch.media.sampled_packets import keyframe_packets, sampled_packets
from avsearch.media.strategy import choose_strategy

FPS = 25
SECONDS = 2.0
SIZE = (160, 120)
BAND = 24  # rows at the top whose grey level is the frame number: 20 + 4 * n


def _picture(n: int, width: int, height: int) -> np.ndarray:
    rng = np.random.default_rng(7)
    texture = np.repeat(np.repeat(rng.integers(0, 256, (height // 8 + 1, width // 4 + 1, 3), dtype=np.uint8),
                                  8, axis=0), 8, axis=1)
    img = np.ascontiguousarray(np.roll(texture[:height, : 2 * width], -3 * n, axis=1)[:, :width])
    img[:BAND] = (20 + 4 * n) % 256
    return img


def write_numbered(path: Path, codec: str, *, pix_fmt: str = "yuv420p", options: dict | None = None,
                   size: tuple[int, int] = SIZE, times: list[float] | None = None) -> Path:
    """FPS frames a second for SECONDS (or at `times`, seconds), frame n showing its number."""
    width, height = size
    # Millisecond time stamps for irregular times; 1/FPS otherwise (MPEG-2 takes standard rates only).
    tick = Fraction(1, 1000) if times is not None else Fraction(1, FPS)
    times = times if times is not None else [i / FPS for i in range(int(SECONDS * FPS))]
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=FPS, options=options or {})
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.time_base = stream.codec_context.time_base = tick
        for n, t in enumerate(times):
            frame = av.VideoFrame.from_ndarray(_picture(n, width, height), format="rgb24")
            frame.pts, frame.time_base = int(round(t / tick)), tick
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def frame_numbers(frames: np.ndarray) -> list[float]:
    band = frames[:, 2:12, :, 1].astype(float)  # inside the band at every fixture's size
    return [(b.mean() - 20) / 4 for b in band]


def nearest_frames(instants, times) -> list[int]:
    """The frame number nearest each instant, the earlier on a tie (decode._State.on_video's rule)."""
    times = np.asarray(times)
    return [int(np.flatnonzero(np.abs(times - s) == np.abs(times - s).min())[0]) for s in instants]


INTRA = {  # codec family -> (file name, encoder, pixel format, options)
    "mjpeg": ("mjpeg.avi", "mjpeg", "yuvj420p", None),
    "prores": ("prores.mov", "prores_ks", "yuv422p10le", None),
    "dnxhr": ("dnxhr.mov", "dnxhd", "yuv422p", {"profile": "dnxhr_sq"}),
    "jpeg2000": ("j2k.mkv", "jpeg2000", "yuv420p", None),
    "rawvideo": ("raw.mkv", "rawvideo", "yuv420p", None),
    "dv": ("dv.avi", "dvvideo", "yuv420p", None),
}
INTER = {
    "vp9": ("vp9.webm", "libvpx-vp9", "yuv420p", {"deadline": "realtime", "cpu-used": "8"}),
    "av1": ("av1.mkv", "libsvtav1", "yuv420p", {"preset": "12"}),
    "h264": ("h264.mp4", "libx264", "yuv420p", {"preset": "veryfast"}),
    "hevc": ("hevc.mp4", "libx265", "yuv420p", {"x265-params": "log-level=error:bframes=3"}),
    "mpeg2": ("mpeg2.mkv", "mpeg2video", "yuv420p", {"bf": "2", "g": "12"}),
}


@pytest.fixture(scope="module")
def family_files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("codecs")
    files = {}
    for family, (name, codec, pix_fmt, options) in (INTRA | INTER).items():
        if codec not in av.codecs_available:
            continue
        # DNxHR: sides in whole 16-pixel blocks; DV: PAL's frame size only.
        size = {"dnxhd": (256, 144), "dvvideo": (720, 576)}.get(codec, SIZE)
        files[family] = write_numbered(folder / name, codec, pix_fmt=pix_fmt, options=options, size=size)
    return files


def _file(files, family) -> Path:
    if family not in files:
        # a failure, not a skip: a codec family left untested must not count as a pass
        pytest.fail(f"this PyAV has no encoder for {family}; install a PyAV wheel with FFmpeg's encoders (pip install av)")
    return files[family]


def _count_decoded_packets(monkeypatch) -> list[int]:
    """Counts the video packets that reach the decoder through sampled_packets."""
    seen = [0]

    def counting(packets, stream, is_taken):
        for packet in sampled_packets(packets, stream, is_taken):
            seen[0] += packet.stream is stream and packet.size > 0
            yield packet

    monkeypatch.setattr(decode_mod, "sampled_packets", counting)
    return seen


@pytest.mark.parametrize("family", list(INTRA))
def test_intra_only_codecs_decode_only_the_sampled_packets_and_give_the_same_frames(family_files, family, monkeypatch):
    path = _file(family_files, family)
    assert choose_strategy(av.open(str(path)).streams.video[0].codec_context.name, DecodeOptions()).drop_unsampled
    with monkeypatch.context() as m:  # the same decode, every packet given to the decoder
        m.setattr(decode_mod, "sampled_packets", lambda packets, stream, is_taken: packets)
        every_frame = read_clip(path).frames
    decoded = _count_decoded_packets(monkeypatch)
    clip = read_clip(path)
    # 2 fps over 2 s: 4 instants, each the nearest of 50 frames; one packet each (+1: the last packet
    # always goes, the instants after it would take it), not 50.
    assert len(clip.frames) == 4
    assert 4 <= decoded[0] <= 5
    assert np.array_equal(clip.frames, every_frame)
    instants = decode_mod.sample_times(0.0, SECONDS, 2.0, 128)
    expected = nearest_frames(instants, [i / FPS for i in range(int(SECONDS * FPS))])
    assert np.allclose(frame_numbers(clip.frames), expected, atol=0.6)


def test_dropping_keeps_the_nearest_frame_at_irregular_times(tmp_path):
    # Variable frame rate: gaps of 10-90 ms, and the sampling at 7 fps puts instants near midpoints.
    rng = np.random.default_rng(3)
    times = np.round(np.cumsum(rng.uniform(0.01, 0.09, 60)), 3).tolist()
    path = write_numbered(tmp_path / "vfr.mkv", "mjpeg", pix_fmt="yuvj420p", times=times)
    options = DecodeOptions(fps=7.0)
    clip = read_clip(path, 0.0, 2.5, options=options)
    every_frame = read_clip(path, 0.0, 2.5, options=DecodeOptions(fps=7.0, by_codec=False, skip_frames="none"))
    assert np.array_equal(clip.frames, every_frame.frames)
    expected = nearest_frames(decode_mod.sample_times(0.0, 2.5, 7.0, 128), times)
    assert np.allclose(frame_numbers(clip.frames), expected, atol=0.6)


def test_dropping_gives_the_same_clips_after_a_seek(tmp_path):
    # Ranges past 5 s: iter_clips seeks (as a second decode worker does for its half of a file).
    path = write_numbered(tmp_path / "long.avi", "mjpeg", pix_fmt="yuvj420p", times=[i / FPS for i in range(8 * FPS)])
    ranges = [(5.5, 6.5), (6.5, 7.9)]
    new = list(decode_mod.iter_clips(path, ranges))
    old = list(decode_mod.iter_clips(path, ranges, DecodeOptions(by_codec=False, skip_frames="none")))
    assert [len(c.frames) for c in new] == [2, 3]
    assert all(np.array_equal(a.frames, b.frames) for a, b in zip(new, old, strict=True))


@pytest.mark.parametrize("family", list(INTER))
def test_inter_frame_codecs_sample_the_nearest_decoded_frame(family_files, family):
    path = _file(family_files, family)
    clip = read_clip(path)
    assert len(clip.frames) == 4
    instants = decode_mod.sample_times(0.0, SECONDS, 2.0, 128)
    expected = nearest_frames(instants, [i / FPS for i in range(int(SECONDS * FPS))])
    # Skipped non-reference (or B-) frames: a sample may be a frame or two from its instant, never a GOP.
    assert np.allclose(frame_numbers(clip.frames), expected, atol=2.6), frame_numbers(clip.frames)


def test_hevc_samples_move_with_time_under_the_default_skipping(family_files):
    # x265 codes P-pictures as B-slices: skipping every B-slice ("bidir", before) left the keyframe
    # alone, and all four samples showed frame 0 or 1.
    numbers = frame_numbers(read_clip(_file(family_files, "hevc")).frames)
    assert numbers[-1] - numbers[0] > 30


@pytest.mark.parametrize("family, threads", [("vp9", "SLICE"), ("h264", "SLICE"), ("hevc", "AUTO"),
                                             ("prores", "AUTO")])
def test_each_family_gets_its_threading(family_files, family, threads):
    path = _file(family_files, family)
    name = av.open(str(path)).streams.video[0].codec_context.name
    assert choose_strategy(name, DecodeOptions()).thread_type == threads
    assert choose_strategy(name, DecodeOptions(thread_type="SLICE")).thread_type == "SLICE"  # asked for: kept


def test_vp9_keyframes_option_decodes_keyframes_only(tmp_path):
    # FFmpeg's VP9 decoder ignores skip_frame; the keyframes option must still mean keyframes.
    path = write_numbered(tmp_path / "vp9-gop10.webm", "libvpx-vp9", options={"deadline": "realtime",
                                                                             "cpu-used": "8", "g": "10"})
    numbers = frame_numbers(read_clip(path, options=DecodeOptions(skip_frames="keyframes")).frames)
    assert all(abs(n - 10 * round(n / 10)) < 0.6 for n in numbers), numbers
    assert len({round(n) for n in numbers}) > 1  # not the first keyframe alone


# -- the packet filter on its own ---------------------------------------------------------------


V = SimpleNamespace(time_base=Fraction(1, 100))  # a video stream
A = SimpleNamespace(time_base=Fraction(1, 100))  # an audio stream


def _packets(times, stream=V, keyframe=True):
    return [SimpleNamespace(stream=stream, pts=None if t is None else int(t * 100), time_base=Fraction(1, 100),
                            is_keyframe=keyframe, size=1 if t is not None else 0) for t in times]


def test_filter_holds_one_packet_and_always_passes_the_last_and_other_streams():
    video = _packets([0.0, 0.1, 0.2, 0.3])
    audio = _packets([0.05], stream=A)
    source = iter([video[0], audio[0], *video[1:]])
    out = list(sampled_packets(source, V, lambda prev, t, nxt: t == 0.1))
    assert out == [audio[0], video[1], video[3]]


def test_filter_stops_dropping_when_times_go_backwards():
    video = _packets([0.0, 0.1, 0.05, 0.2, 0.3])
    out = list(sampled_packets(iter(video), V, lambda *a: False))
    assert out == [video[1], video[2], video[3], video[4]]  # from the step back on, everything


def test_filter_passes_the_held_packet_before_a_demuxer_error():
    video = _packets([0.0, 0.1])

    def source():
        yield from video
        raise av.FFmpegError(5, "I/O error")

    gen = sampled_packets(source(), V, lambda *a: False)
    assert next(gen) is video[1]
    with pytest.raises(av.FFmpegError):
        next(gen)


# -- interlaced sources ------------------------------------------------------------------------


def write_combed(path: Path, codec: str, size: tuple[int, int], options: dict) -> Path:
    """Interlaced frames whose two fields differ completely: even lines 40, odd lines 200."""
    width, height = size
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=25, options=options)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        img = np.empty((height, width, 3), np.uint8)
        img[0::2], img[1::2] = 40, 200
        for _ in range(25):
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


@pytest.mark.parametrize("codec, size, options", [("dvvideo", (720, 576), {}),
                                                  ("mpeg2video", (352, 288), {"flags": "+ildct+ilme", "b": "8M"})])
def test_interlaced_frames_are_sampled_one_field_at_a_time(tmp_path, codec, size, options):
    path = write_combed(tmp_path / f"combed-{codec}.avi", codec, size, options)
    frames = read_clip(path).frames
    # One field: a flat picture at one field's level; the whole frame scaled down mixes both (~120).
    assert frames.std() < 3
    assert min(abs(frames.mean() - 40), abs(frames.mean() - 200)) < 4
    whole = read_clip(path, options=DecodeOptions(by_codec=False)).frames
    assert abs(whole.mean() - 120) < 10


def test_first_field_follows_the_field_order():
    rgb = np.arange(8)[:, None, None].repeat(2, axis=1).repeat(3, axis=2)
    assert first_field(rgb, 0)[:, 0, 0].tolist() == [0, 2, 4, 6]  # unknown: top
    assert first_field(rgb, 2)[:, 0, 0].tolist() == [0, 2, 4, 6]  # TT
    assert first_field(rgb, 3)[:, 0, 0].tolist() == [1, 3, 5, 7]  # BB
    assert first_field(rgb, 4)[:, 0, 0].tolist() == [1, 3, 5, 7]  # TB: bottom displayed first


# -- audio codecs --------------------------------------------------------------------------------

AUDIO = {  # name -> (file name, encoder, sample format, rate, options)
    "aac": ("a.m4a", "aac", "fltp", 48000, None),
    "mp3": ("a.mp3", "libmp3lame", "fltp", 44100, None),
    "opus": ("a.opus", "libopus", "flt", 48000, None),
    "vorbis": ("a.ogg", "vorbis", "fltp", 48000, {"strict": "experimental"}),
    "flac": ("a.flac", "flac", "s16", 48000, None),
    "pcm_s16le": ("s16.wav", "pcm_s16le", "s16", 48000, None),
    "pcm_s24le": ("s24.wav", "pcm_s24le", "s32", 48000, None),
    "pcm_s32le": ("s32.wav", "pcm_s32le", "s32", 48000, None),
    "pcm_f32le": ("f32.wav", "pcm_f32le", "flt", 48000, None),
    "ac3": ("a.ac3", "ac3", "fltp", 48000, None),
}
TONE_AT_S = 0.5  # silence, then a 1 kHz tone from here to the end


def write_tone(path: Path, codec: str, fmt: str, rate: int, options: dict | None) -> Path:
    n = int(1.5 * rate)
    t = np.arange(n) / rate
    wave = np.where(t >= TONE_AT_S, 0.5 * np.sin(2 * np.pi * 1000 * t), 0.0)
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=rate, layout="stereo", options=options or {})
        step = stream.codec_context.frame_size or 1024
        for start in range(0, n, step):
            chunk = np.stack([wave[start : start + step]] * 2)
            if fmt in ("s16", "s32"):
                scale = 32767 if fmt == "s16" else 2**31 - 1
                data = (chunk * scale).astype(np.int16 if fmt == "s16" else np.int32).T.reshape(1, -1)
            elif fmt == "flt":
                data = chunk.astype(np.float32).T.reshape(1, -1)
            else:
                data = chunk.astype(np.float32)
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(data), format=fmt, layout="stereo")
            frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


@pytest.mark.parametrize("name", list(AUDIO))
def test_audio_codecs_decode_to_16k_mono_with_the_tone_in_place(tmp_path, name):
    file_name, codec, fmt, rate, options = AUDIO[name]
    if codec not in av.codecs_available:
        pytest.fail(f"this PyAV has no {codec} encoder; install a PyAV wheel with FFmpeg's encoders (pip install av)")
    path = write_tone(tmp_path / file_name, codec, fmt, rate, options)
    audio = read_clip(path, 0.0, 1.4, video=False).audio
    assert audio.dtype == np.float32 and len(audio) == int(1.4 * 16000)
    envelope = np.convolve(np.abs(audio), np.ones(80) / 80, mode="same")
    onset = np.argmax(envelope > 0.15) / 16000
    assert abs(onset - TONE_AT_S) < 0.02, onset  # the tone starts where it was put (codec delays removed)
    tone = audio[int(0.7 * 16000) : int(1.3 * 16000)]
    spectrum = np.abs(np.fft.rfft(tone))
    assert abs(np.argmax(spectrum) * 16000 / len(tone) - 1000) < 5  # 1 kHz survives the resampling
    # A 0.5 amplitude tone in both channels, mixed to mono as FFmpeg does (each at -3 dB): 0.71.
    assert 0.64 < np.sqrt(2) * tone.std() < 0.78


def test_keyframe_filter_passes_everything_until_a_keyframe_is_flagged():
    unflagged = _packets([0.0, 0.1], keyframe=False)
    assert list(keyframe_packets(iter(unflagged), V)) == unflagged
    key, inter = _packets([0.0])[0], _packets([0.1], keyframe=False)[0]
    audio = _packets([0.05], stream=A)[0]
    assert list(keyframe_packets(iter([key, audio, inter]), V)) == [key, audio]


def test_an_index_made_before_per_codec_decoding_keeps_decoding_its_files_one_way(tmp_path):
    """The decoding is an index setting: files added later to an older index are decoded as its
    first ones were, so their clips stay comparable."""
    from avsearch import Index
    from avsearch.store.meta import IndexSettings

    assert IndexSettings().by_codec is True
    assert IndexSettings.from_dict({"clip_s": 10.0, "frames": "bidir"}).by_codec is False  # no key: older index
    for by_codec in (True, False):
        index = Index.open(tmp_path / str(by_codec), model="tiny", create=True, settings=IndexSettings(by_codec=by_codec))
        assert index._decode_options().by_codec is by_codec
