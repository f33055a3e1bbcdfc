"""The FAISS side of an index: a derived, rebuildable vector index over clip row ids.

Below `flat_threshold` vectors the index is exact (flat inner product). Above it, an IVF-PQ index
whose PQ works on an OPQ-rotated, reduced space (PQ on raw 3584-d WAVE vectors loses most of its
recall: 56 dims per sub-quantizer), with k × refine_factor candidates re-scored exactly against
the stored vectors the caller fetches (so the index itself keeps only codes: pq_m bytes + id).
"""

from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Optional

import faiss
import numpy as np

INDEX_FILE = "index.faiss"
META_FILE = "ann.json"
IDS_FILE = "ids.npy"
_BLOCK = 65_536  # rows converted to float32 at a time (float16 input never doubles in memory)
_SMALL_SUBSET = 20_000  # an allowed set this small is scored exactly: cheaper than probing lists
# Above this many (training point x sub-quantizer) k-means assignments per PQ pass, the build uses
# the fast settings below instead of faiss's
# defaults (50 OPQ iterations, 25 k-means iterations per PQ sub-quantizer), which made the OPQ
# training most of a 130 s build for 60k x 1024 on 2 cores. The rotation is only a coarse
# pre-filter here (candidates are re-scored exactly), so fewer iterations will do.
LARGE_TRAINING_CLUSTERING = 200_000
OPQ_ITERATIONS = 20
PQ_ITERATIONS = 15  # k-means iterations per PQ sub-quantizer


@dataclass(frozen=True)
class AnnConfig:
    flat_threshold: int = 50_000  # below this many vectors: exact flat inner product
    opq_dim: int = 256  # OPQ rotation + reduction to this many dims before PQ (clamped to d)
    pq_m: int = 64  # PQ sub-quantizers = bytes per code at 8 bits
    nlist: Optional[int] = None  # None: ~4·sqrt(n), with >= 39 training points per list
    nprobe: Optional[int] = None  # None: chosen from nlist
    refine_factor: int = 10  # candidates = k · refine_factor, re-scored exactly
    train_size: Optional[int] = None  # None: min(n, max(100k, 39·nlist))
    retrain_growth: float = 2.0  # retrain when the collection has grown this much since training
    use_gpu: Optional[bool] = None  # None: use faiss GPUs when faiss has any

    def choose_nlist(self, n: int) -> int:
        if self.nlist:
            return self.nlist
        return max(1, min(int(4 * math.sqrt(n)), n // 39))

    def choose_nprobe(self, nlist: int) -> int:
        if self.nprobe:
            return min(self.nprobe, nlist)
        return max(1, min(nlist, max(16, nlist // 16)))


class AnnIndex:
    def __init__(self, index: faiss.Index, kind: str, dim: int, config: AnnConfig, ids: np.ndarray,
                 trained_on: int = 0):
        self.index = index
        self.kind = kind
        self.dim = dim
        self.config = config
        self.ids = np.asarray(ids, dtype=np.int64)  # the ids held, so callers can diff cheaply
        self.trained_on = trained_on
        self._gpu_index = None

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    # -- building --------------------------------------------------------------------------

    @classmethod
    def build(cls, vectors: np.ndarray, ids: np.ndarray, config: AnnConfig = AnnConfig()) -> "AnnIndex":
        vectors = np.asarray(vectors)
        n, d = vectors.shape
        ids = np.asarray(ids, dtype=np.int64)
        if n < config.flat_threshold:
            index = faiss.IndexIDMap2(faiss.IndexFlatIP(d))
            ann = cls(index, "flat", d, config, np.zeros(0, np.int64))
        else:
            index, trained_on = _train_ivfpq(vectors, config)
            ann = cls(index, "ivfpq", d, config, np.zeros(0, np.int64), trained_on)
        ann.add(vectors, ids)
        return ann

    def add(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        ids = np.asarray(ids, dtype=np.int64)
        for start in range(0, len(ids), _BLOCK):
            block = np.ascontiguousarray(vectors[start : start + _BLOCK], dtype=np.float32)
            self.index.add_with_ids(block, ids[start : start + _BLOCK])
        self.ids = np.concatenate([self.ids, ids])
        self._gpu_index = None

    def remove(self, ids: np.ndarray) -> int:
        ids = np.asarray(ids, dtype=np.int64)
        removed = int(self.index.remove_ids(faiss.IDSelectorBatch(ids)))
        self.ids = self.ids[~np.isin(self.ids, ids)]
        self._gpu_index = None
        return removed

    def needs_rebuild(self) -> bool:
        c = self.config
        if self.kind == "flat":
            return self.ntotal >= c.flat_threshold
        return self.ntotal > self.trained_on * c.retrain_growth or self.ntotal < c.flat_threshold // 2

    # -- searching -------------------------------------------------------------------------

    def search(self, queries: np.ndarray, k: int, *, allowed_ids: Optional[np.ndarray] = None,
               fetch_vectors: Optional[Callable[[np.ndarray], np.ndarray]] = None) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids), each (q, k), best first, -1 ids where fewer than k exist."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if allowed_ids is not None:
            allowed_ids = np.asarray(allowed_ids, dtype=np.int64)
            if fetch_vectors is not None and len(allowed_ids) <= max(_SMALL_SUBSET, k):
                # A selective filter: score the allowed clips exactly, always k results.
                return _exact_subset(queries, k, allowed_ids, fetch_vectors)
        if self.kind == "flat":
            return self._search(queries, k, allowed_ids, None)
        n_cand = max(k, k * self.config.refine_factor)
        scores, cand = self._search(queries, n_cand, allowed_ids, self.config.choose_nprobe(_nlist(self.index)))
        if allowed_ids is not None and (cand[:, k - 1] < 0).any():
            # Too few allowed vectors in the probed lists: probe them all.
            scores, cand = self._search(queries, n_cand, allowed_ids, _nlist(self.index))
        if fetch_vectors is None:
            return scores[:, :k], cand[:, :k]
        return _rescore(queries, k, cand, fetch_vectors)

    def _search(self, queries, k, allowed_ids, nprobe):
        sel = faiss.IDSelectorBatch(allowed_ids) if allowed_ids is not None else None
        if self.kind == "flat":
            params = faiss.SearchParameters(sel=sel) if sel is not None else None
        else:
            params = faiss.SearchParametersPreTransform()
            params.index_params = faiss.SearchParametersIVF(nprobe=int(nprobe), sel=sel)
        index = self.index if sel is not None else self._search_index()
        scores, ids = index.search(queries, int(k), params=params)
        return scores, ids

    def _search_index(self) -> faiss.Index:
        """The GPU copy when faiss has GPUs (and config allows), else the CPU index."""
        use_gpu = self.config.use_gpu
        if use_gpu is False or not hasattr(faiss, "StandardGpuResources") or faiss.get_num_gpus() == 0:
            return self.index
        if self._gpu_index is None:
            co = faiss.GpuClonerOptions()
            co.useFloat16 = True  # 64-byte PQ codes need float16 lookup tables on GPU
            self._gpu_res = faiss.StandardGpuResources()
            self._gpu_index = faiss.index_cpu_to_gpu(self._gpu_res, 0, self.index, co)
        return self._gpu_index

    # -- persistence -----------------------------------------------------------------------

    def save(self, directory: Path, *, covers_version: int) -> None:
        """Write into a fresh folder, then swap it in, so readers never see a half-written index."""
        directory = Path(directory)
        tmp = directory.with_name(directory.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        faiss.write_index(self.index, str(tmp / INDEX_FILE))
        np.save(tmp / IDS_FILE, self.ids)
        meta = {"kind": self.kind, "dim": self.dim, "ntotal": self.ntotal, "covers_version": int(covers_version),
                "trained_on": self.trained_on, "config": asdict(self.config)}
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2))
        old = directory.with_name(directory.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if directory.exists():
            os.replace(directory, old)
        os.replace(tmp, directory)
        shutil.rmtree(old, ignore_errors=True)

    @classmethod
    def load(cls, directory: Path) -> tuple["AnnIndex", int]:
        directory = Path(directory)
        meta_path = directory / META_FILE
        if not meta_path.is_file():
            raise FileNotFoundError(f"no ANN index at {directory}")
        try:
            meta = json.loads(meta_path.read_text())
            index = faiss.read_index(str(directory / INDEX_FILE))
            ids = np.load(directory / IDS_FILE)
            config = AnnConfig(**meta["config"])
        except (OSError, RuntimeError, KeyError, TypeError, json.JSONDecodeError) as err:
            raise ValueError(f"the ANN index at {directory} is unreadable ({err}); run `avsearch reindex`") from err
        if index.ntotal != meta["ntotal"] or len(ids) != index.ntotal:
            raise ValueError(f"the ANN index at {directory} is inconsistent; run `avsearch reindex`")
        return cls(index, meta["kind"], meta["dim"], config, ids, meta.get("trained_on", 0)), meta["covers_version"]

    def memory_bytes(self) -> int:
        if self.kind == "flat":
            return self.ntotal * (self.dim * 4 + 8)
        ivf = faiss.extract_index_ivf(self.index)
        code = ivf.code_size
        opq = self.dim * min(self.config.opq_dim, self.dim) * 4
        return self.ntotal * (code + 8) + ivf.nlist * ivf.d * 4 + opq


def _nlist(index: faiss.Index) -> int:
    return faiss.extract_index_ivf(index).nlist


def _train_ivfpq(vectors: np.ndarray, config: AnnConfig) -> tuple[faiss.Index, int]:
    n, d = vectors.shape
    # At least 4 dims per sub-quantizer: 1- or 2-dim k-means is both useless and, in faiss, slow
    # (PQ64 on 128-d took 38 s to train on 20k rows).
    m = max(1, min(config.pq_m, min(config.opq_dim, d) // 4))
    opq_dim = max(m, (min(config.opq_dim, d) // m) * m)  # a multiple of m, at most d
    nlist = config.choose_nlist(n)
    train_n = min(n, config.train_size or max(100_000, 39 * nlist))
    # 8-bit codes need 256 centroids per sub-quantizer; fewer training points get fewer bits.
    nbits = int(max(4, min(8, math.floor(math.log2(max(train_n, 16) / 39)))))
    # Cost-capped training. OPQ re-trains a PQ every iteration, and faiss k-means on 4-dim
    # sub-vectors is ~10x slower per point than on 8-dim ones: on large training sets the rotation
    # is learnt for 8-dim sub-spaces with fewer iterations (a 100k x 3584 build takes
    # 105 s, not an hour); small sets get faiss's full-quality defaults, which cost seconds.
    large = train_n * m > LARGE_TRAINING_CLUSTERING
    opq_m = max(1, opq_dim // 8) if large and opq_dim % 8 == 0 else m
    # "np": no polysemous training. The factory turns it on for PQ by default; avsearch never
    # searches by Hamming threshold, and it cost ~2 s per sub-quantizer (131 s for PQ64 on 20k rows).
    index = faiss.index_factory(d, f"OPQ{opq_m}_{opq_dim},IVF{nlist},PQ{m}x{nbits}np", faiss.METRIC_INNER_PRODUCT)
    if large:
        opq = faiss.downcast_VectorTransform(faiss.downcast_index(index).chain.at(0))
        opq.niter = OPQ_ITERATIONS
        faiss.downcast_index(faiss.extract_index_ivf(index)).pq.cp.niter = PQ_ITERATIONS
    rng = np.random.default_rng(0)
    sample = np.sort(rng.choice(n, size=train_n, replace=False))
    index.train(np.ascontiguousarray(vectors[sample], dtype=np.float32))
    return index, n


def _rescore(queries: np.ndarray, k: int, cand: np.ndarray,
             fetch_vectors: Callable[[np.ndarray], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    q = len(queries)
    out_s = np.full((q, k), -np.inf, dtype=np.float32)
    out_i = np.full((q, k), -1, dtype=np.int64)
    for row in range(q):
        ids = cand[row][cand[row] >= 0]
        if not len(ids):
            continue
        exact = np.asarray(fetch_vectors(ids), dtype=np.float32) @ queries[row]
        order = np.argsort(-exact, kind="stable")[:k]
        out_s[row, : len(order)] = exact[order]
        out_i[row, : len(order)] = ids[order]
    return out_s, out_i


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
