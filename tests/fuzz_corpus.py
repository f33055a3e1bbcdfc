"""Hostile media for tests: odd WAV headers written by hand, and mutations of good files.

Every mutation is deterministic (seeded), so a failure names a file that can be made again.
"""

from __future__ import annotations

import struct
from pathlib import Path

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
