"""Pictures of sound: a log-mel spectrogram of a stretch of audio, for hits of files that have no
video (thumbnails, contact sheets, the service's page). numpy and Pillow only."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image

from avsearch.types import SAMPLE_RATE

TILE_SIZE = (320, 180)


def spectrogram_tile(audio: np.ndarray, size: tuple[int, int] = TILE_SIZE, *, bands: int = 64) -> Image.Image:
    """A log-mel spectrogram of 16 kHz mono audio as a picture: time left to right, low
    frequencies at the bottom, loudness as colour (dark blue → yellow), scaled to the clip's own
    range so quiet recordings still show their structure."""
    n_fft, hop = 512, 160  # 32 ms windows every 10 ms
    audio = np.asarray(audio, dtype=np.float32)
    if len(audio) < n_fft:
        audio = np.pad(audio, (0, n_fft - len(audio)))
    starts = np.arange(0, len(audio) - n_fft + 1, hop)
    windows = audio[starts[:, None] + np.arange(n_fft)] * np.hanning(n_fft).astype(np.float32)
    power = np.abs(np.fft.rfft(windows, axis=1)) ** 2  # (frames, n_fft // 2 + 1)
    mel = np.log10(power @ _mel_filters(n_fft, bands).T + 1e-10)  # (frames, bands)
    low, high = np.percentile(mel, 5), mel.max()
    level = np.clip((mel - low) / max(high - low, 1e-6), 0.0, 1.0)
    positions = np.linspace(0.0, 1.0, len(_COLOUR_STOPS))
    rgb = np.stack([np.interp(level, positions, _COLOUR_STOPS[:, c]) for c in range(3)], axis=-1)
    image = Image.fromarray(np.flipud(rgb.transpose(1, 0, 2)).astype(np.uint8))  # bands up, time across
    return image.resize(size, Image.BICUBIC)


_COLOUR_STOPS = np.array([[10, 12, 40], [70, 30, 120], [190, 60, 90], [250, 150, 40], [250, 240, 120]], float)


@lru_cache(maxsize=4)
def _mel_filters(n_fft: int, bands: int, rate: int = SAMPLE_RATE) -> np.ndarray:
    """Triangular filters evenly spaced on the mel scale, 0 Hz to Nyquist: (bands, n_fft//2+1)."""
    def to_mel(hz):
        return 2595.0 * np.log10(1.0 + np.asarray(hz) / 700.0)

    edges_hz = 700.0 * (10 ** (np.linspace(0.0, to_mel(rate / 2), bands + 2) / 2595.0) - 1.0)
    bins = np.linspace(0.0, rate / 2, n_fft // 2 + 1)
    lower, centre, upper = edges_hz[:-2, None], edges_hz[1:-1, None], edges_hz[2:, None]
    rising = (bins - lower) / (centre - lower)
    falling = (upper - bins) / (upper - centre)
    return np.clip(np.minimum(rising, falling), 0.0, None).astype(np.float32)
