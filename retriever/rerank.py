"""Instruction-conditioned re-ranking (WAVE's prompt-aware embeddings).

The top candidates are decoded again and re-embedded with the instruction in their prompt, then
re-scored against the query vector. Re-embeddings are cached in the index by
(clip, instruction, model), so asking the same question twice costs one decode + embed pass.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Callable

import numpy as np

from avsearch.media import DecodeOptions, read_clip
from avsearch.models.base import Embedder
from avsearch.store import Store
from avsearch.types import Hit, View


@dataclass
class RerankStats:
    cached: int = 0
    embedded: int = 0
    failed: int = 0


def rerank(hits: list[Hit], query_vec: np.ndarray, instruction: str, store: Store,
           get_embedder: Callable[[], Embedder], decode: DecodeOptions) -> tuple[list[Hit], RerankStats]:
    stats = RerankStats()
    if not hits:
        return hits, stats
    model_id = store.meta.model_id
    keys = [store.rerank_key(h.clip_id, instruction, model_id) for h in hits]
    vectors = store.rerank_cache_get(keys)
    stats.cached = len(vectors)
    todo: dict[View, list[tuple[str, Hit]]] = defaultdict(list)
    for key, hit in zip(keys, hits):
        if key not in vectors:
            todo[hit.view].append((key, hit))
    new: dict[str, tuple[str, np.ndarray]] = {}
    for view, items in todo.items():
        clips, kept = [], []
        for key, hit in items:
            try:
                clips.append(read_clip(hit.path, hit.start_s, hit.end_s, decode,
                                       video=view in (View.AV, View.VIDEO), audio=view in (View.AV, View.AUDIO)))
                kept.append((key, hit))
            except Exception:  # file gone or unreadable since indexing: keep its first-stage score
                stats.failed += 1
        if clips:
            embedded = get_embedder().embed_clips(clips, view, instruction=instruction)
            for (key, hit), vec in zip(kept, embedded):
                new[key] = (hit.clip_id, vec)
                vectors[key] = vec
            stats.embedded += len(clips)
    store.rerank_cache_put(new)
    rescored = [
        Hit(h.path, h.start_s, h.end_s, h.view, float(np.dot(query_vec, vectors[k])) if k in vectors else h.score,
            h.clip_id, h.merged_clip_ids)
        for k, h in zip(keys, hits)
    ]
    rescored.sort(key=lambda h: -h.score)
    return rescored, stats
