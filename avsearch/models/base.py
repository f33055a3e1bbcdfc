"""The Embedder contract every model backend fulfils.

All vectors are float32, L2-normalised, shape (n, dim), and live in one space: a text, an audio
clip, a silent video clip and an audio+video clip can be compared with a dot product.
"""

from __future__ import annotations

from typing import Optional, Protocol, Sequence, runtime_checkable

import numpy as np

from avsearch.types import Clip, View


@runtime_checkable
class Embedder(Protocol):
    model_id: str
    """Stable identity of the weights (recorded in the index; a different id is a different space)."""

    source: str
    """How to load this model again (hub id, local directory or 'tiny'); recorded in the index."""

    dim: int

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Embed plain texts (queries or captions)."""
        ...

    def embed_clips(
        self, clips: Sequence[Clip], view: View, instruction: Optional[str] = None
    ) -> np.ndarray:
        """Embed clips as `view`. With `instruction`, the instruction text is part of the
        prompt beside the media (WAVE's prompt-aware embedding), used for re-ranking."""
        ...

    def token_cost(self, clip: Clip, view: View, instruction: Optional[str] = None) -> int:
        """Sequence length of a clip in this view (with the instruction's prompt, if given), for
        batching by token budget."""
        ...
