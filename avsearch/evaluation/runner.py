"""Score judged queries against an index: exact search and the IVF index side by side.

A *direction* is one query view → target view (text→audio, video→audio, audio→text ...). Its gallery
is every clip embedded as the target view (of the evaluated files only, when given), or, for →text,
the captions given with it. Each query's top `depth` units (clips, or captions) are ranked by score,
matched to the query's judged targets (a clip matches a target when its time range overlaps it; a
later clip overlapping only targets already found is dropped, as `avsearch query` merges it;
adjacent irrelevant clips each keep their rank, which `avsearch query` would fuse into one hit) and
scored with metrics.py. The exact leg scores every gallery clip; the ANN leg builds an IVF index
over the same clips with the store's settings, so the difference is what the ANN costs in quality.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from avsearch.errors import AvsearchError
from avsearch.evaluation.judgements import EvalQuery, Problem, Target, rows_label
from avsearch.evaluation.metrics import query_metrics, rank_by_score, summarise
from avsearch.types import Query

DEPTH = 100  # units scored per query: MRR counts a first relevant hit up to this rank
TEXT_BATCH = 32


@dataclass
class Direction:
    query_view: str  # "text", "audio", "video" or "av"
    target_view: str  # a media view, or "text" for a caption gallery
    queries: list[EvalQuery]
    captions: Optional[list[str]] = None  # the gallery of a →text direction; targets "caption:<i>"
    paper: Optional[dict] = None  # the published figure to print beside ours (benchmarks)

    @property
    def name(self) -> str:
        return f"{self.query_view}→{self.target_view}"


@dataclass
class DirectionResult:
    name: str
    query_view: str
    target_view: str
    queries: int  # queries scored (those with a vector and a target in the gallery)
    gallery: int  # clips (or captions) searched
    exact: dict  # metric -> {mean, ci_low, ci_high}
    ann: Optional[dict] = None
    ann_note: Optional[str] = None  # why there is no ANN leg
    paper: Optional[dict] = None
    skipped: int = 0  # queries none of whose targets is in this gallery (a Problem when scored nowhere)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class QueryVectors:
    """Query vectors embedded once and shared by every direction that asks the same query."""

    index: object
    problems: list[Problem] = field(default_factory=list)
    _cache: dict = field(default_factory=dict)

    def get(self, queries: list[EvalQuery]) -> list[Optional[np.ndarray]]:
        texts = [q.text for q in queries if q.text is not None and q.identity not in self._cache]
        for start in range(0, len(texts), TEXT_BATCH):
            batch = list(dict.fromkeys(texts[start : start + TEXT_BATCH]))
            for text, vector in zip(batch, self.index.embedder().embed_texts(batch)):
                self._cache[(text, None, None, None, None)] = vector
        media = list({q.identity: q for q in queries if q.text is None and q.identity not in self._cache}.values())
        found = self.index.embed_media_queries([Query(media=q.media, view=q.view, start_s=q.start_s, end_s=q.end_s)
                                                for q in media]) if media else []
        for q, vector in zip(media, found):
            if isinstance(vector, AvsearchError):  # one unreadable query file is a problem, never the end of the run
                self.problems.append(Problem(rows_label(q.rows) if q.rows else q.media, str(vector)))
                vector = None
            self._cache[q.identity] = vector
        return [self._cache[q.identity] for q in queries]


def evaluate(index, directions: list[Direction], *, depth: int = DEPTH, ann: bool = True, seed: int = 0,
             progress: Optional[Callable[[str], None]] = None,
             paths: Optional[set[str]] = None) -> tuple[list[DirectionResult], list[Problem]]:
    """Every direction's metrics (exact, and IVF when `ann`), and the queries left out.
    `paths`: the files whose clips make the galleries (None: every clip of the index); a kept
    index may hold other data sets, which would otherwise be scored as distractors."""
    vectors = QueryVectors(index)
    holders = duplicate_holders(index.store, {t.key for d in directions if d.captions is None
                                              for q in d.queries for t in q.targets})
    if paths is not None:
        paths = set(paths) | {holders.get(p, p) for p in paths}
    results, scored, skipped = [], set(), {}
    for direction in directions:
        if progress:
            progress(direction.name)
        if direction.captions is not None:
            results.append(_caption_direction(index, direction, vectors, depth, seed))
            continue
        _retarget(direction, holders)
        result, missed = _media_direction(index, direction, vectors, depth, ann, seed, paths)
        results.append(result)
        scored |= {id(q) for q in direction.queries} - {id(q) for q in missed}
        for q in missed:
            skipped.setdefault(id(q), (q, []))[1].append(direction.target_view)
    # A query scored in no direction (a judged file without any target view's clips) would
    # vanish from the numbers: name it. One scored in some target view is not lost.
    for key, (q, views) in skipped.items():
        if key not in scored:
            views = " or ".join(dict.fromkeys(views))
            vectors.problems.append(Problem(_where(q), f"not scored: none of its targets "
                                            f"({', '.join(sorted({t.key for t in q.targets}))}) has clips embedded as "
                                            f"{views} in the gallery; index them, or judge files that have {views}"))
    return results, vectors.problems


def duplicate_holders(store, keys: set[str]) -> dict[str, str]:
    """{path: path holding its clips} for the keys whose file row is a content duplicate (a copy
    of indexed content has no clips of its own: they are under the file it copies)."""
    rows = [r for r in store.file_rows() if r["status"] == "duplicate" and r["path"] in keys]
    if not rows:
        return {}
    same_content = store.file_rows_with_fingerprints(sorted({r["fingerprint"] for r in rows}))
    holders = {r["fingerprint"]: r["path"] for r in same_content if r["status"] == "ok"}
    return {r["path"]: holders[r["fingerprint"]] for r in rows if r["fingerprint"] in holders}


def _retarget(d: Direction, holders: dict[str, str]) -> None:
    """Point targets that are content duplicates at the file holding their clips (in place)."""
    for q in d.queries:
        if any(t.key in holders for t in q.targets):
            q.targets = [Target(holders.get(t.key, t.key), t.start_s, t.end_s, t.grade) for t in q.targets]


def _media_direction(index, d: Direction, vectors: QueryVectors, depth: int, ann: bool, seed: int,
                     paths: Optional[set[str]] = None) -> tuple[DirectionResult, list[EvalQuery]]:
    store = index.store
    gallery = store.gallery(d.target_view, paths)
    in_gallery = store.gallery_paths(d.target_view)
    if paths is not None:
        in_gallery &= paths
    queries, matrix, skipped = _scorable(d.queries, vectors, lambda t: t.key in in_gallery)
    result = DirectionResult(d.name, d.query_view, d.target_view, len(queries), len(gallery), {}, paper=d.paper,
                             skipped=len(skipped))
    if not queries:
        return result, skipped
    result.exact = _score(store, queries, store.search_exact(matrix, depth, gallery), seed)
    if not ann:
        result.ann_note = "not asked (--no-ann)"
    elif (found := store.search_ivf(matrix, depth, gallery)) is None:
        result.ann_note = f"an IVF index needs at least 256 clips to train on; this gallery has {len(gallery)}"
    else:
        result.ann = _score(store, queries, found, seed)
    return result, skipped


def _caption_direction(index, d: Direction, vectors: QueryVectors, depth: int, seed: int) -> DirectionResult:
    queries, matrix, skipped = _scorable(d.queries, vectors, lambda t: True)
    result = DirectionResult(d.name, d.query_view, d.target_view, len(queries), len(d.captions), {}, paper=d.paper,
                             ann_note="captions are not indexed: exact search only", skipped=len(skipped))
    if not queries:
        return result
    # Through the query cache: the captions are usually text→media's queries too, embedded once.
    gallery = np.stack(vectors.get([EvalQuery(text=c) for c in d.captions])).astype(np.float32)
    scores = matrix @ gallery.T
    per_query = []
    for q, row in zip(queries, scores):
        units = [(f"caption:{i}", 0.0, 0.0) for i in range(len(row))]
        per_query.append(_query_score(q, units, row, depth))
    result.exact = summarise(per_query, seed=seed)
    return result


def _scorable(queries: list[EvalQuery], vectors: QueryVectors,
              in_gallery) -> tuple[list[EvalQuery], np.ndarray, list[EvalQuery]]:
    """The queries with a vector and a target in the gallery (targets outside it dropped), their
    vectors as one matrix, and the queries skipped for having no target in the gallery."""
    kept, rows, skipped = [], [], []
    for q, v in zip(queries, vectors.get(queries)):
        if v is None:
            continue
        targets = [t for t in q.targets if in_gallery(t)]
        if not targets:
            skipped.append(q)
            continue
        kept.append(EvalQuery(q.text, q.media, q.view, q.start_s, q.end_s, targets, q.rows))
        rows.append(v)
    return kept, (np.stack(rows).astype(np.float32) if rows else np.zeros((0, 0), np.float32)), skipped


def _where(q: EvalQuery) -> str:
    if q.rows:
        return rows_label(q.rows)
    return f"query {q.text!r}" if q.text is not None else f"query {q.media}"


def _score(store, queries: list[EvalQuery], found: tuple[np.ndarray, np.ndarray], seed: int) -> dict:
    scores, ids = found
    meta = store.clip_meta_by_row_ids(np.unique(ids[ids >= 0]))
    per_query = []
    for q, s, i in zip(queries, scores, ids):
        keep = [j for j, rid in enumerate(i) if rid >= 0 and int(rid) in meta]
        units = [(meta[int(i[j])]["path"], meta[int(i[j])]["start_s"], meta[int(i[j])]["end_s"]) for j in keep]
        per_query.append(_query_score(q, units, s[keep], len(units)))
    return summarise(per_query, seed=seed)


def _query_score(q: EvalQuery, units: list[tuple], scores: np.ndarray, depth: int) -> dict[str, float]:
    grades = np.array([_grade(q.targets, u) for u in units], dtype=np.float64)
    order = rank_by_score(scores, grades)[:depth]
    return query_metrics(gains_of([units[j] for j in order], q.targets), [t.grade for t in q.targets])


def _grade(targets: list[Target], unit: tuple) -> float:
    return max((t.grade for t in targets if t.covers(*unit)), default=0.0)


def gains_of(ranked_units: list[tuple], targets: list[Target]) -> list[float]:
    """The gains of a ranked list of units (key, start_s, end_s): a unit's gain is the highest
    grade among the targets it overlaps that no earlier unit found; a unit overlapping only
    targets already found is dropped (it is the same moment again); others gain 0."""
    found: set[int] = set()
    gains = []
    for unit in ranked_units:
        covered = [i for i, t in enumerate(targets) if t.covers(*unit)]
        new = [i for i in covered if i not in found]
        if covered and not new:
            continue
        gains.append(max((targets[i].grade for i in new), default=0.0))
        found.update(covered)
    return gains
