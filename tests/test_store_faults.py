"""Store faults: commits cut short never show, and every fault ends in an error that names the fix.

Most tests work on a store of synthetic vectors (no model, no media): a commit cut short is a
monkeypatched step of Tables.commit raising, or a real SIGKILL of a child process between steps.
"""

from __future__ import annotations

import errno
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from avsearch.errors import DiskFullError, IndexLockedError, IndexNotFoundError, IndexReadOnlyError
from avsearch.store import FileCommit, IndexMeta, Store
from avsearch.store.tables import Tables

DIM = 8
RUST_PATH = ".rs:"  # lance's errors carry the Rust source location; ours never do


def file_commit(path: str, fp: str, n: int, seed: int, status: str = "ok", first_row_id: int = 0) -> FileCommit:
    rng = np.random.default_rng(seed)
    vecs = rng.standard_normal((n, DIM)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    base = first_row_id or seed * 1000
    clips = [{"clip_id": f"{fp}-{i}", "row_id": base + i, "fingerprint": fp, "path": path, "start_s": float(i),
              "end_s": float(i + 1), "view": "audio", "file_duration_s": float(n), "indexed_at": 0.0, "model_id": "m"}
             for i in range(n)]
    row = {"path": path, "fingerprint": fp, "size": n, "mtime": 0.0, "status": status, "n_clips": n}
    return FileCommit(row, clips, vecs)


def served(store: Store, queries: np.ndarray, **kw) -> set[int]:
    """Every row id a search for `queries` returns (k large enough for the whole store)."""
    _, ids = store.search(np.asarray(queries, np.float32), 100, **kw)
    return {int(i) for i in ids.ravel() if i >= 0}


@pytest.fixture
def store(tmp_path) -> Store:
    s = Store.create(tmp_path / "idx", IndexMeta("m", "m", DIM))
    s.commit([file_commit("/a.wav", "a1", 5, seed=1)])
    s.finish_writes()
    return s


def ids_of(c: FileCommit) -> set[int]:
    return {r["row_id"] for r in c.clip_rows}


# -- atomic visibility ----------------------------------------------------------------------------


class Cut(Exception):
    pass


def cut_after(monkeypatch, step: str) -> None:
    """Make Tables.commit stop right after `step`, as a kill there would."""
    if step == "nothing":
        monkeypatch.setattr(Tables, "commit", lambda self, commits: (_ for _ in ()).throw(Cut()))
    elif step == "clips appended":
        monkeypatch.setattr(Tables, "_upsert_files", lambda self, rows: (_ for _ in ()).throw(Cut()))
    elif step == "files row written":
        real = Tables._upsert_files

        def then_cut(self, rows):
            real(self, rows)
            raise Cut()

        monkeypatch.setattr(Tables, "_upsert_files", then_cut)


@pytest.mark.parametrize("step", ["nothing", "clips appended", "files row written"])
def test_a_commit_cut_short_serves_only_committed_clips(store, monkeypatch, step):
    a_old = ids_of(file_commit("/a.wav", "a1", 5, seed=1))
    new_b = file_commit("/b.wav", "b1", 4, seed=2)
    changed_a = file_commit("/a.wav", "a2", 3, seed=3)  # /a.wav's content changed: a1's clips are superseded
    queries = np.concatenate([new_b.vectors, changed_a.vectors, file_commit("/a.wav", "a1", 5, seed=1).vectors])
    store.search(queries, 1)  # a reader with the old ANN index in memory
    cut_after(monkeypatch, step)
    with pytest.raises(Cut):
        store.commit([new_b, changed_a])
    monkeypatch.undo()

    committed = step == "files row written"
    expected = (ids_of(new_b) | ids_of(changed_a)) if committed else a_old
    for reader in (store, Store.open(store.directory)):  # the same process, and a fresh one
        assert served(reader, queries) == expected
        # a filter lists clips straight from the table: uncommitted ones must still not pass
        allowed = np.array(sorted(a_old | ids_of(new_b) | ids_of(changed_a)))
        assert served(reader, queries, allowed_ids=allowed) == expected
    if committed:  # stale a1 clips are still in the table (the delete step never ran), unserved
        assert store.tables.count_clips("fingerprint = 'a1'") == 5


def test_a_partial_row_vouches_for_its_clips(store):
    part = file_commit("/long.wav", "L", 6, seed=4, status="partial")
    store.commit([part])
    for reader in (store, Store.open(store.directory)):  # a long file stays searchable while in parts
        assert ids_of(part) <= served(reader, part.vectors)


KILL_BETWEEN_STEPS = textwrap.dedent("""
    import sys, time
    import numpy as np
    sys.path.insert(0, sys.argv[3])
    from test_store_faults import file_commit
    from avsearch.store import Store
    from avsearch.store.tables import Tables

    step = sys.argv[2]
    real = Tables._upsert_files

    def stall(self, rows):
        if step == "files row written":
            real(self, rows)
        print("stalled", flush=True)
        time.sleep(120)

    Tables._upsert_files = stall
    Store.open(sys.argv[1]).commit([file_commit("/b.wav", "b1", 4, seed=2), file_commit("/a.wav", "a2", 3, seed=3)])
""")


@pytest.mark.parametrize("step", ["clips appended", "files row written"])
def test_sigkill_between_commit_steps_serves_only_committed_clips(store, step):
    proc = subprocess.Popen([sys.executable, "-c", KILL_BETWEEN_STEPS, str(store.directory), step,
                             str(Path(__file__).parent)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "stalled"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    new_b, changed_a = file_commit("/b.wav", "b1", 4, seed=2), file_commit("/a.wav", "a2", 3, seed=3)
    a_old = ids_of(file_commit("/a.wav", "a1", 5, seed=1))
    queries = np.concatenate([new_b.vectors, changed_a.vectors])
    reader = Store.open(store.directory)
    assert reader.tables.count_clips() == 5 + 7  # the killed commit's clips are in the table...
    expected = ids_of(new_b) | ids_of(changed_a) if step == "files row written" else a_old
    assert served(reader, queries) == expected  # ...and only the committed ones are served


# -- disk full ------------------------------------------------------------------------------------

LANCE_ENOSPC = ("lance error: LanceError(IO): No space left on device (os error 28), /root/.cargo/registry/src/"
                "index.crates.io-1949cf8c6b5b557f/lance-file-13.0.0/src/writer/structural.rs:258:9")


def enospc_as_lance_says_it(*a, **kw):
    raise RuntimeError(LANCE_ENOSPC)


def enospc_as_the_os_says_it(*a, **kw):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("where,fault", [
    ("clips append", enospc_as_lance_says_it),  # lance's RuntimeError with a Rust path
    ("files row", enospc_as_the_os_says_it),  # a bare OSError, after the clips went in
])
def test_disk_full_names_the_device_and_the_last_committed_file_and_keeps_the_index(store, monkeypatch, where,
                                                                                   fault):
    import lancedb.table

    b = file_commit("/b.wav", "b1", 4, seed=2)
    store.commit([b])
    c = file_commit("/c.wav", "c1", 3, seed=5)
    before = served(store, np.concatenate([b.vectors, c.vectors]))
    if where == "clips append":
        monkeypatch.setattr(lancedb.table.LanceTable, "add", fault)
    else:
        monkeypatch.setattr(Tables, "_upsert_files", fault)
    with pytest.raises(DiskFullError) as err:
        store.commit([c])
    message = str(err.value)
    assert "no space left on /" in message and "nothing committed since /b.wav" in message
    assert RUST_PATH not in message
    monkeypatch.undo()
    for reader in (store, Store.open(store.directory)):
        assert served(reader, np.concatenate([b.vectors, c.vectors])) == before


def test_a_full_disk_while_saving_the_ann_index_keeps_the_saved_one(store, monkeypatch):
    import faiss

    store.commit([file_commit("/b.wav", "b1", 4, seed=2)])
    monkeypatch.setattr(faiss, "write_index", lambda *a: (_ for _ in ()).throw(
        RuntimeError("Error in faiss::FileIOWriter: write error: No space left on device")))
    with pytest.raises(DiskFullError, match="no space left on"):
        store.finish_writes()
    monkeypatch.undo()
    reader = Store.open(store.directory)
    assert reader.ann_state()["kind"] == "flat"  # the index saved before is still there, whole
    assert served(reader, file_commit("/b.wav", "b1", 4, seed=2).vectors) >= ids_of(file_commit("/b.wav", "b1", 4, seed=2))


@pytest.fixture
def small_tmpfs(tmp_path):
    """A real 3 MB filesystem (needs mount rights: root in a container that allows it)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (not root, or the container forbids it); "
                    "the injected-ENOSPC test covers the message")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_really_full_disk_keeps_every_committed_file_searchable(small_tmpfs):
    store = Store.create(small_tmpfs / "idx", IndexMeta("m", "m", 256))
    committed: list[FileCommit] = []
    with pytest.raises(DiskFullError) as err:
        for i in range(100):  # ~0.5 MB of vectors per file: the disk fills within a few files
            rng = np.random.default_rng(i)
            vecs = rng.standard_normal((500, 256)).astype(np.float32)
            vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
            c = FileCommit({"path": f"/f{i}.wav", "fingerprint": f"f{i}", "size": 1, "mtime": 0.0, "status": "ok",
                            "n_clips": 500},
                           [{"clip_id": f"f{i}-{j}", "row_id": i * 1000 + j, "fingerprint": f"f{i}",
                             "path": f"/f{i}.wav", "start_s": float(j), "end_s": j + 1.0, "view": "audio",
                             "file_duration_s": 500.0, "indexed_at": 0.0, "model_id": "m"} for j in range(500)], vecs)
            store.commit([c])
            committed.append(c)
    assert committed, "the disk filled before the first file"
    assert f"nothing committed since {committed[-1].file_row['path']}" in str(err.value)
    assert str(small_tmpfs) in str(err.value) and RUST_PATH not in str(err.value)
    reader = Store.open(small_tmpfs / "idx")
    rows = {r["path"] for r in reader.file_rows()}
    assert {c.file_row["path"] for c in committed} <= rows
    probe = np.concatenate([c.vectors[:3] for c in committed])
    got = served(reader, probe)
    assert {f"/f{r // 1000}.wav" for r in got} <= rows  # nothing of the file the disk cut short
    assert {c.clip_rows[0]["row_id"] for c in committed} <= got  # every committed file answers


# -- read-only, lock on a new index, a file as --index --------------------------------------------


def test_a_read_only_index_refuses_writes_by_name_and_still_answers(store, monkeypatch):
    import avsearch.store.lock as lock

    def read_only(path, *a, **kw):
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(lock.os, "open", read_only)
    with pytest.raises(IndexReadOnlyError, match="read-only.*queries work"):
        store.write_lock().acquire()
    assert served(store, file_commit("/a.wav", "a1", 5, seed=1).vectors)


def test_a_file_given_as_index_is_refused_before_any_work(tmp_path):
    from avsearch import Index

    not_a_dir = tmp_path / "notes.txt"
    not_a_dir.write_text("x")
    with pytest.raises(IndexNotFoundError, match="is a file, not an avsearch index directory"):
        Index.open(not_a_dir, model="tiny", create=True)


def test_an_index_created_meanwhile_by_a_run_that_holds_the_lock_gives_the_lock_message(tmp_path, monkeypatch):
    from avsearch import Index

    path = tmp_path / "new"
    mine = Index.open(path, model="tiny", create=True)  # nothing there yet
    other = Store.create(path, IndexMeta("m", "m", DIM))  # another run got there first...
    lib = tmp_path / "lib"  # a file to record (an empty folder ends before the index is touched)
    lib.mkdir()
    (lib / "broken.wav").write_bytes(b"not audio" * 50)
    with other.write_lock():  # ...and is indexing
        with pytest.raises(IndexLockedError, match="being written by"):
            mine.add([lib])


def test_an_index_created_meanwhile_is_used_when_its_run_is_done(tmp_path, tiny_embedder):
    from avsearch import Index

    path = tmp_path / "new"
    mine = Index.open(path, model="tiny", create=True)
    Store.create(path, IndexMeta(tiny_embedder.model_id, "tiny", tiny_embedder.dim))
    lib = tmp_path / "lib"  # a file to record (an empty folder ends before the index is touched)
    lib.mkdir()
    (lib / "broken.wav").write_bytes(b"not audio" * 50)
    mine.add([lib])  # no FileExistsError: the finished run's index is opened
    assert (mine.stats()["files_ok"], mine.stats()["files_failed"]) == (0, 1)


@pytest.fixture
def read_only_index(indexed, tmp_path):
    """The indexed library seen through a read-only bind mount (needs mount rights; as root,
    permission bits would not stop a write, so chmod cannot make this test)."""
    index, lib, _ = indexed
    ro = tmp_path / "ro"
    ro.mkdir()
    if subprocess.run(["mount", "--bind", "-o", "ro", str(index.path), str(ro)], capture_output=True).returncode:
        pytest.skip("cannot bind-mount read-only here; the injected-EROFS test covers the message")
    yield ro, lib
    subprocess.run(["umount", "-l", str(ro)], check=False)


def test_a_really_read_only_index_answers_queries_and_refuses_indexing(read_only_index):
    from avsearch import Index

    ro, lib = read_only_index
    assert Index.open(ro).search("x", k=3)
    # an instruction query re-embeds candidates and would cache them: on a read-only index it
    # answers without the cache
    assert Index.open(ro).search("x", k=2, instruction="the loud one", rerank_top=2)
    assert Index.open(ro).stats()["files_ok"] > 0
    with pytest.raises(IndexReadOnlyError, match="is read-only.*queries work"):
        Index.open(ro).add([lib])
    out = subprocess.run([sys.executable, "-m", "avsearch.cli.app", "index", str(lib), "--index", str(ro)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == IndexReadOnlyError.exit_code, out.stderr
    assert "read-only" in out.stderr and "unexpected" not in out.stderr
