"""The service's parts without HTTP: text batching, the one-job rule, the service file."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from avsearch.server.batching import SharedEmbedder
from avsearch.server.discovery import ServiceInfo, read_service_file, remove_service_file, write_service_file
from avsearch.server.jobs import JobBusyError, JobRunner


class SlowEmbedder:
    """Counts calls; a text's vector is its length, so each caller can check it got its own row."""

    model_id, source, dim = "fake", "fake", 2

    def __init__(self):
        self.calls: list[int] = []
        self.inside = 0
        self.overlapped = False

    def embed_texts(self, texts):
        self._enter()
        self.calls.append(len(texts))
        time.sleep(0.05)
        self.inside -= 1
        return np.array([[len(t), 1.0] for t in texts], np.float32)

    def embed_clips(self, clips, view, instruction=None):
        self._enter()
        time.sleep(0.05)
        self.inside -= 1
        return np.zeros((len(clips), 2), np.float32)

    def _enter(self):
        self.inside += 1
        self.overlapped |= self.inside > 1


def run_together(n, fn):
    results = [None] * n
    barrier = threading.Barrier(n)

    def work(i):
        barrier.wait()
        results[i] = fn(i)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    return results


def test_texts_arriving_together_are_embedded_in_one_batch():
    inner = SlowEmbedder()
    shared = SharedEmbedder(inner, max_wait_s=0.05)
    texts = ["a" * (i + 1) for i in range(16)]
    rows = run_together(16, lambda i: shared.embed_texts([texts[i]]))
    assert [float(r[0][0]) for r in rows] == [len(t) for t in texts]  # each caller got its own vector
    assert sum(inner.calls) == 16 and len(inner.calls) < 16 and max(inner.calls) > 1
    assert shared.batches == inner.calls


def test_one_caller_at_a_time_in_the_model():
    inner = SlowEmbedder()
    shared = SharedEmbedder(inner, max_wait_s=0.0)
    run_together(6, lambda i: shared.embed_clips([object()], "av") if i % 2 else shared.embed_texts(["x"]))
    assert not inner.overlapped
    assert shared.model_id == "fake" and shared.dim == 2  # the contract's facts pass through


def test_an_embedding_error_reaches_every_waiting_caller_and_the_batcher_lives_on():
    inner = SlowEmbedder()
    shared = SharedEmbedder(inner, max_wait_s=0.01)
    inner.embed_texts = lambda texts: (_ for _ in ()).throw(RuntimeError("out of memory"))
    with pytest.raises(RuntimeError, match="out of memory"):
        shared.embed_texts(["x"])
    inner.embed_texts = lambda texts: np.ones((len(texts), 2), np.float32)
    assert shared.embed_texts(["x", "y"]).shape == (2, 2)


class BlockingIndex:
    def __init__(self):
        self.release = threading.Event()

    def add(self, paths, progress=None, **options):  # options: what the service passes on (confine_to)
        self.release.wait(10)

        class Report:
            def to_dict(self):
                return {"indexed": 0}

        return Report()


def test_one_indexing_job_at_a_time(tmp_path):
    index = BlockingIndex()
    runner = JobRunner(index)
    job = runner.start(tmp_path)
    with pytest.raises(JobBusyError, match="wait for it to finish"):
        runner.start(tmp_path)
    index.release.set()
    for _ in range(200):
        if job.state != "running":
            break
        time.sleep(0.01)
    assert job.state == "done"
    index.release.clear()
    assert runner.start(tmp_path).state == "running"  # the next one may start once it is done
    index.release.set()


def test_service_file_is_private_and_removed_only_by_its_owner(tmp_path):
    mine = ServiceInfo("http://127.0.0.1:1", "t1", 1)
    path = write_service_file(tmp_path, mine)
    assert path.stat().st_mode & 0o777 == 0o600 and read_service_file(tmp_path) == mine
    newer = ServiceInfo("http://127.0.0.1:2", "t2", 2)
    write_service_file(tmp_path, newer)
    remove_service_file(tmp_path, mine)  # an older service stopping leaves the newer one's file
    assert read_service_file(tmp_path) == newer
    remove_service_file(tmp_path, newer)
    assert read_service_file(tmp_path) is None
    (tmp_path / "serve.json").write_text("{broken")
    assert read_service_file(tmp_path) is None


@pytest.mark.parametrize("host, status", [
    ("127.0.0.1:8765", 200), ("localhost:8765", 200), ("[::1]:8765", 200),
    ("evil.example:8765", 421), ("127.0.0.1.evil.example", 421), ("", 421),
])
def test_without_a_token_only_loopback_names_are_answered(host, status):
    import asyncio

    from avsearch.server.guards import LoopbackHostGuard

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    sent = []

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "headers": [(b"host", host.encode())]}
    asyncio.run(LoopbackHostGuard(app)(scope, None, send))
    assert sent[0]["status"] == status
