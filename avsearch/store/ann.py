"""The FAISS side of an index: a derived, rebuildable vector index over clip row ids.

Below `flat_threshold` vectors the index is exact (flat inner product). Above it, an IVF index of
compact codes whose candidates are re-scored exactly against a float16 copy of the vectors
memory-mapped beside it (rescore_vectors.py; the index keeps only codes and ids in RAM). How many
candidates are re-scored adapts to k and to the scores seen (see `_rescore_growing`).

* The inverted lists come from spherical k-means in the *full* space, and queries pick the lists to
  probe there (float16 centroids). A collection with more distinct topics than a reduced space has
  dimensions keeps them apart only in the full space: with the lists chosen in a 256-d OPQ space,
  1M synthetic 3584-d vectors in 2,000 clusters lost 6% of their true neighbours to unprobed lists
  at any nprobe, and recall@10 stopped at 0.93.
* The codes (`AnnConfig.codes`) encode each vector's residual to its list centroid:
  - "rabitq" (default): RaBitQ, one bit per dimension of the full space after a Hadamard rotation
    (d/8 bytes + 8 of correction factors: 520 B at 3584-d), scored against the query quantized to
    `query_bits`. Its estimates keep what every dimension says. On the issue-19 data at 1M x 3584
    (uneven clusters whose members differ by isotropic noise spread over all 3584 dims) the true
    top 10 ranked within RaBitQ's first 256 candidates as often as they were in the probed lists at
    all (recall@10 0.985 / 0.980 after re-scoring 256), where the PQ codes' first 16,384 held only
    0.975 of them, and even exact scores in any 256-d reduced space (OPQ 0.88, PCA 0.91) could
    not rank them: the reduction itself loses the noise dimensions that order near neighbours.
  - "pq": OPQ rotation + reduction to `opq_dim`, then `pq_m`-byte PQ codes (PQ on raw 3584-d
    vectors loses most of its recall: 56 dims per sub-quantizer). 7x smaller codes for collections
    whose RAM is the limit (72 B against 528 B a vector with its id); it needs larger candidate
    pools where near neighbours differ in many dimensions.

faiss supports this split of lists and codes: vectors are added with precomputed list numbers
(`add_core`) and searched with precomputed probes (`search_preassigned`).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import threading
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Optional

import faiss
import numpy as np

from avsearch.store.lookup import find_sorted
from avsearch.store.rescore_vectors import RescoreVectors

INDEX_FILE = "index.faiss"
COARSE_FILE = "coarse.faiss"
META_FILE = "ann.json"
LAYOUT = 4  # saved indexes of another layout are rebuilt, never misread (1: lists in the OPQ space;
# 2: no re-scoring vectors of its own; 3: PQ codes only)
_BLOCK = 65_536  # rows converted to float32 at a time (float16 input never doubles in memory)
_BLAS_ASSIGN_ROWS = 2_048  # adding at least this many rows: list assignment through a float32 copy
# A search of this few queries runs faiss on the calling thread alone, but for the scan of the
# probed lists' codes. Every OpenMP region it enters (the transform, the list choice) wakes the
# team and waits for it: with the cores busy, a single 128-d query spent 25 ms in OPQ's apply and
# 10 ms choosing lists, both microseconds of work (the ~24 ms p99 seen at 1024-d came from such
# waits). The scan is milliseconds of work that splits by list: at 1M x 3584 (100 lists of ~500
# RaBitQ codes) one query took p50 10.7 / p99 41.5 ms on one thread, 7.5 / 13.5 ms on two.
_FEW_QUERIES = 4
_few = threading.local()  # .threads: the caller's OpenMP threads, inside a search of few queries
# Below this many codes per scan the split costs more than it saves: at 200k x 3584 (64 lists of
# ~220 codes, ~14k codes) one thread took p50 5.0 / p99 9.2 ms against 6.7 / 18.7 on two, timed
# between LanceDB's and exact searches; at 1M (100 lists of ~500, ~50k codes) two threads took
# p50 7.5 / p99 13.5 against 10.7 / 41.5 on one.
_SPLIT_SCAN_CODES = 32_768
# A candidate pool that may miss a neighbour doubles. With only the added candidates re-scored,
# small steps save re-scoring: 100k x 1024, the merging path's cross-modal queries, x2 against x4:
# 431 against 574 vectors re-scored on average (p99 2,048 against 4,096). The code scan behind a
# grown pool is taken once, at max_candidates (`_ScanMemo`): every scan reads every code of the
# probed lists, so a deep one costs little more (200k x 3584: 1.4 ms at k=256, 3.2 ms at 4,096)
# than the up to four rescans of 1.4-2.4 ms each that doubling took.
_POOL_GROWTH = 2
_SMALL_SUBSET = 20_000  # an allowed set this small is scored exactly: cheaper than probing lists
# PQ codes: above this many (training point x sub-quantizer) k-means assignments per PQ pass, the build uses
# the fast settings below instead of faiss's
# defaults (50 OPQ iterations, 25 k-means iterations per PQ sub-quantizer), which made the OPQ
# training most of a 130 s build for 60k x 1024 on 2 cores. The rotation is only a coarse
# pre-filter here (candidates are re-scored exactly), so fewer iterations will do.
LARGE_TRAINING_CLUSTERING = 200_000
OPQ_ITERATIONS = 20
PQ_ITERATIONS = 15  # k-means iterations per PQ sub-quantizer
LIST_KMEANS_ITERATIONS = 10
LIST_KMEANS_POINTS = 64  # training points per list for the full-space k-means (faiss warns below 39)


IVF_MIN_VECTORS = 256  # fewer clips make too few lists; PQ codes also need a training point per centroid
ROTATION_SEED = 1  # the Hadamard rotation's random signs (saved with the index)
_RABITQ_TRAIN_ROWS = 4_096
CODES = ("rabitq", "pq")


@dataclass(frozen=True)
class AnnConfig:
    flat_threshold: int = 50_000  # below this many vectors: exact flat inner product
    codes: str = "rabitq"  # "rabitq" or "pq" (see the module doc)
    # RaBitQ: bits the query is quantized to. 4 and 8 recalled alike at 1M x 3584 (0.985), 8 took
    # 16 ms a scan against 11-13; 0 (float queries) took ~3 s.
    query_bits: int = 4
    opq_dim: int = 256  # PQ codes: OPQ rotation + reduction to this many dims before PQ (clamped to d)
    pq_m: int = 64  # PQ codes: sub-quantizers = bytes per code at 8 bits
    nlist: Optional[int] = None  # None: ~2·sqrt(n), with >= 39 training points per list
    nprobe: Optional[int] = None  # None: chosen from nlist
    refine_factor: int = 10  # candidates re-scored exactly: at least k · refine_factor ...
    min_candidates: int = 256  # ... and at least this many (a group of near-duplicates can fill k · 10)
    max_candidates: int = 4096  # the pool grows (x2 a step) up to this while the code scores say it may miss
    train_size: Optional[int] = None  # None: min(n, max(100k, 39·nlist))
    retrain_growth: float = 2.0  # retrain when the collection has grown this much since training
    use_gpu: Optional[bool] = None  # None: use faiss GPUs when faiss has any
    # Threads a search of few queries scans its probed lists on (at most the caller's OpenMP
    # threads). Measured with 2 (this machine's cores); 1 where other work keeps the cores busy
    # (a second thread that waits for a core holds up the whole scan).
    scan_threads: int = 2

    def __post_init__(self):
        if self.codes not in CODES:
            raise ValueError(f"AnnConfig.codes must be one of {CODES}, not {self.codes!r}")

    def choose_nlist(self, n: int) -> int:
        # Probing happens in the full space (nlist x d per query), so fewer, larger lists than the
        # usual 4·sqrt(n): 2,000 lists of 500 at 1M.
        if self.nlist:
            return self.nlist
        return max(1, min(int(2 * math.sqrt(n)), n // 39))

    def candidates(self, k: int) -> int:
        return max(k, k * self.refine_factor, self.min_candidates)

    def choose_nprobe(self, nlist: int) -> int:
        # A twentieth of the lists, at least 64. On clusters of one noise level, 8 of 2,000 lists
        # held every true neighbour of 1M 3584-d vectors; on clusters of uneven size and noise (the
        # issue-19 generator) at 100k x 1024 (632 lists) 16 probes recalled 0.88 / 0.87 (cross-
        # modal) at k=10, 32 recalled 0.96, 64 recalled 0.998 / 0.985, whatever the candidate pool;
        # at 1M x 3584 (2,000 lists, RaBitQ codes) 100 probes recalled 0.986 / 0.988, 200 probes
        # 0.988 / 0.988 at 1.5x the scan time (a RaBitQ code is 520 bytes there: the scan is
        # most of a search).
        if self.nprobe:
            return min(self.nprobe, nlist)
        return max(1, min(nlist, max(64, nlist // 20)))


class AnnIndex:
    def __init__(self, index: faiss.Index, kind: str, dim: int, config: AnnConfig, trained_on: int = 0,
                 coarse: Optional[faiss.Index] = None, rescore: Optional[RescoreVectors] = None):
        # flat: IndexIDMap2(FlatIP); ivf: PreTransform(Hadamard rotation, IVF-RaBitQ) or
        # PreTransform(OPQ, IVF-PQ), by config.codes
        self.index = index
        self.kind = kind
        self.dim = dim
        self.config = config
        self.trained_on = trained_on
        self.coarse = coarse  # ivf: the full-space list centroids (float16, inner product)
        self._ivf = faiss.extract_index_ivf(index) if kind == "ivf" else None
        # The rotation (RaBitQ) or rotation + reduction (OPQ) into the space the codes are taken in.
        self._transform = (faiss.downcast_VectorTransform(faiss.downcast_index(index).chain.at(0))
                           if self._ivf else None)
        # PQ: the list centroids as the codes see them (rotated, reduced): scores of the probed
        # lists in that space are the base every PQ score of the list adds to. (RaBitQ scores
        # the query against each probed centroid itself and ignores a base.)
        self._code_centroids = (self._ivf.quantizer.reconstruct_n(0, self._ivf.nlist)
                                if self._ivf and config.codes == "pq" else None)
        self.owner = ""  # whose index this is, as saved (see save)
        self._gpu_coarse = None
        self.changes = 0  # adds and removals so far, in memory
        # ivf: the vectors candidates are re-scored with (a flat index holds exact vectors itself)
        self.rescore = rescore if rescore is not None or kind == "flat" else RescoreVectors(dim)

    @property
    def ntotal(self) -> int:
        return int(self._ivf.ntotal if self._ivf is not None else self.index.ntotal)

    @property
    def ids(self) -> np.ndarray:
        """The row ids held (read from faiss, not kept twice: 8 bytes a vector saved)."""
        if self._ivf is None:
            return faiss.vector_to_array(faiss.downcast_index(self.index).id_map).astype(np.int64)
        invlists = self._ivf.invlists
        parts = [faiss.rev_swig_ptr(invlists.get_ids(i), invlists.list_size(i)).copy()
                 for i in range(self._ivf.nlist) if invlists.list_size(i)]
        return np.sort(np.concatenate(parts)) if parts else np.zeros(0, np.int64)

    # -- building --------------------------------------------------------------------------

    @classmethod
    def build(cls, vectors: np.ndarray, ids: np.ndarray, config: AnnConfig = AnnConfig()) -> "AnnIndex":
        vectors = np.asarray(vectors)
        n, d = vectors.shape
        if n < config.flat_threshold:
            ann = cls(faiss.IndexIDMap2(faiss.IndexFlatIP(d)), "flat", d, config)
        else:
            index, coarse = _train_ivf(vectors, config)
            ann = cls(index, "ivf", d, config, trained_on=n, coarse=coarse)
        ann.add(vectors, ids)
        return ann

    @classmethod
    def build_streamed(cls, n: int, sample: np.ndarray, blocks, config: AnnConfig = AnnConfig(),
                       spill_dir: Optional[Path] = None) -> "AnnIndex":
        """An IVF index of `n` vectors trained on `sample` (rows drawn at random from them, see
        `training_rows`), then filled from `blocks`, an iterable of (ids, vectors): the process
        holds the sample and one block, never the n vectors (10M x 3584 float32 would be 143 GB);
        their float16 re-scoring copies go to a file in `spill_dir` until the index is saved."""
        index, coarse = _train_ivf(np.asarray(sample), config, n_total=n)
        dim = np.asarray(sample).shape[1]
        ann = cls(index, "ivf", dim, config, trained_on=n, coarse=coarse, rescore=RescoreVectors(dim, spill_dir))
        for ids, vectors in blocks:
            if len(ids):
                ann.add(vectors, ids)
        return ann

    def add(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        ids = np.asarray(ids, dtype=np.int64)
        assign = self.coarse
        if self._ivf is not None and len(ids) >= _BLAS_ASSIGN_ROWS:
            # Many rows to place: a float32 copy of the centroids lets faiss use BLAS (the float16
            # index scores row by row: ~8 minutes instead of ~1 for 1M x 3584 into 2,000 lists).
            assign = faiss.IndexFlatIP(self.dim)
            assign.add(self.coarse.reconstruct_n(0, self.coarse.ntotal))
        for start in range(0, len(ids), _BLOCK):
            block = np.ascontiguousarray(vectors[start : start + _BLOCK], dtype=np.float32)
            block_ids = np.ascontiguousarray(ids[start : start + _BLOCK])
            if self._ivf is None:
                self.index.add_with_ids(block, block_ids)
                continue
            self.rescore.add(block, block_ids)
            _, lists = assign.search(block, 1)
            coded = np.ascontiguousarray(self._transform.apply(block))
            lists = np.ascontiguousarray(lists.reshape(-1))
            self._ivf.add_core(len(block), faiss.swig_ptr(coded), faiss.swig_ptr(block_ids), faiss.swig_ptr(lists))
        self._sync_ntotal()

    def remove(self, ids: np.ndarray) -> int:
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        removed = int(self.index.remove_ids(faiss.IDSelectorBatch(ids)))
        if self.rescore is not None:
            self.rescore.remove(ids)
        self._sync_ntotal()
        return removed

    def _sync_ntotal(self) -> None:
        if self._ivf is not None:  # add_core bypasses the wrapper, which saves its own count
            self.index.ntotal = self._ivf.ntotal
        self.changes += 1  # a SearchState of before no longer serves (see _ScanMemo.serves)

    def needs_rebuild(self) -> bool:
        c = self.config
        if self.kind == "flat":
            return self.ntotal >= c.flat_threshold
        return self.ntotal > self.trained_on * c.retrain_growth or self.ntotal < c.flat_threshold // 2

    # -- searching -------------------------------------------------------------------------

    def search(self, queries: np.ndarray, k: int, *, allowed_ids: Optional[np.ndarray] = None,
               fetch_vectors: Optional[Callable[[np.ndarray], np.ndarray]] = None,
               state: Optional["SearchState"] = None) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids), each (q, k), best first, -1 ids where fewer than k exist.

        IVF candidates are re-scored exactly with `fetch_vectors(ids)` when given, else with the
        index's own re-scoring vectors. `state`: the same queries' earlier search, continued
        instead of repeated (asking again for a larger k)."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if len(queries) <= _FEW_QUERIES:
            with _one_omp_thread():
                return self._search_all(queries, k, allowed_ids, fetch_vectors, state)
        return self._search_all(queries, k, allowed_ids, fetch_vectors, state)

    def _search_all(self, queries, k, allowed_ids, fetch_vectors, state=None):
        fetch = fetch_vectors
        if fetch is None and self.rescore is not None:
            fetch = self.rescore.get
        if fetch_vectors is None and self.rescore is not None:
            score = self.rescore.inner_products  # from the float16 rows as stored
        else:
            def score(ids, query):
                return _exact_scores(fetch(ids), query)
        if allowed_ids is not None:
            allowed_ids = np.asarray(allowed_ids, dtype=np.int64)
            if fetch is not None and len(allowed_ids) <= max(_SMALL_SUBSET, k):
                # A selective filter: score the allowed clips exactly, always k results.
                if fetch_vectors is None:  # own vectors: a clip the index does not hold is no result
                    return self.rescore.top_k(allowed_ids[self.rescore.rows_of(allowed_ids) >= 0], queries, k)
                return _exact_subset(queries, k, allowed_ids, fetch)
        if self.kind == "flat":
            return self._search_flat(queries, k, allowed_ids)
        nlist = self._ivf.nlist
        pool = self.config.candidates(k)
        memo = (state or SearchState()).memo_for(self, queries, allowed_ids, fetch_vectors)
        if memo.probe is None:
            memo.probe = self._probe(queries, self.config.choose_nprobe(nlist))
        scores, cand = memo.scan(np.arange(len(queries)), pool, pool)
        if allowed_ids is not None and (cand[:, k - 1] < 0).any() and memo.probe[0].shape[1] < nlist:
            # Too few allowed vectors in the probed lists: probe them all.
            memo.probe, memo.scans = self._probe(queries, nlist), {}
            scores, cand = memo.scan(np.arange(len(queries)), pool, pool)
        if fetch is None:
            return scores[:, :k], cand[:, :k]
        return self._rescore_growing(queries, k, pool, scores, cand, score, memo)

    def _rescore_growing(self, queries, k, pool, scores, cand, score, memo: "_ScanMemo"):
        """Exact top k of each query's candidates, growing a query's pool (x2, up to
        max_candidates) while an unseen candidate could still beat its k-th exact score.

        The code scores are estimates, not bounds. PQ codes of the OPQ-reduced space miss the dropped
        dimensions' share of every score, a shift common to all candidates (the median gap; RaBitQ's
        estimates are unbiased and their median gap ~0); the
        largest deviation from it seen in the pool, either sign, stands for the error of unseen
        candidates (only the sign is skewed by selection: the pool holds the candidates the
        estimates flattered, the unseen ones those it under-rated). An unseen candidate's
        estimate is at most the pool's lowest, so the pool is complete once that plus shift and
        error falls below the k-th exact score. (Without the shift, 1024-d queries grew their
        pools to the cap: 30-40 ms instead of 2-3.) A pool too small for k fails that test when it
        is filled by near-duplicates (consecutive clips of one video) whose estimates all sit near
        the top: k=10 from 100 candidates recalled 0.76-0.89 of the true 10 on such data."""
        q = len(queries)
        out_s = np.full((q, k), -np.inf, dtype=np.float32)
        out_i = np.full((q, k), -1, dtype=np.int64)
        rows = np.arange(q)
        scored = memo.scored
        while True:
            again = []
            for j, row in enumerate(rows):
                valid = cand[j] >= 0
                ids, approx = cand[j][valid], scores[j][valid]
                if not len(ids):
                    continue
                # A grown pool holds the smaller one: only its new candidates are fetched and scored.
                known = scored.setdefault(int(row), _ScoredCandidates())
                exact = known.scores(ids, lambda new: score(new, queries[row]))
                order = np.argsort(-exact, kind="stable")[:k]
                out_s[row, : len(order)] = exact[order]
                out_i[row, : len(order)] = ids[order]
                if len(ids) < pool or len(order) < k or pool >= self.config.max_candidates:
                    continue  # every vector of the probed lists seen, or the cap reached
                gap = exact - approx
                bias = float(np.median(gap))  # codes of a reduced space under-rate every score alike
                error = bias + float(np.abs(gap - bias).max())
                if approx[-1] + error >= exact[order[-1]]:
                    again.append(row)
            if not again:
                return out_s, out_i
            pool = min(pool * _POOL_GROWTH, self.config.max_candidates)
            rows = np.asarray(again)
            scores, cand = memo.scan(rows, pool, self.config.max_candidates)

    def _search_flat(self, queries, k, allowed_ids):
        sel = faiss.IDSelectorBatch(allowed_ids) if allowed_ids is not None else None
        params = faiss.SearchParameters(sel=sel) if sel is not None else None
        return self.index.search(queries, int(k), params=params)

    def _probe(self, queries, nprobe) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(lists to probe, queries in the code space, each probed list's centroid score), kept
        so a growing candidate pool scans the same lists without choosing them again."""
        nprobe = int(min(nprobe, self._ivf.nlist))
        _, lists = self._coarse_index().search(queries, nprobe)
        coded = np.ascontiguousarray(self._transform.apply(queries))
        lists = np.ascontiguousarray(lists, dtype=np.int64)
        if self._code_centroids is None:
            base = np.zeros(lists.shape, np.float32)
        else:
            base = np.ascontiguousarray(
                np.einsum("qpd,qd->qp", self._code_centroids[np.maximum(lists, 0)], coded), dtype=np.float32)
        return lists, coded, base

    def _scan(self, probe, k, allowed_ids):
        lists, coded, base = probe
        sel = faiss.IDSelectorBatch(allowed_ids) if allowed_ids is not None else None
        if self.config.codes == "rabitq":
            params = faiss.IVFRaBitQSearchParameters()
            params.nprobe, params.qb = lists.shape[1], self.config.query_bits
            if sel is not None:
                params.sel = sel
        else:
            params = faiss.SearchParametersIVF(nprobe=lists.shape[1], sel=sel)
        n, k = len(lists), int(k)
        scores = np.empty((n, k), dtype=np.float32)
        ids = np.empty((n, k), dtype=np.int64)
        # The C entry point: faiss's Python wrapper of search_preassigned refuses search parameters
        # (nprobe, id selector).
        codes = n * lists.shape[1] * self._ivf.ntotal / max(1, self._ivf.nlist)  # about, for the split
        with _scan_threads(self._ivf, self.config.scan_threads if codes >= _SPLIT_SCAN_CODES else 1):
            self._ivf.search_preassigned_c(n, faiss.swig_ptr(coded), k, faiss.swig_ptr(lists), faiss.swig_ptr(base),
                                           faiss.swig_ptr(scores), faiss.swig_ptr(ids), False, params)
        return scores, ids

    def _coarse_index(self) -> faiss.Index:
        """Where lists are chosen: a GPU copy when faiss has GPUs (and config allows), else the CPU
        index. Choosing lists is the part that grows with the collection (nlist x d per query);
        scanning the probed lists' codes stays on the CPU."""
        use_gpu = self.config.use_gpu
        if use_gpu is False or not hasattr(faiss, "StandardGpuResources") or faiss.get_num_gpus() == 0:
            return self.coarse
        if self._gpu_coarse is None:
            self._gpu_res = faiss.StandardGpuResources()
            cfg = faiss.GpuIndexFlatConfig()
            cfg.useFloat16 = True
            gpu = faiss.GpuIndexFlatIP(self._gpu_res, self.dim, cfg)
            gpu.add(self.coarse.reconstruct_n(0, self.coarse.ntotal))
            self._gpu_coarse = gpu
        return self._gpu_coarse

    # -- persistence -----------------------------------------------------------------------

    def save(self, directory: Path, *, covers_version: int | list[int], owner: str = "") -> None:
        """Write into a fresh folder, then swap it in, so readers never see a half-written index.
        `covers_version` is what the caller needs to tell whether it is fresh (the store saves
        its clips and files table versions); load returns it as saved. `owner` names the index
        this one was built for (the store's identity), kept as `self.owner` by load."""
        directory = Path(directory)
        tmp = directory.with_name(directory.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        faiss.write_index(self.index, str(tmp / INDEX_FILE))
        if self.coarse is not None:
            faiss.write_index(self.coarse, str(tmp / COARSE_FILE))
        if self.rescore is not None:
            self.rescore.save(tmp)
        meta = {"layout": LAYOUT, "kind": self.kind, "dim": self.dim, "ntotal": self.ntotal,
                "covers_version": covers_version if isinstance(covers_version, list) else int(covers_version),
                "trained_on": self.trained_on, "config": asdict(self.config), "owner": owner}
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2))
        old = directory.with_name(directory.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if directory.exists():
            os.replace(directory, old)
        os.replace(tmp, directory)
        shutil.rmtree(old, ignore_errors=True)
        if self.rescore is not None:  # from now on read from (and extended from) the saved file
            self.rescore = RescoreVectors.load(directory, self.dim, spill_dir=directory.parent)
        self.owner = owner

    @classmethod
    def load(cls, directory: Path) -> tuple["AnnIndex", int]:
        directory = Path(directory)
        meta_path = directory / META_FILE
        if not meta_path.is_file():
            raise FileNotFoundError(f"no ANN index at {directory}")
        try:
            meta = json.loads(meta_path.read_text())
            if meta.get("layout") != LAYOUT:
                raise ValueError(f"layout {meta.get('layout')}, this avsearch reads {LAYOUT}")
            index = faiss.read_index(str(directory / INDEX_FILE))
            coarse = faiss.read_index(str(directory / COARSE_FILE)) if meta["kind"] == "ivf" else None
            config = AnnConfig(**meta["config"])
            rescore = (RescoreVectors.load(directory, meta["dim"], spill_dir=directory.parent)
                       if meta["kind"] == "ivf" else None)
            ann = cls(index, meta["kind"], meta["dim"], config, meta.get("trained_on", 0), coarse, rescore)
            ann.owner = str(meta.get("owner", ""))
        except (OSError, RuntimeError, KeyError, TypeError, ValueError, json.JSONDecodeError) as err:
            raise ValueError(f"the ANN index at {directory} is unreadable ({err}); run `avsearch reindex`") from err
        if ann.ntotal != meta["ntotal"] or (coarse is not None and coarse.ntotal != ann._ivf.nlist) or (
                ann.rescore is not None and len(ann.rescore) != ann.ntotal):
            raise ValueError(f"the ANN index at {directory} is inconsistent; run `avsearch reindex`")
        return ann, meta["covers_version"]

    def rescore_bytes(self) -> int:
        """Bytes of the memory-mapped float16 re-scoring vectors (page cache, not process memory;
        dim x 2 per vector, plus rows of removed clips until the file is rewritten)."""
        return self.rescore.disk_bytes() if self.rescore is not None else 0

    def memory_bytes(self) -> int:
        """What the index holds in memory beside the stored vectors (capacity slack of faiss's
        growable lists aside; the re-scoring vectors are `rescore_bytes`)."""
        if self._ivf is None:
            return self.ntotal * (self.dim * 4 + 8)
        ivf, transform = self._ivf, self._transform
        # full-space float16 + code space (faiss's quantizer, and PQ's numpy copy)
        lists = ivf.nlist * (self.dim * 2 + ivf.d * 4 * (2 if self._code_centroids is not None else 1))
        rescore = self.rescore.ram_bytes() if self.rescore is not None else 0
        matrix = transform.d_in * transform.d_out * 4 if self.config.codes == "pq" else transform.d_out * 3 * 4
        return self.ntotal * (ivf.code_size + 8) + lists + matrix + rescore


@contextmanager
def _one_omp_thread():
    # omp_set_num_threads changes the calling thread's setting only: searches on other threads keep theirs.
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    _few.threads = before
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)
        _few.threads = None


@contextmanager
def _scan_threads(ivf: faiss.IndexIVF, limit: int):
    """Inside a search of few queries, the list scan alone gets up to `limit` of the
    caller's threads, splitting each query's probed lists among them (faiss's parallel_mode 1;
    mode 0 splits queries). Capped: the service searches for several clients at once, each
    search with its own OpenMP team, and teams larger than the cores wait on each other. The
    mode is the index's, shared: a batch searched meanwhile on another thread may run in the
    other mode, with the same results."""
    threads = min(getattr(_few, "threads", None) or 1, limit)
    if threads < 2:
        ivf.parallel_mode = 0
        yield
        return
    ivf.parallel_mode = 1
    faiss.omp_set_num_threads(threads)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(1)


def training_rows(n: int, config: AnnConfig) -> int:
    """How many of n vectors an IVF build trains on (the rest are only added)."""
    return min(n, config.train_size or max(100_000, 39 * config.choose_nlist(n)))


def _train_ivf(vectors: np.ndarray, config: AnnConfig, n_total: Optional[int] = None) -> tuple[faiss.Index, faiss.Index]:
    """(PreTransform(rotation, IVF with codes) trained but empty, full-space float16 list centroids).
    `n_total`: the vectors the index will hold when `vectors` is only a sample of them."""
    n, d = vectors.shape
    nlist = config.choose_nlist(n_total or n)
    train_n = min(n, training_rows(n_total or n, config))
    rng = np.random.default_rng(0)
    sample = np.ascontiguousarray(vectors[np.sort(rng.choice(n, size=train_n, replace=False))], dtype=np.float32)

    # 1. The lists: spherical k-means in the full space (unit centroids suit inner product).
    kmeans = faiss.Kmeans(d, nlist, niter=LIST_KMEANS_ITERATIONS, spherical=True, seed=1,
                          max_points_per_centroid=LIST_KMEANS_POINTS)
    kmeans.train(sample)
    coarse = faiss.IndexScalarQuantizer(d, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT)
    coarse.add(kmeans.centroids)

    # 2. The codes, of residuals to those lists' centroids seen through the code space's transform.
    train = _train_rabitq if config.codes == "rabitq" else _train_pq
    index = train(sample, kmeans.centroids, nlist, config)
    index.is_trained = True
    return index, coarse


def _train_rabitq(sample: np.ndarray, centroids: np.ndarray, nlist: int, config: AnnConfig) -> faiss.Index:
    # RaBitQ's error bound assumes randomly rotated vectors (faiss leaves the rotation to its
    # caller): without one, a dimension that dominates the residuals (embedding models have such
    # outlier dimensions) would get one bit like every other. Sign flips + Walsh-Hadamard cost
    # O(d log d) per vector where a dense random rotation reads a d x d matrix (51 MB at 3584-d,
    # ~5 ms a query); d is padded to the next power of two (3584 -> 4096 bits).
    d = sample.shape[1]
    rotation = faiss.HadamardRotation(d, ROTATION_SEED)
    quantizer = faiss.IndexFlatIP(rotation.d_out)
    quantizer.add(rotation.apply(centroids))
    ivf = faiss.IndexIVFRaBitQ(quantizer, rotation.d_out, nlist, faiss.METRIC_INNER_PRODUCT, True, 1)
    ivf.qb = config.query_bits
    # A full quantizer is not re-trained; the encoder learns nothing from data, so a few rows do.
    ivf.train(rotation.apply(sample[:_RABITQ_TRAIN_ROWS]))
    return _owning_pretransform(rotation, ivf, quantizer)


def _train_pq(sample: np.ndarray, centroids: np.ndarray, nlist: int, config: AnnConfig) -> faiss.Index:
    train_n, d = sample.shape
    # At least 4 dims per sub-quantizer: 1- or 2-dim k-means is both useless and, in faiss, slow
    # (PQ64 on 128-d took 38 s to train on 20k rows).
    m = max(1, min(config.pq_m, min(config.opq_dim, d) // 4))
    opq_dim = max(m, (min(config.opq_dim, d) // m) * m)  # a multiple of m, at most d
    # 8-bit codes need 256 centroids per sub-quantizer; fewer training points get fewer bits.
    nbits = int(max(4, min(8, math.floor(math.log2(max(train_n, 16) / 39)))))
    # Cost-capped training. OPQ re-trains a PQ every iteration, and faiss k-means on 4-dim
    # sub-vectors is ~10x slower per point than on 8-dim ones: on large training sets the rotation
    # is learnt for 8-dim sub-spaces with fewer iterations (a 100k x 3584 build takes
    # 105 s, not an hour); small sets get faiss's full-quality defaults, which cost seconds.
    large = train_n * m > LARGE_TRAINING_CLUSTERING
    opq_m = max(1, opq_dim // 8) if large and opq_dim % 8 == 0 else m
    # OPQ rotation + reduction, then IVF-PQ whose lists are the full-space ones seen through the
    # rotation ("np": no polysemous training, which avsearch never uses and which cost ~2 s per
    # sub-quantizer).
    index = faiss.index_factory(d, f"OPQ{opq_m}_{opq_dim},IVF{nlist},PQ{m}x{nbits}np", faiss.METRIC_INNER_PRODUCT)
    opq = faiss.downcast_VectorTransform(faiss.downcast_index(index).chain.at(0))
    ivf = faiss.downcast_index(faiss.extract_index_ivf(index))
    if large:
        opq.niter = OPQ_ITERATIONS
        ivf.pq.cp.niter = PQ_ITERATIONS
    opq.train(sample)
    ivf.quantizer.add(opq.apply(centroids))  # a full quantizer is not re-trained by ivf.train
    # Residuals for PQ training are taken to the nearest reduced centroid, a close stand-in for the
    # full-space list each vector is added to.
    ivf.train(opq.apply(sample))
    return index


def _owning_pretransform(transform: faiss.VectorTransform, ivf: faiss.IndexIVF, quantizer: faiss.Index) -> faiss.Index:
    """PreTransform(transform, ivf) that frees its parts with itself, as a read index does (the
    Python objects made here would otherwise each free their C++ object on their own)."""
    index = faiss.IndexPreTransform(transform, ivf)
    ivf.own_fields = True
    quantizer.this.disown()
    index.own_fields = True
    transform.this.disown()
    ivf.this.disown()
    return index


class SearchState:
    """What a search of some queries has done so far (the lists chosen, the code scans, the exact
    scores taken), for asking the same queries again with a larger k: the retriever does when
    merging adjacent clips left fewer than k hits. Valid for one index, filter and re-scoring
    source; a search with any of them changed starts afresh."""

    def __init__(self):
        self._memo: Optional[_ScanMemo] = None

    def memo_for(self, ann: "AnnIndex", queries: np.ndarray, allowed_ids, fetch_vectors) -> "_ScanMemo":
        memo = self._memo
        if memo is None or not memo.serves(ann, queries, allowed_ids, fetch_vectors):
            memo = self._memo = _ScanMemo(ann, queries, allowed_ids, fetch_vectors)
        return memo


class _ScanMemo:
    """One search's probe, code scans and exact scores, by query row."""

    def __init__(self, ann: "AnnIndex", queries: np.ndarray, allowed_ids, fetch_vectors):
        self.ann, self.queries, self.allowed_ids, self.fetch_vectors = ann, queries.copy(), allowed_ids, fetch_vectors
        self.changes = ann.changes  # an index updated in place since (appends, removals) is searched afresh
        self.probe: Optional[tuple[np.ndarray, np.ndarray, np.ndarray]] = None
        # row -> {depth: (code scores, ids), best first}. Kept per depth: among tied code scores a
        # scan's heap keeps the first it meets, so the top 400 of a 4,096-deep scan can differ from
        # a 400-deep scan; a search continued from this memo then answers as a fresh one would.
        self.scans: dict[int, dict[int, tuple[np.ndarray, np.ndarray]]] = {}
        self.scored: dict[int, _ScoredCandidates] = {}

    def serves(self, ann, queries, allowed_ids, fetch_vectors) -> bool:
        return (ann is self.ann and ann.changes == self.changes and fetch_vectors is self.fetch_vectors
                and np.array_equal(queries, self.queries)
                and (allowed_ids is None) == (self.allowed_ids is None)
                and (allowed_ids is None or np.array_equal(allowed_ids, self.allowed_ids)))

    def scan(self, rows: np.ndarray, pool: int, scan_k: int) -> tuple[np.ndarray, np.ndarray]:
        """The best `pool` PQ candidates of each of `rows`, cut from a scan max(pool, scan_k)
        deep: an earlier one of that depth (or one that saw every code of the probed lists), else
        a new one."""
        depth = max(pool, scan_k)
        todo = [r for r in rows if self._taken(int(r), depth) is None]
        if todo:
            lists, reduced, base = self.probe
            at = np.asarray(todo)
            s, i = self.ann._scan((lists[at], reduced[at], base[at]), depth, self.allowed_ids)
            for j, r in enumerate(todo):
                self.scans.setdefault(int(r), {})[depth] = (s[j], i[j])
        scores = np.full((len(rows), pool), -np.inf, np.float32)
        ids = np.full((len(rows), pool), -1, np.int64)
        for j, r in enumerate(rows):
            s, i = self._taken(int(r), depth)
            scores[j, : min(pool, len(s))], ids[j, : min(pool, len(i))] = s[:pool], i[:pool]
        return scores, ids

    def _taken(self, row: int, depth: int) -> Optional[tuple[np.ndarray, np.ndarray]]:
        taken = self.scans.get(row, {})
        if depth in taken:
            return taken[depth]
        for s, i in taken.values():
            if len(i) and i[-1] < 0:  # saw every code of the probed lists: any depth is its cut
                return s, i
        return None


class _ScoredCandidates:
    """One query's exact scores so far, by row id (sorted), so that growing its candidate pool
    re-scores only the candidates the larger pool adds (a pool grown 256 -> 512 -> 1,024 fetches
    1,024 vectors, not 1,792)."""

    def __init__(self):
        self._ids = np.zeros(0, np.int64)
        self._scores = np.zeros(0, np.float32)

    def scores(self, ids: np.ndarray, score_new: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        at, found = find_sorted(self._ids, ids)
        out = np.empty(len(ids), np.float32)
        out[found] = self._scores[at[found]]
        new = ~found
        if new.any():
            out[new] = score_new(ids[new])
            merged_ids = np.concatenate([self._ids, ids[new]])
            order = np.argsort(merged_ids, kind="stable")
            self._ids = merged_ids[order]
            self._scores = np.concatenate([self._scores, out[new]])[order]
        return out


def _exact_scores(vectors: np.ndarray, query: np.ndarray) -> np.ndarray:
    # einsum, not `@`: a BLAS matrix-vector product of this size wakes numpy's own BLAS threads,
    # which then fight faiss's OpenMP threads for the cores (single queries at refine x20 took 8
    # or 16 ms instead of ~2).
    return np.einsum("nd,d->n", np.asarray(vectors, dtype=np.float32), query)


def _exact_subset(queries, k, allowed_ids, fetch_vectors):
    q = len(queries)
    out_s = np.full((q, k), -np.inf, dtype=np.float32)
    out_i = np.full((q, k), -1, dtype=np.int64)
    if not len(allowed_ids):
        return out_s, out_i
    vecs = np.asarray(fetch_vectors(allowed_ids), dtype=np.float32)
    scores = queries @ vecs.T
    for row in range(q):
        order = np.argsort(-scores[row], kind="stable")[:k]
        out_s[row, : len(order)] = scores[row, order]
        out_i[row, : len(order)] = allowed_ids[order]
    return out_s, out_i
