"""One model shared by every request and indexing job, with text queries batched together.

Requests run in worker threads. Text queries go to one batching thread: it takes the first
waiting query, gathers whatever else arrives within `max_wait_s` (up to `max_batch`), embeds
them in one call and hands each caller its row. Every call into the model, batched texts and
clips alike (media queries, re-ranking, indexing), holds one lock: the model is used by one
caller at a time, so its memory stays that of one batch.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from typing import Optional, Sequence

import numpy as np


class SharedEmbedder:
    """Wraps an Embedder (same contract); safe to call from many threads."""

    def __init__(self, inner, *, max_wait_s: float = 0.004, max_batch: int = 64):
        self._inner = inner
        self._model_lock = threading.Lock()
        self._queue: "queue.Queue[tuple[str, Future]]" = queue.Queue()
        self._max_wait_s = max_wait_s
        self._max_batch = max_batch
        self.batches: list[int] = []  # sizes of the text batches run (recent ones), for tests and stats
        threading.Thread(target=self._batch_loop, name="avsearch-text-batcher", daemon=True).start()

    def __getattr__(self, name):  # model_id, source, dim, token_cost and any backend extra
        return getattr(self._inner, name)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        futures = []
        for text in texts:
            future: Future = Future()
            self._queue.put((text, future))
            futures.append(future)
        return np.stack([f.result() for f in futures])

    def embed_clips(self, clips, view, instruction: Optional[str] = None) -> np.ndarray:
        with self._model_lock:
            return self._inner.embed_clips(clips, view, instruction)

    def _batch_loop(self) -> None:
        while True:
            batch = [self._queue.get()]
            deadline = time.monotonic() + self._max_wait_s
            while len(batch) < self._max_batch:
                left = deadline - time.monotonic()
                try:
                    batch.append(self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait())
                except queue.Empty:
                    break
            self._run(batch)

    def _run(self, batch: list[tuple[str, Future]]) -> None:
        try:
            with self._model_lock:
                vectors = self._inner.embed_texts([text for text, _ in batch])
        except BaseException as err:  # every waiting caller gets the error, the loop lives on
            for _, future in batch:
                future.set_exception(err)
            return
        self.batches = (self.batches + [len(batch)])[-1000:]
        for row, (_, future) in zip(vectors, batch):
            future.set_result(row)
