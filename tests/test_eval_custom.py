"""`avsearch eval custom`: a user's judgements against an index (the tiny model's index of the
generated library), the IVF-PQ leg on a store of random vectors, and the CLI's JSON."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from avsearch.evaluation.custom import evaluate_custom
from avsearch.evaluation.judgements import EvalQuery, Target, read_judgements
from avsearch.evaluation.runner import Direction, evaluate
from avsearch.store import AnnConfig, FileCommit, IndexMeta, Store

HEADER = "query,query_file,query_start,query_end,query_view,file,start,end,grade\n"


def _write(path: Path, rows: list[str]) -> Path:
    path.write_text(HEADER + "".join(r + "\n" for r in rows))
    return path


def test_each_media_file_finds_itself_first(indexed, tmp_path):
    index, lib, _ = indexed
    judgements = _write(tmp_path / "same.csv", [
        f",{lib}/speech.wav,,,audio,{lib}/speech.wav,,,",
        f",{lib}/birds.flac,,,audio,{lib}/birds.flac,,,",
        f",{lib}/garden.mp4,,,audio,{lib}/garden.mp4,,,",
        f",{lib}/street.mp4,0,10,av,{lib}/street.mp4,0,10,",
        f",{lib}/garden.mp4,,,av,{lib}/garden.mp4,,,",
        f",{lib}/silent.mp4,,,video,{lib}/silent.mp4,,,",
        f",{lib}/street.mp4,0,10,video,{lib}/street.mp4,0,10,",
    ])
    result = evaluate_custom(index, judgements)
    same = {d.name: d for d in result["directions"] if d.query_view == d.target_view}
    assert set(same) == {"audio→audio", "av→av", "video→video"}
    assert [same[n].queries for n in ("audio→audio", "av→av", "video→video")] == [3, 2, 2]
    for d in same.values():
        assert d.exact["R@1"]["mean"] == 1.0 and d.exact["MRR"]["mean"] == 1.0, d.name
    assert result["problems"] == []


def test_bad_rows_get_one_clear_error_each_and_the_rest_is_evaluated(indexed, tmp_path):
    index, lib, _ = indexed
    (tmp_path / "clips").mkdir()
    judgements = _write(tmp_path / "j.csv", [
        f"a street at night,,,,,{lib}/street.mp4,0,10,2",           # row 2: fine
        f"a street at night,,,,,{lib}/garden.mp4,,,1",              # row 3: fine, same query
        ",clips/missing.wav,,,,speech.wav,,,",                      # row 4: no such query file
        f",{lib}/corrupt.mp4,,,,{lib}/birds.flac,,,",               # row 5: unreadable query media
        f"birds,,,,,{lib}/birds.flac,30,40,",                       # row 6: range past the end (3 s file)
        f"birds,,,,,{tmp_path}/never-indexed.wav,,,",               # row 7: not in the index
        f"birds,,,,,{lib}/birds.flac,abc,,",                        # row 8: not a number
        f"birds,{lib}/birds.flac,,,,{lib}/birds.flac,,,",           # row 9: both query kinds
        f"birds,,,,,{lib}/birds.flac,,,",                           # row 10: fine
    ])
    result = evaluate_custom(index, judgements, target_views=["audio"])
    errors = {p.where: p.error for p in result["problems"]}
    assert set(errors) == {"row 4", "row 5", "row 6", "row 7", "row 8", "row 9"}
    assert "does not exist" in errors["row 4"] and "query_file" in errors["row 4"]
    assert "cannot be read" in errors["row 5"]
    assert "past the end" in errors["row 6"] and "3.0 s" in errors["row 6"]
    assert "not in the index" in errors["row 7"] and "avsearch index" in errors["row 7"]
    assert "not a number" in errors["row 8"]
    assert "exactly one of" in errors["row 9"]
    (text,) = result["directions"]
    assert text.name == "text→audio" and text.queries == 2  # "a street at night" and "birds"


def test_judgements_group_rows_of_one_query_and_read_relative_paths(tmp_path):
    path = _write(tmp_path / "j.csv", ["dogs,,,,,a.mp4,1,2,3", "dogs,,,,,b.mp4,,,", ",q.wav,0,1,audio,a.mp4,,,"])
    queries, problems = read_judgements(path)
    assert problems == []
    dogs, media = queries
    assert dogs.targets == [Target(str(tmp_path / "a.mp4"), 1.0, 2.0, 3.0), Target(str(tmp_path / "b.mp4"))]
    assert dogs.rows == [2, 3]
    assert media.media == str(tmp_path / "q.wav") and media.view.value == "audio" and media.end_s == 1.0


def _random_store(path: Path, n: int, dim: int = 32) -> tuple[Store, np.ndarray]:
    rng = np.random.default_rng(0)
    vecs = rng.standard_normal((n, dim)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    store = Store.create(path, IndexMeta("m", "m", dim), ann_config=AnnConfig(opq_dim=16, pq_m=4))
    rows = [{"clip_id": f"c{i}", "row_id": i + 1, "fingerprint": "f", "path": "/x.wav", "start_s": float(i),
             "end_s": float(i + 1), "view": "audio", "file_duration_s": float(n), "indexed_at": 0.0, "model_id": "m"}
            for i in range(n)]
    store.commit([FileCommit({"path": "/x.wav", "fingerprint": "f", "size": 1, "mtime": 0.0, "status": "ok",
                              "n_clips": n}, rows, vecs)])
    return store, vecs


def test_ivf_leg_scores_the_same_judgements_as_exact_search(tmp_path, one_faiss_thread):
    store, vecs = _random_store(tmp_path / "s", 300)
    # Each query is a clip's own vector, judged relevant: its range [i, i+1) of /x.wav.
    picks = [0, 17, 99, 150, 299]
    queries = [EvalQuery(media=f"q{i}", targets=[Target("/x.wav", float(i), float(i + 1))]) for i in picks]
    fake_index = SimpleNamespace(store=store, embed_media_queries=lambda qs: [vecs[int(str(q.media)[1:])] for q in qs])
    (result,), problems = evaluate(fake_index, [Direction("audio", "audio", queries)])
    assert problems == [] and result.gallery == 300 and result.queries == 5
    assert result.exact["R@1"]["mean"] == 1.0
    assert result.ann is not None and result.ann["R@1"]["mean"] == 1.0  # re-scored exactly: itself on top


def test_ivf_leg_is_built_streamed_never_reading_the_whole_gallery_at_once(tmp_path, one_faiss_thread):
    store, vecs = _random_store(tmp_path / "s", 300)
    read_at_once = []
    vectors = store.vectors
    store.vectors = lambda ids: read_at_once.append(len(ids)) or vectors(ids)
    scores, ids = store.search_ivf(vecs[[4, 200]], 5, store.gallery("audio"),
                                     AnnConfig(opq_dim=16, pq_m=4, train_size=280))
    assert read_at_once == [280]  # the training sample; the 300 are added block by block
    assert list(ids[:, 0]) == [5, 201]  # each vector finds itself (row ids start at 1)


def test_small_galleries_say_why_there_is_no_ivf_leg(tmp_path):
    store, vecs = _random_store(tmp_path / "s", 40)
    queries = [EvalQuery(media="q3", targets=[Target("/x.wav", 3.0, 4.0)])]
    fake_index = SimpleNamespace(store=store, embed_media_queries=lambda qs: [vecs[3] for _ in qs])
    (result,), _ = evaluate(fake_index, [Direction("audio", "audio", queries)])
    assert result.ann is None and "256" in result.ann_note and "40" in result.ann_note
    assert store.search_ivf(vecs[:1], 5, store.gallery("audio")) is None


def test_cli_json_records_model_settings_version_and_machine(indexed, tmp_path):
    index, lib, _ = indexed
    judgements = _write(tmp_path / "j.csv", [f",{lib}/speech.wav,,,audio,{lib}/speech.wav,,,",
                                             f",{tmp_path}/gone.wav,,,,{lib}/speech.wav,,,"])
    from typer.testing import CliRunner

    from avsearch.cli.app import app

    # In-process (a subprocess would spend most of its time importing torch again).
    out = CliRunner().invoke(app, ["eval", "custom", str(judgements), "--index", str(index.path), "--target-view",
                                   "audio", "--out", str(tmp_path / "res"), "--json"], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    report = json.loads(out.stdout)
    assert report["model_id"].startswith("wave:") and report["checkpoint_hash"] in report["model_id"]
    assert report["avsearch_version"] and report["machine"]["python"] and report["settings"]["depth"] == 100
    assert report["settings"]["index"]["clip_s"] == index.settings.clip_s
    (d,) = report["directions"]
    assert d["name"] == "audio→audio" and d["exact"]["R@1"]["mean"] == 1.0
    assert [p["where"] for p in report["problems"]] == ["row 3"]
    md = next((tmp_path / "res").glob("custom-*.md")).read_text()
    assert "| audio→audio | exact | 1 |" in md and "row 3" in md


def test_exact_search_in_chunks_equals_one_pass(tmp_path):
    store, vecs = _random_store(tmp_path / "s", 120)
    gallery = store.gallery("audio")
    queries = vecs[[5, 60, 119]]
    whole = store.search_exact(queries, 10, gallery)
    chunked = store.search_exact(queries, 10, gallery, chunk=7)
    assert np.array_equal(whole[1], chunked[1]) and np.allclose(whole[0], chunked[0])
    assert list(whole[1][:, 0]) == [6, 61, 120]  # row ids start at 1: each vector finds itself
    assert store.gallery_paths("audio") == {"/x.wav"} and store.gallery_paths("video") == set()


def test_a_judged_copy_of_indexed_content_is_scored_on_its_originals_clips(indexed, tmp_path):
    index, lib, _ = indexed
    copy = tmp_path / "copy-of-speech.wav"
    shutil.copy(lib / "speech.wav", copy)
    index.add([copy])  # same content: a "duplicate" row, no clips of its own
    assert {f["path"]: f["status"] for f in index.store.file_rows()}[str(copy)] == "duplicate"
    judgements = _write(tmp_path / "j.csv", [f",{lib}/speech.wav,,,audio,{copy},,,"])
    result = evaluate_custom(index, judgements, target_views=["audio"])
    (d,) = result["directions"]
    assert (d.name, d.queries, d.skipped) == ("audio→audio", 1, 0) and d.exact["R@1"]["mean"] == 1.0
    assert result["problems"] == []


def test_a_query_skipped_in_a_direction_is_a_problem_the_report_shows(indexed, tmp_path):
    index, lib, _ = indexed
    judgements = _write(tmp_path / "j.csv", [f"birds,,,,,{lib}/birds.flac,,,",  # audio only: nothing in video
                                             f"street,,,,,{lib}/street.mp4,,,"])
    result = evaluate_custom(index, judgements, target_views=["video"])
    (d,) = result["directions"]
    assert d.name == "text→video" and d.queries == 1 and d.skipped == 1
    (problem,) = result["problems"]
    assert problem.where == "row 2" and "not scored" in problem.error and "birds.flac" in problem.error


def test_a_query_file_that_crashes_the_decoder_is_one_rows_problem(indexed, tmp_path, monkeypatch):
    import avsearch.media
    from avsearch.media.sandbox import FAULT_ENV
    from avsearch.media.synth import write_audio

    index, lib, _ = indexed
    crashing = write_audio(tmp_path / "crashes-q.wav", duration_s=1.0, seed=9)
    # The sandbox child crashes on this file (its test hook); probing it in this process instead
    # would take the whole run down, which the in-process probe's replacement makes a failure.
    monkeypatch.setenv(FAULT_ENV, "crash:probe:crashes-q")
    monkeypatch.setattr(avsearch.media, "probe", lambda *a, **k: pytest.fail("query file probed in-process"))
    judgements = _write(tmp_path / "j.csv", [f",{crashing},,,audio,{lib}/speech.wav,,,",
                                             f",{lib}/speech.wav,,,audio,{lib}/speech.wav,,,"])
    result = evaluate_custom(index, judgements, target_views=["audio"])
    (problem,) = result["problems"]
    assert problem.where == "row 2" and "cannot be read" in problem.error and "crashed" in problem.error
    (d,) = result["directions"]
    assert d.queries == 1 and d.exact["R@1"]["mean"] == 1.0
