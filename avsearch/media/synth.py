"""Generated media for tests, demos and benchmarks: small, deterministic, made with PyAV.

Each file's picture and sound depend on its seed and tone, so different files embed differently.
"""

from __future__ import annotations

import os
import struct
from fractions import Fraction
from pathlib import Path
from typing import Optional

import av
import numpy as np
import soundfile as sf

from avsearch.media.encode import encode_audio

VIDEO_CODEC = "libx264" if "libx264" in av.codecs_available else "mpeg4"


def _picture(t: float, width: int, height: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(30, 220, size=3)
    img = np.empty((height, width, 3), dtype=np.uint8)
    img[:] = base
    # A square moving across the frame; its colour is the seed's too.
    size = max(4, min(width, height) // 3)
    x = int((t * 20 * (1 + seed % 3)) % max(1, width - size))
    y = int((height - size) * (0.5 + 0.4 * np.sin(t + seed)))
    img[y : y + size, x : x + size] = 255 - base
    return img


def _tone(n: int, rate: int, tone_hz: float, seed: int, noise: bool) -> np.ndarray:
    t = np.arange(n) / rate
    wave = 0.4 * np.sin(2 * np.pi * tone_hz * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 0.5 * t + seed))
    if noise:
        wave += 0.1 * np.random.default_rng(seed).standard_normal(n)
    return wave.astype(np.float32)


def write_video(path: str | Path, *, duration_s: float, width: int = 64, height: int = 48, fps: int = 10,
                audio: bool = True, sample_rate: int = 16_000, channels: int = 1, tone_hz: float = 440.0,
                seed: int = 0, codec: str = VIDEO_CODEC, rotation: int = 0, gop: Optional[int] = None,
                frame_times: Optional[list[float]] = None) -> Path:
    """An H.264 (or MPEG-4) video with an optional AAC tone track (WebM: VP8 with Opus).

    rotation: display rotation stored in the file's metadata (the pixels stay unrotated).
    frame_times: explicit presentation times in seconds, for variable-frame-rate files.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    audio_codec = "aac"
    if path.suffix == ".webm":  # WebM takes only VP8/VP9/AV1 and Vorbis/Opus (Opus: 48 kHz)
        codec, audio_codec, sample_rate = "libvpx", "libopus", 48_000
    with av.open(str(path), "w", format="mp4" if path.suffix in (".mp4", ".m4v", ".mov") else None) as out:
        vs = out.add_stream(codec, rate=fps)
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        vs.time_base = Fraction(1, 1000) if frame_times is not None else Fraction(1, fps)
        if frame_times is not None:
            vs.codec_context.time_base = Fraction(1, 1000)
        if gop:
            vs.codec_context.gop_size = gop
        if codec == "libx264":
            vs.options = {"preset": "ultrafast", "tune": "zerolatency"}
        as_ = None
        if audio:
            as_ = out.add_stream(audio_codec, rate=sample_rate, layout="stereo" if channels == 2 else "mono")
        times = frame_times if frame_times is not None else [i / fps for i in range(max(1, int(round(duration_s * fps))))]
        for i, t in enumerate(times):
            frame = av.VideoFrame.from_ndarray(_picture(t, width, height, seed), format="rgb24")
            if frame_times is not None:
                frame.pts, frame.time_base = int(round(t * 1000)), Fraction(1, 1000)
            else:
                frame.pts = i
            for packet in vs.encode(frame):
                out.mux(packet)
        for packet in vs.encode(None):
            out.mux(packet)
        if as_ is not None:
            mono = _tone(int(duration_s * sample_rate), sample_rate, tone_hz, seed, noise=False)
            encode_audio(out, as_, np.repeat(mono[None, :], channels, axis=0), sample_rate,
                         "stereo" if channels == 2 else "mono")
    if rotation:
        set_display_rotation(path, rotation)
    return path


# The MP4 muxer of the FFmpeg inside PyAV no longer turns a "rotate" tag into a display matrix, and
# PyAV cannot set stream side data, so a rotated test file gets its matrix written in place: the
# video track's 'tkhd' box holds a 3x3 matrix (16.16 fixed point; the last column 2.30) that
# players and FFmpeg's demuxer apply on display. (a, b, c, d, tx, ty) below are the values an MP4
# muxer writes for a clockwise display rotation of the stored picture.
def _rotation_matrix(rotation: int, width: int, height: int) -> tuple[int, ...]:
    a, b, c, d, tx, ty = {90: (0, 1, -1, 0, height, 0), 180: (-1, 0, 0, -1, width, height),
                          270: (0, -1, 1, 0, 0, width)}[rotation]
    return (a << 16, b << 16, 0, c << 16, d << 16, 0, tx << 16, ty << 16, 1 << 30)


def _boxes(data: bytes, start: int, end: int):
    """(type, payload start, box end) of the ISO-BMFF boxes in data[start:end]."""
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        header = 8
        if size == 1:
            size, header = struct.unpack(">Q", data[pos + 8 : pos + 16])[0], 16
        elif size == 0:
            size = end - pos
        if size < header:
            return
        yield kind, pos + header, pos + size
        pos += size


def set_display_rotation(path: str | Path, rotation: int) -> None:
    """Store a clockwise display rotation (90, 180, 270) in an MP4's video track, in place."""
    if rotation % 360 not in (90, 180, 270):
        raise ValueError(f"rotation {rotation}: choose 90, 180 or 270")
    path = Path(path)
    data = bytearray(path.read_bytes())
    for kind, moov, moov_end in _boxes(data, 0, len(data)):
        if kind != b"moov":
            continue
        for kind, trak, trak_end in _boxes(data, moov, moov_end):
            if kind != b"trak":
                continue
            inner = {k: (a, b) for k, a, b in _boxes(data, trak, trak_end)}
            mdia = inner.get(b"mdia")
            handler = {k: a for k, a, _ in _boxes(data, *mdia)}.get(b"hdlr") if mdia else None
            if b"tkhd" not in inner or handler is None or data[handler + 8 : handler + 12] != b"vide":
                continue
            tkhd = inner[b"tkhd"][0]
            version = data[tkhd]
            matrix_at = tkhd + (52 if version == 1 else 40)
            width, height = (v >> 16 for v in struct.unpack(">II", data[matrix_at + 36 : matrix_at + 44]))
            struct.pack_into(">9i", data, matrix_at, *_rotation_matrix(rotation % 360, width, height))
            path.write_bytes(bytes(data))
            return
    raise ValueError(f"{path}: no MP4 video track to rotate")


def write_audio(path: str | Path, *, duration_s: float, sample_rate: int = 16_000, channels: int = 1,
                tone_hz: float = 440.0, subtype: Optional[str] = None, noise: bool = False, seed: int = 0) -> Path:
    """WAV/FLAC through soundfile (any subtype: PCM_24, FLOAT, ...); other formats through PyAV."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mono = _tone(int(round(duration_s * sample_rate)), sample_rate, tone_hz, seed, noise)
    data = np.repeat(mono[:, None], channels, axis=1) * np.linspace(1.0, 0.5, channels)[None, :]
    suffix = path.suffix.lower()
    if suffix in (".wav", ".flac"):
        sf.write(str(path), data.astype(np.float32), sample_rate, subtype=subtype)
        return path
    codec = {".mp3": "libmp3lame", ".m4a": "aac", ".ogg": "libopus", ".opus": "libopus"}[suffix]
    rate = 48_000 if codec == "libopus" else sample_rate
    if rate != sample_rate:
        mono = _tone(int(round(duration_s * rate)), rate, tone_hz, seed, noise)
        data = np.repeat(mono[:, None], channels, axis=1)
    layout = "stereo" if channels == 2 else "mono"
    with av.open(str(path), "w", format="ogg" if suffix == ".ogg" else ("ipod" if suffix == ".m4a" else None)) as out:
        st = out.add_stream(codec, rate=rate, layout=layout)
        encode_audio(out, st, data.T.astype(np.float32), rate, layout)
    return path


def make_demo_folder(directory: str | Path) -> list[Path]:
    """A handful of short files for the README's offline smoke run (well under 1 MB)."""
    d = Path(directory)
    return [
        write_video(d / "street.mp4", duration_s=12.0, audio=True, tone_hz=330.0, seed=1),
        write_video(d / "garden.mp4", duration_s=6.0, audio=True, tone_hz=880.0, seed=2),
        write_video(d / "silent.mp4", duration_s=4.0, audio=False, seed=3),
        write_audio(d / "tone-440.wav", duration_s=5.0, tone_hz=440.0, seed=4),
        write_audio(d / "birds.flac", duration_s=3.0, tone_hz=1500.0, sample_rate=44_100, channels=2, seed=5),
        write_audio(d / "voice.m4a", duration_s=4.0, tone_hz=200.0, seed=6),
    ]


def make_robustness_corpus(directory: str | Path) -> dict[str, str]:
    """Awkward files an archive really holds. Returns {relative path: "ok" | "failed"}.

    "ok" files must index correctly; "failed" ones must be recorded with a readable reason.
    The unreadable (mode 000) file is only "failed" for a non-root user: root reads anything,
    so for root it is expected "ok".
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    expected: dict[str, str] = {}

    (d / "empty.mp4").write_bytes(b"")
    expected["empty.mp4"] = "failed"
    (d / "text.mp4").write_text("hello, I am not a video\n" * 50)
    expected["text.mp4"] = "failed"
    good = write_video(d / "_whole.mp4", duration_s=4.0, seed=11)
    data = good.read_bytes()
    (d / "truncated.mp4").write_bytes(data[: len(data) // 2])
    good.unlink()
    expected["truncated.mp4"] = "failed"

    write_video(d / "no-audio.mp4", duration_s=2.0, audio=False, seed=12)
    expected["no-audio.mp4"] = "ok"
    write_audio(d / "audio-only.m4a", duration_s=2.0, seed=13)
    expected["audio-only.m4a"] = "ok"
    write_audio(d / "six-channel-48k.wav", duration_s=2.0, sample_rate=48_000, channels=6, seed=14)
    expected["six-channel-48k.wav"] = "ok"
    write_audio(d / "mono-8k.wav", duration_s=2.0, sample_rate=8_000, seed=15)
    expected["mono-8k.wav"] = "ok"
    write_audio(d / "pcm24.wav", duration_s=2.0, subtype="PCM_24", seed=16)
    expected["pcm24.wav"] = "ok"
    write_audio(d / "float.wav", duration_s=2.0, subtype="FLOAT", seed=17)
    expected["float.wav"] = "ok"
    write_audio(d / "song.mp3", duration_s=2.0, seed=18)
    expected["song.mp3"] = "ok"
    write_video(d / "vfr.mp4", duration_s=3.0, seed=19, frame_times=[0, 0.1, 0.15, 0.9, 1.0, 1.7, 2.5, 2.9])
    expected["vfr.mp4"] = "ok"
    write_video(d / "rotated.mp4", duration_s=2.0, width=64, height=48, rotation=90, seed=20)
    expected["rotated.mp4"] = "ok"
    write_video(d / "one-frame.mp4", duration_s=0.1, fps=10, audio=False, seed=21)
    expected["one-frame.mp4"] = "ok"
    write_video(d / "4k.mp4", duration_s=0.5, width=3840, height=2160, fps=2, audio=False, seed=22)
    expected["4k.mp4"] = "ok"
    write_audio(d / "short.wav", duration_s=0.4, seed=23)
    expected["short.wav"] = "ok"
    write_audio(d / "ünïcødé näme with spaces.flac", duration_s=1.5, seed=24)
    expected["ünïcødé näme with spaces.flac"] = "ok"
    (d / "sub dir").mkdir(exist_ok=True)
    write_audio(d / "sub dir" / "in a spaced folder.wav", duration_s=1.5, seed=25)
    expected["sub dir/in a spaced folder.wav"] = "ok"

    locked = write_audio(d / "unreadable.wav", duration_s=1.0, seed=26)
    os.chmod(locked, 0)
    expected["unreadable.wav"] = "ok" if os.geteuid() == 0 else "failed"

    loop = d / "loop.mp4"
    if not os.path.lexists(loop):
        os.symlink(loop.name, loop)  # points at itself
    expected["loop.mp4"] = "failed"

    (d / "folder.mp4").mkdir(exist_ok=True)  # a directory named like a media file: walked, not indexed
    write_audio(d / "folder.mp4" / "inside.wav", duration_s=1.0, seed=27)
    expected["folder.mp4/inside.wav"] = "ok"
    return expected
