"""One odd file never stops a run (issue 17): whatever reading or preparing it raises, it is
recorded as failed with its reason, and the run goes on; a query file gets a QueryError."""

from __future__ import annotations

from pathlib import Path

import pytest

from avsearch import Index
from avsearch.errors import QueryError
from avsearch.media.synth import write_audio

from fuzz_corpus import write_extensible_wav


@pytest.fixture
def odd_library(tmp_path) -> Path:
    lib = tmp_path / "lib"
    lib.mkdir()
    write_audio(lib / "good.wav", duration_s=2.0, seed=1)
    for bits in (36, 45, 53):
        write_extensible_wav(lib / f"pcm{bits}.wav", bits=bits, seed=bits)
    return lib


def test_wav_at_odd_bit_depths_fails_alone_and_is_not_retried(tmp_path, odd_library):
    index = Index.open(tmp_path / "idx", model="tiny", create=True)
    report = index.add([odd_library])
    assert [Path(p).name for p in report.indexed] == ["good.wav"]
    failed = {Path(p).name: reason for p, reason in report.failed}
    assert set(failed) == {"pcm36.wav", "pcm45.wav", "pcm53.wav"}
    assert all("no decoder" in r and "convert the file" in r for r in failed.values()), failed
    assert {Path(r["path"]).name for r in index.failures()} == set(failed)
    # Recorded: the next run does not stumble on them again, and the dry run agrees.
    assert index.plan([odd_library]).counts()["new"] == 0
    assert index.add([odd_library]).failed == []


def test_any_exception_preparing_one_file_fails_that_file_only(tmp_path, odd_library, monkeypatch):
    from avsearch.indexer import run as run_mod

    real = run_mod.make_job

    def flaky(media, *args, **kwargs):
        if media.path.endswith("good.wav"):
            raise ZeroDivisionError("a bug in preparing this file")
        return real(media, *args, **kwargs)

    monkeypatch.setattr(run_mod, "make_job", flaky)
    write_audio(odd_library / "other.wav", duration_s=1.0, seed=2)
    report = Index.open(tmp_path / "idx", model="tiny", create=True).add([odd_library])
    assert [Path(p).name for p in report.indexed] == ["other.wav"]
    failed = dict((Path(p).name, r) for p, r in report.failed)
    assert failed["good.wav"] == "ZeroDivisionError: a bug in preparing this file"


def test_ctrl_c_while_preparing_still_stops_the_run_and_frees_the_index(tmp_path, odd_library, monkeypatch,
                                                                        tiny_embedder):
    from avsearch.indexer import run as run_mod
    from avsearch.store import IndexMeta, Store

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(run_mod, "make_job", interrupted)
    with pytest.raises(KeyboardInterrupt):  # a new index is prepared before it is made: nothing is left
        Index.open(tmp_path / "idx", model="tiny", create=True).add([odd_library])
    assert not (tmp_path / "idx").exists()
    Store.create(tmp_path / "idx", IndexMeta(tiny_embedder.model_id, "tiny", tiny_embedder.dim))
    with pytest.raises(KeyboardInterrupt):  # an existing one is prepared under its write lock
        Index.open(tmp_path / "idx").add([odd_library])
    monkeypatch.undo()
    assert [Path(p).name for p in Index.open(tmp_path / "idx").add([odd_library]).indexed] == ["good.wav"]


def test_query_media_that_breaks_the_reader_is_a_query_error(indexed, tmp_path, monkeypatch):
    index, _, _ = indexed
    odd = write_extensible_wav(tmp_path / "pcm36.wav", bits=36)
    with pytest.raises(QueryError, match="no decoder"):
        index.search(odd, k=1)

    from avsearch.retriever import encode as encode_mod

    def broken(*args, **kwargs):
        raise IndexError("list index out of range")

    monkeypatch.setattr(encode_mod, "read_clip", broken)
    good = write_audio(tmp_path / "fine.wav", duration_s=1.0)
    with pytest.raises(QueryError, match="cannot decode the query file: .*IndexError: list index out of range"):
        index.search(good, k=1)
