"""Issue 19 follow-up: a search checks that its ANN index is current by listing the tables'
_versions folders (no table is reopened until something was committed, by any process), and
reads hits' metadata from a copy kept per clips table version (no LanceDB read per search)."""

from __future__ import annotations

import numpy as np

from avsearch.store import FileCommit, IndexMeta, Store
from avsearch.store.tables import Tables, _clips_table

DIM = 8


def _unit(x):
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def _rows(f, vectors):
    path = f"/media/f{f}.mp4"
    ids = [f * 1000 + i + 1 for i in range(len(vectors))]
    return path, [{"clip_id": f"c{rid}", "row_id": rid, "fingerprint": "fp", "path": path, "start_s": float(i),
                   "end_s": float(i + 1), "view": "av", "file_duration_s": 9.0, "indexed_at": 0.0, "model_id": "m"}
                  for i, rid in enumerate(ids)]


def _commit(store, f, vectors):
    path, rows = _rows(f, vectors)
    row = {"path": path, "fingerprint": "fp", "size": 1, "mtime": 0.0, "status": "ok", "n_clips": len(rows)}
    store.commit([FileCommit(row, rows, vectors)])
    return [r["row_id"] for r in rows]


def _fail(*args, **kwargs):
    raise AssertionError("LanceDB read on the search path of an unchanged table version")


def test_searches_reopen_nothing_until_another_process_commits_and_then_serve_only_vouched_clips(tmp_path,
                                                                                                 monkeypatch):
    rng = np.random.default_rng(0)
    writer = Store.create(tmp_path / "s", IndexMeta("m", "m", DIM))
    for f in range(3):
        _commit(writer, f, _unit(rng.standard_normal((6, DIM))))
    writer.finish_writes()
    reader = Store.open(tmp_path / "s")  # a long-lived reader, e.g. `avsearch serve`
    q = _unit(rng.standard_normal((1, DIM)))

    def top(k=3):
        _, ids = reader.search(q, k)
        return [int(i) for i in ids[0]], reader.clip_meta_by_row_ids(ids[0])

    top()  # the first search reads the versions and the metadata copy
    reopened = []
    with monkeypatch.context() as m:
        m.setattr(Tables, "refresh", lambda self: reopened.append(1))
        m.setattr(Tables, "_scan", _fail)  # the metadata copy is not read again
        m.setattr(reader.tables.clips, "take_row_ids", _fail)  # nor rows taken from LanceDB
        for _ in range(5):
            ids, meta = top()
            assert {meta[i]["clip_id"] for i in ids} == {f"c{i}" for i in ids}
            assert meta[ids[0]]["path"].startswith("/media/f") and meta[ids[0]]["view"] == "av"
    assert reopened == []

    # Another process commits a file holding the query itself: the reader's next search sees it.
    other = Store.open(tmp_path / "s")
    (new,) = _commit(other, 7, q)
    ids, meta = top()
    assert ids[0] == new and meta[new]["path"] == "/media/f7.mp4" and meta[new]["clip_id"] == f"c{new}"

    # Clips appended without their files row (a commit cut short) are never served, though the
    # version changed; the reader must have looked (its ANN index covers the new version).
    _, rows = _rows(9, q)
    other.tables.clips.add(_clips_table(rows, q, DIM))
    ids, _ = top()
    assert ids[0] == new and rows[0]["row_id"] not in ids
    assert reader._ann_version == (other.tables.clips_version(), other.tables.files_version())

    # A removal by the other process: the clip goes from the hits and from the metadata copy.
    other.remove_paths(["/media/f7.mp4"])
    ids, _ = top()
    assert new not in ids
    assert reader.clip_meta_by_row_ids([new]) == {}


def test_the_retriever_over_fetches_only_when_merging_or_capping_per_file(indexed, monkeypatch):
    index, _, _ = indexed
    asked = []
    search = Store.search

    def spy(self, queries, k, **kwargs):
        asked.append(k)
        return search(self, queries, k, **kwargs)

    monkeypatch.setattr(Store, "search", spy)
    v = index.embed_text("x")
    plain = index.search(v, k=3, merge_adjacent=False)
    assert asked == [3]  # nothing after the ANN search drops hits: k candidates are enough
    for options in ({"merge_adjacent": True}, {"merge_adjacent": False, "per_file": 1}):
        asked.clear()
        hits = index.search(v, k=3, **options)
        # merging and per-file caps start from a 2 x k pool, and ask for more only while fewer
        # than k hits are left (tests/test_merge.py has a case that needs more)
        assert asked[0] == 6 and asked == sorted(set(asked))
        assert len(hits) == 3 or asked[-1] > 6
    # the same top hits as a 4x k pool gives
    monkeypatch.setattr(Store, "search", lambda self, q, k, **kw: search(self, q, 4 * k, **kw))
    assert [h.clip_id for h in index.search(v, k=3, merge_adjacent=False)] == [h.clip_id for h in plain]
