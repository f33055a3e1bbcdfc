"""A new index scans and probes before the model loads (issue 18's "checks that need no model answer
before torch or the model load"): a wrong, empty or media-less folder answers without the model,
and a normal run's progress shows scanning before loading the model."""

from __future__ import annotations

import pytest

from avsearch import Index
from avsearch.errors import PathNotFoundError
from avsearch.media.synth import write_audio


@pytest.fixture
def loads(monkeypatch, tiny_embedder):
    """The model loader, spied on: `loads` lists the progress events seen before each load (the
    loader hands out the session's tiny model; `loads.refuse = True` makes it fail the test)."""
    import avsearch.models as models

    class Loads(list):
        refuse = False  # True: loading fails the test

    calls = Loads()
    calls.events = []  # the phase of every progress event, in order

    def load_embedder(spec=None, *, device=None):
        if calls.refuse:
            pytest.fail("the model was loaded for a run that has nothing to embed or record")
        calls.append(list(calls.events))
        return tiny_embedder

    monkeypatch.setattr(models, "load_embedder", load_embedder)  # Index.embedder imports it from here
    return calls


def add_new(tmp_path, folder, loads):
    index = Index.open(tmp_path / "index", model="tiny", create=True)
    return index, index.add([folder], progress=lambda p: loads.events.append(p.phase))


def test_a_missing_folder_is_refused_before_the_model_or_the_index_directory(tmp_path, loads):
    loads.refuse = True
    with pytest.raises(PathNotFoundError, match="does not exist; check the path"):
        add_new(tmp_path, tmp_path / "no-such-folder", loads)
    assert not (tmp_path / "index").exists()


def test_a_folder_with_no_media_loads_no_model_and_makes_no_index(tmp_path, loads):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("no media here")
    loads.refuse = True
    index, report = add_new(tmp_path, tmp_path / "notes", loads)
    assert (report.indexed, report.failed, report.duplicates, report.clips_added) == ([], [], [], 0)
    assert set(report.plan_counts.values()) == {0}
    assert "scanning" in loads.events and "loading model" not in loads.events
    # No index directory without a model recorded in it: the next run starts as new.
    assert not (tmp_path / "index").exists() and not index.exists


def test_a_folder_whose_only_file_is_corrupt_records_the_failure_and_loads_the_model_after_probing(tmp_path, loads):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "broken.wav").write_bytes(b"not audio" * 50)
    index, report = add_new(tmp_path, tmp_path / "lib", loads)
    assert [p for p, _ in report.failed] == [str(tmp_path / "lib" / "broken.wav")] and not report.indexed
    # The failure is recorded in a new index (its model recorded), as it was when the model loaded first.
    assert [f["path"] for f in index.failures()] == [str(tmp_path / "lib" / "broken.wav")]
    assert Index.open(tmp_path / "index").store.meta.model_source == "tiny"
    # Loaded once, only to create the index, after the probe that found the failure.
    assert len(loads) == 1 and {"scanning", "probing"} <= set(loads[0]) and "embedding" not in loads.events


def test_a_new_index_reports_scanning_before_loading_the_model(tmp_path, loads):
    write_audio(tmp_path / "lib" / "a.wav", duration_s=2.0, seed=3)
    _, report = add_new(tmp_path, tmp_path / "lib", loads)
    assert len(report.indexed) == 1 and len(loads) == 1
    seen = [p for i, p in enumerate(loads.events) if p not in loads.events[:i]]
    assert seen == ["scanning", "fingerprinting", "probing", "loading model", "embedding", "committing",
                    "building ANN index"]
    assert set(loads[0]) == {"scanning", "fingerprinting", "probing", "loading model"}


@pytest.mark.parametrize("other_clip_s", [10.0, 1.0], ids=["same-settings", "other-settings"])
def test_an_index_another_run_made_meanwhile_is_planned_again_with_its_settings(tmp_path, loads, monkeypatch,
                                                                               other_clip_s):
    """Between this run's scan and its model load another run created the index (with its own
    settings) and indexed a.wav: this run plans again against it, embeds only b.wav, cut its way."""
    from avsearch.store import IndexSettings

    write_audio(tmp_path / "lib" / "a.wav", duration_s=3.0, seed=3)
    write_audio(tmp_path / "lib" / "b.wav", duration_s=3.0, seed=4)
    real_create = Index._create_store

    def another_run_first(self, *args):
        monkeypatch.setattr(Index, "_create_store", real_create)  # the other run creates it for real
        other = Index.open(self.path, model="tiny", create=True, settings=IndexSettings(clip_s=other_clip_s))
        other.add([tmp_path / "lib" / "a.wav"])
        return real_create(self, *args)

    monkeypatch.setattr(Index, "_create_store", another_run_first)
    index, report = add_new(tmp_path, tmp_path / "lib", loads)
    assert report.indexed == [str(tmp_path / "lib" / "b.wav")] and report.unchanged == 1
    assert index.settings.clip_s == other_clip_s
    starts = sorted({s for p, s, *_ in clip_set(index) if p.endswith("b.wav")})
    assert starts == ([0.0] if other_clip_s == 10.0 else [0.0, 1.0, 2.0])  # 3 s cut in 10 s or 1 s clips


def clip_set(index: Index) -> list[tuple]:
    t = index.store.tables.clip_meta(columns=["path", "start_s"])
    return list(zip(t.column("path").to_pylist(), t.column("start_s").to_pylist()))


def test_the_cli_says_no_media_was_found_and_no_index_made(tmp_path, loads, cli_in_process):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("no media here")
    loads.refuse = True
    out = cli_in_process("index", tmp_path / "notes", "--index", tmp_path / "index", "--model", "tiny")
    # not a table headed "Indexed into ..." for an index that does not exist
    assert "No media found in" in out and "no index was made" in out and ".mp4" in out
    assert "Indexed into" not in out and not (tmp_path / "index").exists()


def test_an_unknown_uri_scheme_is_refused_with_the_fix_and_no_local_folder(tmp_path, monkeypatch, loads):
    from avsearch.errors import UsageError
    from avsearch.locations import IndexURI, resolve_index_path

    monkeypatch.chdir(tmp_path)
    loads.refuse = True
    for uri in ("ftp://host/idx", "http:/host/idx"):  # the second as a Path-typed CLI option folds it
        with pytest.raises(UsageError, match="not an index location .* s3://BUCKET/PREFIX"):
            Index.open(uri, model="tiny", create=True)
    assert not any(tmp_path.iterdir())  # no "ftp:" folder made here
    # An object store is an index location (tests/test_object_store_index.py), folded or not.
    assert resolve_index_path("gs:/bucket/idx/") == IndexURI("gs://bucket/idx")
    assert Index.open(tmp_path / "C:" / "idx", model="tiny", create=True).path.name == "idx"  # a plain folder name
