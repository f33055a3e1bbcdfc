"""The retrieval path: encode → ANN candidates under filters → exact scores → re-rank → merge."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Optional

import numpy as np

from avsearch.media import DecodeOptions
from avsearch.models.base import Embedder
from avsearch.store import Store
from avsearch.types import Hit, Query, View
from avsearch.retriever.encode import query_vector
from avsearch.retriever.filters import clip_filter
from avsearch.retriever.merge import cap_per_file, merge_adjacent
from avsearch.retriever.rerank import RerankStats, rerank


@dataclass
class SearchOptions:
    k: int = 10
    merge_adjacent: bool = True
    per_file: Optional[int] = None
    min_score: Optional[float] = None
    rerank_top: int = 20  # candidates re-embedded when an instruction is given
    candidate_factor: int = 4  # extra first-stage candidates for merging / per-file caps / re-rank


@dataclass
class SearchResult:
    hits: list[Hit]
    candidates: int
    rerank: Optional[RerankStats] = None


def search(query: Query, store: Store, get_embedder: Callable[[], Embedder], options: SearchOptions,
           decode: DecodeOptions) -> SearchResult:
    qvec, exclude = query_vector(query, store, get_embedder, decode)
    qvec = np.asarray(qvec, dtype=np.float32)
    allowed = store.allowed_row_ids(clip_filter(query), query.path_glob)
    # Extra candidates only where something after the ANN search can drop or fuse hits (merging
    # adjacent clips, per-file caps): a larger k also lowers the k-th exact score the candidate
    # pool must beat, so the pool grows more often (100k x 1024, k=40 vs 10: store search p50 7 vs
    # 5 ms in-distribution, 14 vs 6.5 ms cross-modal).
    extras = options.merge_adjacent or options.per_file is not None
    factor = options.candidate_factor if extras else 1
    n_candidates = max(options.k * factor, options.rerank_top if query.instruction else 0) + (1 if exclude else 0)
    scores, ids = store.search(qvec[None, :], n_candidates, allowed_ids=allowed)
    pairs = [(float(s), int(i)) for s, i in zip(scores[0], ids[0]) if i >= 0]
    meta = store.clip_meta_by_row_ids([i for _, i in pairs])
    hits = [
        Hit(m["path"], m["start_s"], m["end_s"], View(m["view"]), s, m["clip_id"])
        for s, i in pairs
        if (m := meta.get(i)) is not None and m["clip_id"] != exclude
    ]
    stats = None
    if query.instruction:
        top, rest = hits[: options.rerank_top], hits[options.rerank_top :]
        top, stats = rerank(top, qvec, query.instruction, store, get_embedder, decode)
        hits = top + rest
    if options.min_score is not None:
        hits = [h for h in hits if h.score >= options.min_score]
    if options.merge_adjacent:
        hits = merge_adjacent(hits)
    hits = cap_per_file(hits, options.per_file)
    return SearchResult(with_duplicates(hits[: options.k], meta, store), len(pairs), stats)


def with_duplicates(hits: list[Hit], meta: dict[int, dict], store: Store) -> list[Hit]:
    """`hits` with the other paths of their content (copies, links; see indexer/plan.py) listed:
    a content is indexed once, so it comes back as one hit that names them all."""
    fingerprint = {m["path"]: m["fingerprint"] for m in meta.values()}
    others = store.duplicate_paths({fingerprint[h.path] for h in hits if h.path in fingerprint})
    return [replace(h, duplicate_paths=tuple(others[fingerprint[h.path]]))
            if fingerprint.get(h.path) in others else h for h in hits]
