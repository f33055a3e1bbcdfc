"""The WAVE embedding model: Qwen2.5-Omni thinker + BEATs + all-layer head (shared/WAVE_SPEC.md).

Importing this package is cheap (no torch); the heavy modules load on first use of a name below.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from avsearch.models.wave.builtins import register_builtins

if TYPE_CHECKING:
    from avsearch.models.wave.config import WaveOptions
    from avsearch.models.wave.embedder import WaveEmbedder
    from avsearch.models.wave.loader import load_wave_embedder
    from avsearch.models.wave.tiny import make_tiny_checkpoint

__all__ = ["load_wave_embedder", "register_builtins", "make_tiny_checkpoint", "WaveEmbedder", "WaveOptions"]

_LAZY = {
    "load_wave_embedder": "avsearch.models.wave.loader",
    "make_tiny_checkpoint": "avsearch.models.wave.tiny",
    "WaveEmbedder": "avsearch.models.wave.embedder",
    "WaveOptions": "avsearch.models.wave.config",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
