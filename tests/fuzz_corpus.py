"""Hostile media for tests: odd WAV headers written by hand, and mutations of good files.

Every mutation is deterministic (seeded), so a failure names a file that can be made again.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Optional

import numpy as np

# KSDATAFORMAT_SUBTYPE_PCM: the GUID tail after the 2-byte format code 0x0001.
_PCM_GUID = struct.pack("<H", 1) + b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"


def write_extensible_wav(path: str | Path, *, bits: int, rate: int = 16_000, seconds: float = 1.0,
                         channels: int = 1, seed: int = 0) -> Path:
    """A WAVE_FORMAT_EXTENSIBLE PCM file with `bits` valid bits per sample (containers rounded up
    to whole bytes: 36 bits sit in 40-bit words). FFmpeg reads the header but has no PCM decoder
    for widths other than 8/16/24/32/64, so the stream comes without a codec context."""
    path = Path(path)
    container_bits = (bits + 7) // 8 * 8
    width = container_bits // 8
    n = int(rate * seconds)
    data = np.random.default_rng(seed).integers(0, 256, n * channels * width, dtype=np.uint8).tobytes()
    fmt = struct.pack("<HHIIHHHHI", 0xFFFE, channels, rate, rate * width * channels, width * channels,
                      container_bits, 22, bits, 0) + _PCM_GUID
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


def flip_bytes(data: bytes, *, count: int, start: float, end: float, seed: int) -> bytes:
    """`count` bytes inverted at random offsets between fractions `start` and `end` of the file."""
    out = bytearray(data)
    rng = np.random.default_rng(seed)
    for i in rng.integers(int(len(out) * start), max(int(len(out) * start) + 1, int(len(out) * end)), count):
        out[i] ^= 0xFF
    return bytes(out)


def zero_range(data: bytes, *, start: float, end: float) -> bytes:
    a, b = int(len(data) * start), int(len(data) * end)
    return data[:a] + bytes(b - a) + data[b:]


def swap_chunks(data: bytes, *, first: float, second: float, size: int = 2048) -> bytes:
    """Two blocks of `size` bytes trade places (a mis-assembled file)."""
    a, b = int(len(data) * first), int(len(data) * second)
    size = min(size, b - a, len(data) - b)
    out = bytearray(data)
    out[a:a + size], out[b:b + size] = data[b:b + size], data[a:a + size]
    return bytes(out)


def sizes_past_eof(data: bytes, suffix: str) -> Optional[bytes]:
    """The container's declared sizes made to point far past the end of the file: RIFF and its
    data/movi chunks (wav, avi), every top-level ISO-BMFF box (mp4, mov, m4a). None for others."""
    out = bytearray(data)
    huge = struct.pack("<I", 0x7FFFFFF0)
    if suffix in (".wav", ".avi"):
        out[4:8] = huge
        for tag in (b"data", b"LIST"):
            i = data.find(tag, 12)
            if i >= 0:
                out[i + 4:i + 8] = huge
        return bytes(out)
    if suffix in (".mp4", ".mov", ".m4a"):
        pos = 0
        while pos + 8 <= len(data):
            size = struct.unpack(">I", data[pos:pos + 4])[0]
            if data[pos + 4:pos + 8] in (b"moov", b"mdat"):
                out[pos:pos + 4] = struct.pack(">I", 0x7FFFFFF0)
            if size < 8:
                break
            pos += size
        return bytes(out)
    return None


def mutations(data: bytes, suffix: str) -> dict[str, bytes]:
    """name -> mutated bytes: truncations, byte flips in the header and in the payload, a zeroed
    range, swapped chunks and declared sizes past the end of the file."""
    out = {
        "cut10": data[: len(data) // 10],
        "cut50": data[: len(data) // 2],
        "cut90": data[: len(data) * 9 // 10],
        "fliphead": flip_bytes(data, count=16, start=0.0, end=0.05, seed=1),
        "flipbody": flip_bytes(data, count=60, start=0.3, end=0.9, seed=2),
        "zeroed": zero_range(data, start=0.4, end=0.55),
        "swapped": swap_chunks(data, first=0.3, second=0.6),
    }
    past = sizes_past_eof(data, suffix)
    if past is not None:
        out["pasteof"] = past
    return out


GOOD_VIDEO = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".ts")
GOOD_AUDIO = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a")
ODD_BITS = (36, 45, 53)


def make_fuzz_corpus(directory: str | Path, *, seconds: float = 1.5) -> dict[str, str]:
    """Good files of every container the indexer takes, their mutations, and WAVE_FORMAT_EXTENSIBLE
    files at bit depths FFmpeg cannot decode. Returns {file name: "good" | "mutant" | "undecodable"}."""
    from avsearch.media.synth import write_audio, write_video

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    kinds: dict[str, str] = {}
    goods = [write_video(d / f"good{ext}", duration_s=seconds, seed=i) for i, ext in enumerate(GOOD_VIDEO)]
    goods += [write_audio(d / f"good{ext}", duration_s=seconds, seed=10 + i) for i, ext in enumerate(GOOD_AUDIO)]
    goods.append(write_extensible_wav(d / "good-ext24.wav", bits=24, seconds=seconds))
    for good in goods:
        kinds[good.name] = "good"
        for name, data in mutations(good.read_bytes(), good.suffix).items():
            mutant = d / f"{good.stem}-{name}{good.suffix}"
            mutant.write_bytes(data)
            kinds[mutant.name] = "mutant"
    for bits in ODD_BITS:
        kinds[write_extensible_wav(d / f"odd-pcm{bits}.wav", bits=bits, seconds=seconds).name] = "undecodable"
    return kinds
