"""What runs on Ray workers: decoding one chunk of a file, and embedding decoded chunks.

Plain functions and classes (Ray wraps them in engine.py), so this module imports without Ray and
the work itself is the local pipeline's: `avsearch.media.iter_clips` for decoding, the embedder's
own `embed_clips` (which groups clips by its token budget) for embedding. An embed actor writes the
clips it embedded into the index itself, as Lance fragments (avsearch.store.fragments), and sends
the driver only their metadata and clip ids: the vectors never travel through the driver. Nothing
here imports LanceDB: a decode worker starts in the time PyAV and torch take to import.
"""

from __future__ import annotations

import time
from contextlib import closing
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np

from avsearch.media import DecodeOptions, iter_clips
from avsearch.media.damage import Damage
from avsearch.models.base import Embedder
from avsearch.types import Clip, MediaFile, View
from avsearch.store.fragments import FragmentTarget, FragmentWriteError, check_target, write_clip_fragments
from avsearch.indexer.distributed.faults import maybe_die
from avsearch.indexer.rows import clip_row


@dataclass
class DecodedChunk:
    """A chunk's clips, in range order (fewer than asked where the file ends early)."""

    path: str
    clips: list[Clip] = field(default_factory=list)
    damage: tuple[Damage, ...] = ()
    error: Optional[str] = None


@dataclass(frozen=True)
class ClipDestination:
    """Where an embed actor writes a file's clips, and the file's part of each clip row."""

    target: FragmentTarget
    path: str
    fingerprint: str
    file_duration_s: float
    model_id: str  # the index's (the actors' model is checked to be it before any chunk is sent)


@dataclass
class EmbeddedChunk:
    """What the driver gets back: spans, clip ids and the written fragments' metadata, never
    frames, sound or vectors."""

    spans: list[tuple[float, float]] = field(default_factory=list)  # per decoded clip
    clip_ids: list[str] = field(default_factory=list)  # one per (clip, view) row written
    fragments: list[str] = field(default_factory=list)  # Lance fragment metadata (JSON) of those rows
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

    def check_destination(self, target: FragmentTarget) -> Optional[str]:
        """Why this actor cannot write into the index (None: it can); asked once per run."""
        try:
            check_target(target)
        except FragmentWriteError as err:
            return str(err)
        return None

    def embed(self, chunk: DecodedChunk, views: Sequence[View], destination: ClipDestination) -> EmbeddedChunk:
        """Embed the chunk's clips in every view each supports and write them, all in one go, as
        fragments of the index's clips table (the driver commits them with the file)."""
        out = EmbeddedChunk(damage=chunk.damage, error=chunk.error)
        if chunk.error is not None:
            return out
        maybe_die("embed", chunk.path)
        needs = [[v for v in views if clip.supports(v)] for clip in chunk.clips]  # as FileJob.accept decides
        out.spans = [(clip.start_s, clip.end_s) for clip in chunk.clips]
        try:
            vectors: dict[tuple[int, View], np.ndarray] = {}
            for view in views:
                ks = [k for k, clip_views in enumerate(needs) if view in clip_views]
                if ks:
                    embedded = self.embedder.embed_clips([chunk.clips[k] for k in ks], view)
                    vectors.update({(k, view): vec for k, vec in zip(ks, embedded)})
        except Exception as err:  # the chunk is one file's: that file fails, as in the local pipeline
            out.error = f"embedding failed: {_reason(err)}"
            return out
        # In (clip, view) order, as the local pipeline writes a file's rows.
        keys = sorted(vectors, key=lambda kv: (kv[0], kv[1].value))
        now = time.time()
        d = destination
        rows = [clip_row(d.path, d.fingerprint, view.value, *out.spans[k], file_duration_s=d.file_duration_s,
                         indexed_at=now, model_id=d.model_id) for k, view in keys]
        try:
            out.fragments = write_clip_fragments(d.target, rows, np.stack([vectors[key] for key in keys])
                                                 if keys else np.zeros((0, d.target.dim), np.float32))
        except Exception as err:  # FragmentWriteError names the fix; the file fails, not the run
            out.error = _reason(err)
            return out
        maybe_die("embed-written", chunk.path)  # the retry writes its own fragments: these stay orphans
        out.clip_ids = [r["clip_id"] for r in rows]
        return out


def _reason(err: BaseException) -> str:
    # The local pipeline's wording (indexer.pipeline.failure_reason), imported only on failure:
    # that module brings the store, and with it LanceDB, which a worker otherwise never needs.
    from avsearch.indexer.pipeline import failure_reason

    return failure_reason(err)
