"""Helpers for the WAVE tests: tiny checkpoints made once per process, synthetic clips in numpy.

Plain functions with caches (not fixtures), so several test modules share one tiny checkpoint and
one loaded model without a conftest. Nothing touches the network or the media layer.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np

from avsearch.types import Clip

_ROOT = Path(tempfile.mkdtemp(prefix="avsearch-wave-tests-"))
atexit.register(shutil.rmtree, _ROOT, True)


@lru_cache(maxsize=None)
def tiny_checkpoint(seed: int = 0) -> Path:
    """A tiny WAVE checkpoint (read-only by convention: copy it before changing files)."""
    from avsearch.models.wave import make_tiny_checkpoint

    return make_tiny_checkpoint(_ROOT / f"tiny-seed{seed}", seed=seed)


def copy_checkpoint(target: Path, seed: int = 0) -> Path:
    shutil.copytree(tiny_checkpoint(seed), target)
    return target


@lru_cache(maxsize=None)
def tiny_embedder(seed: int = 0, av_position_mode: str | None = None):
    from avsearch.models.wave import WaveOptions, load_wave_embedder

    return load_wave_embedder(str(tiny_checkpoint(seed)), device="cpu",
                              options=WaveOptions(av_position_mode=av_position_mode))


def sine(seconds: float, hz: float = 440.0, sample_rate: int = 16_000) -> np.ndarray:
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def make_clip(seconds: float = 4.0, *, fps: float = 2.0, size: tuple[int, int] = (56, 84), audio: bool = True,
              video: bool = True, seed: int = 0, hz: float = 440.0) -> Clip:
    """A clip of random frames (uint8, sampled at `fps`) and a sine tone, as the media layer would give."""
    rng = np.random.default_rng(seed)
    frames = None
    if video:
        frames = rng.integers(0, 256, (max(1, int(round(seconds * fps))), *size, 3), dtype=np.uint8)
    tone = None
    if audio:
        tone = sine(seconds, hz) + 0.01 * rng.standard_normal(int(round(seconds * 16_000))).astype(np.float32)
    return Clip(f"synthetic-{seed}.mp4", 0.0, seconds, frames=frames, fps=fps, audio=tone)
