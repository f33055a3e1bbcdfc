"""What runs on Ray workers: decoding one chunk of a file, and embedding decoded chunks.

Plain functions and classes (Ray wraps them in engine.py), so this module imports without Ray and
the work itself is the local pipeline's: `avsearch.media.iter_clips` for decoding, the embedder's
own `embed_clips` (which groups clips by its token budget) for embedding. Nothing here imports the
store (LanceDB): a decode worker starts in the time PyAV and torch take to import.
"""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np

from avsearch.media import DecodeOptions, iter_clips
from avsearch.media.damage import Damage
from avsearch.models.base import Embedder
from avsearch.types import Clip, MediaFile, View
from avsearch.indexer.distributed.faults import maybe_die


@dataclass
class DecodedChunk:
    """A chunk's clips, in range order (fewer than asked where the file ends early)."""

    path: str
    clips: list[Clip] = field(default_factory=list)
    damage: tuple[Damage, ...] = ()
    error: Optional[str] = None


@dataclass
class EmbeddedChunk:
    """What the driver gets back: spans and vectors, never frames or sound."""

    spans: list[tuple[float, float]] = field(default_factory=list)  # per decoded clip
    needs: list[list[View]] = field(default_factory=list)  # the views each clip is embedded as
    vectors: dict[tuple[int, View], np.ndarray] = field(default_factory=dict)  # (clip k of the chunk, view)
    damage: tuple[Damage, ...] = ()
    error: Optional[str] = None


def decode_chunk(path: str, ranges: Sequence[tuple[float, float]], media: MediaFile, options: DecodeOptions,
                 video: bool, audio: bool, stall_s: float) -> DecodedChunk:
    """Decode the clips of `ranges` (consecutive ranges of one file) in this worker process.

    A media problem is returned as the chunk's error (Ray must not retry it: it would fail again);
    only a death of the process makes Ray run the task again."""
    maybe_die("decode", path)

    def attempt(seek: bool) -> DecodedChunk:
        damage: list[Damage] = []
        with closing(iter_clips(path, ranges, options, video=video, audio=audio, media=media, seek=seek,
                                damage=damage, stall_s=stall_s)) as clips:
            got = list(clips)
        return DecodedChunk(path, got, tuple(damage))

    try:
        return attempt(seek=True)
    except Exception as err:
        if ranges and ranges[0][0] > 0:
            # As the local decoders do: a chunk deep in a file starts with a seek, which fails on
            # some files that decode well from the start; such a file must not fail for being cut.
            try:
                return attempt(seek=False)
            except Exception as again:
                err = again
        return DecodedChunk(path, error=_reason(err))


class EmbedWorker:
    """One embedder, loaded once (in a Ray actor: once per GPU), embedding chunk after chunk."""

    def __init__(self, load_embedder: Callable[[], Embedder]) -> None:
        self.embedder = load_embedder()

    def model_id(self) -> str:
        return self.embedder.model_id

    def embed(self, chunk: DecodedChunk, views: Sequence[View]) -> EmbeddedChunk:
        out = EmbeddedChunk(damage=chunk.damage, error=chunk.error)
        if chunk.error is not None:
            return out
        maybe_die("embed", chunk.path)
        for clip in chunk.clips:
            out.spans.append((clip.start_s, clip.end_s))
            out.needs.append([v for v in views if clip.supports(v)])  # as FileJob.accept decides
        try:
            for view in views:
                ks = [k for k, needs in enumerate(out.needs) if view in needs]
                if ks:
                    vectors = self.embedder.embed_clips([chunk.clips[k] for k in ks], view)
                    out.vectors.update({(k, view): vec for k, vec in zip(ks, vectors)})
        except Exception as err:  # the chunk is one file's: that file fails, as in the local pipeline
            out.error = f"embedding failed: {_reason(err)}"
            out.vectors.clear()
        return out


def _reason(err: BaseException) -> str:
    # The local pipeline's wording (indexer.pipeline.failure_reason), imported only on failure:
    # that module brings the store, and with it LanceDB, which a worker otherwise never needs.
    from avsearch.indexer.pipeline import failure_reason

    return failure_reason(err)
