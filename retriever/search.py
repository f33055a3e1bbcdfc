"""The retrieval path: encode → ANN candidates under filters → exact scores → re-rank → merge."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Optional

import numpy as np

from avsearch.media import DecodeOptions
from avsearch.models.base import Embedder
from avsearch.store import SearchState, Store
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
    # Merging adjacent clips or capping hits per file can fuse or drop candidates: the first ANN
    # search then asks for k x candidate_factor and asks again for more (up to k x
    # max_candidate_factor) while fewer than k hits are left.
    candidate_factor: int = 2
    max_candidate_factor: int = 64


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
    k = options.k
    # Extra candidates only where something after the ANN search can fuse or drop hits: a larger
    # k also lowers the k-th exact score the ANN's candidate pool must beat, so its pool grows
    # more often (100k x 1024, k=40 vs 10: store search p50 7 vs 5 ms in-distribution, 14 vs
    # 6.5 ms cross-modal).
    extras = options.merge_adjacent or options.per_file is not None
    n = max(k * (options.candidate_factor if extras else 1), options.rerank_top if query.instruction else 0)
    state = SearchState()  # a second ANN search continues the first (same lists, scans, scores)
    while True:
        asked = n + (1 if exclude else 0)
        hits, found, fingerprints = _candidates(qvec, asked, allowed, exclude, store, state)
        left = len(_after_ranking(hits, options))
        # Enough hits, every candidate seen, or none further down could pass min_score. Hits fused
        # or dropped only depend on which candidates are there, not on their order, so the count
        # holds after a re-rank too (min_score aside).
        if left >= k or found < asked or not extras or n >= k * options.max_candidate_factor or (
                options.min_score is not None and hits and hits[-1].score < options.min_score):
            break
        # Grow by the share of hits that survived (a long, self-similar video fuses its
        # consecutive clips: 20 candidates can merge into one hit), at least doubling.
        n = min(k * options.max_candidate_factor, max(2 * n, -(-n * k * 5 // (4 * max(left, 1)))))
    stats = None
    if query.instruction:
        top, rest = hits[: options.rerank_top], hits[options.rerank_top :]
        top, stats = rerank(top, qvec, query.instruction, store, get_embedder, decode)
        hits = top + rest
    hits = _after_ranking(hits, options)[:k]
    return SearchResult(with_duplicates(hits, fingerprints, store), found, stats)


def _candidates(qvec, n, allowed, exclude, store, state) -> tuple[list[Hit], int, dict[str, str]]:
    """The n best clips by exact score as hits, best first (the query's own clip left out), how
    many the ANN search found, and the content fingerprint of each hit's file by path."""
    scores, ids = store.search(qvec[None, :], n, allowed_ids=allowed, state=state)
    pairs = [(float(s), int(i)) for s, i in zip(scores[0], ids[0]) if i >= 0]
    meta = store.clip_meta_by_row_ids([i for _, i in pairs])
    hits = [
        Hit(m["path"], m["start_s"], m["end_s"], View(m["view"]), s, m["clip_id"])
        for s, i in pairs
        if (m := meta.get(i)) is not None and m["clip_id"] != exclude
    ]
    return hits, len(pairs), {m["path"]: m["fingerprint"] for m in meta.values()}


def _after_ranking(hits: list[Hit], options: SearchOptions) -> list[Hit]:
    """min_score, merging of adjacent clips and the per-file cap, in that order."""
    if options.min_score is not None:
        hits = [h for h in hits if h.score >= options.min_score]
    if options.merge_adjacent:
        hits = merge_adjacent(hits)
    return cap_per_file(hits, options.per_file)


def with_duplicates(hits: list[Hit], fingerprints: dict[str, str], store: Store) -> list[Hit]:
    """`hits` with the other paths of their content (copies, links; see indexer/plan.py) listed:
    a content is indexed once, so it comes back as one hit that names them all. `fingerprints`:
    path -> content fingerprint of the hits' files."""
    others = store.duplicate_paths({fingerprints[h.path] for h in hits if h.path in fingerprints})
    return [replace(h, duplicate_paths=tuple(others[fingerprints[h.path]]))
            if fingerprints.get(h.path) in others else h for h in hits]
