"""`avsearch eval BENCH` end to end on the tiny model: a few items of each benchmark written in
its exact published metadata format (tests/eval_fixtures.py), indexed and scored."""

from __future__ import annotations

import json

import pytest

from avsearch.errors import UsageError
from avsearch.evaluation.bench import Knobs, run_benchmark
from avsearch.evaluation.report import to_markdown

import eval_fixtures


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval-data")
    return {name: build(root / name) for name, build in eval_fixtures.BUILDERS.items()}


@pytest.fixture(scope="module")
def reports(data):
    return {name: run_benchmark(name, folder, model="tiny") for name, folder in data.items()}


def _directions(report):
    return {d["name"]: d for d in report["directions"]}


def _check_found_in_tiny_gallery(d):
    # The galleries here are tiny: a relevant item is always within reach, so a key mismatch
    # between queries and indexed paths (which would score 0) shows. 3 items: in the top 10;
    # 15 captions, 5 of them the query's own: the first of those at rank 11 at worst.
    if d["gallery"] <= 10:
        assert d["exact"]["R@10"]["mean"] == 1.0, d["name"]
    else:
        assert d["exact"]["MRR"]["mean"] >= 1 / 11, d["name"]
    assert 0.0 <= d["exact"]["R@1"]["mean"] <= d["exact"]["R@5"]["mean"] <= 1.0


def test_audiocaps_captions_each_query_and_missing_media_is_reported(reports):
    r = reports["audiocaps"]
    d = _directions(r)
    assert set(d) == {"text→audio", "audio→text"}
    assert d["text→audio"]["queries"] == 15 and d["text→audio"]["gallery"] == 3  # 3 clips found x 5 captions
    assert d["audio→text"]["queries"] == 3 and d["audio→text"]["gallery"] == 15
    assert d["text→audio"]["paper"]["value"] == 44.2 and "WAVE_SPEC.md §9" in d["text→audio"]["paper"]["source"]
    assert d["audio→text"]["paper"]["value"] is None
    assert r["settings"]["items_in_split"] == 4 and r["settings"]["items_found"] == 3
    (missing,) = r["problems"]
    assert missing["where"] == "item zzzzzzzzzzz@30" and "zzzzzzzzzzz_30" in missing["error"]
    for direction in d.values():
        _check_found_in_tiny_gallery(direction)
    assert "| text→audio | exact | 15 | 3 |" in to_markdown(r) and "R@1 44.2" in to_markdown(r)


def test_clotho_reads_the_evaluation_csv(reports):
    d = _directions(reports["clotho"])
    assert d["text→audio"]["queries"] == 15 and d["audio→text"]["gallery"] == 15
    assert d["text→audio"]["paper"]["value"] == 25.6
    assert reports["clotho"]["settings"]["index"]["clip_s"] == 30.0  # a whole recording is one clip
    for direction in d.values():
        _check_found_in_tiny_gallery(direction)


def test_msrvtt_text_to_video_has_no_paper_figure(reports):
    (d,) = reports["msrvtt"]["directions"]
    assert d["name"] == "text→video" and d["queries"] == 3 and d["gallery"] == 3
    assert d["paper"]["value"] is None and "not published in the WAVE paper's tables" in d["paper"]["source"]
    _check_found_in_tiny_gallery(d)


def test_vggsound_reads_only_the_test_split_video_to_audio(reports):
    r = reports["vggsound"]
    (d,) = r["directions"]
    assert d["name"] == "video→audio" and d["queries"] == 3 and d["paper"]["value"] == 25.0
    assert r["settings"]["items_in_split"] == 4  # the train row is not read; the missing test clip is
    assert [p["where"] for p in r["problems"]] == ["item missing____@0"]
    _check_found_in_tiny_gallery(d)


def test_musiccaps_eval_rows_video_to_audio_and_captions(reports):
    r = reports["musiccaps"]
    d = _directions(r)
    assert set(d) == {"video→audio", "text→audio", "audio→text"}
    assert d["video→audio"]["paper"]["value"] == 20.4 and r["settings"]["items_in_split"] == 3
    assert r["problems"] == []
    for direction in d.values():
        _check_found_in_tiny_gallery(direction)


def test_every_report_records_what_made_its_numbers(reports):
    for name, r in reports.items():
        assert r["evaluation"] == name and r["model_source"] == "tiny" and r["checkpoint_hash"]
        assert r["machine"]["platform"] and r["avsearch_version"] and r["seconds"]["index"] >= 0
        for d in r["directions"]:
            assert d["ann"] is None and "256" in d["ann_note"] or "captions" in d["ann_note"]


def test_ablation_knobs_reach_the_index(data):
    r = run_benchmark("clotho", data["clotho"], model="tiny", ann=False,
                      knobs=Knobs(clip_s=0.5, fps=1.0, frames="keyframes", resize="pil"))
    index = r["settings"]["index"]
    assert (index["clip_s"], index["fps"], index["frames"], index["resize"]) == (0.5, 1.0, "keyframes", "pil")
    t2a = _directions(r)["text→audio"]
    assert t2a["gallery"] > 3  # 1.5 s recordings cut into 0.5 s clips
    assert t2a["ann_note"] == "not asked (--no-ann)"
    _check_found_in_tiny_gallery(t2a)  # any clip of the recording counts


def test_view_knob_picks_the_video_side_view(data):
    from avsearch.evaluation.benchmarks import READERS

    msrvtt = READERS["msrvtt"](data["msrvtt"], view="av")
    assert [d.name for d in msrvtt.directions] == ["text→av"] and msrvtt.views == ("av",)
    vgg = READERS["vggsound"](data["vggsound"], view="av")
    assert [d.name for d in vgg.directions] == ["av→audio"] and vgg.directions[0].paper["value"] is None


def test_bad_settings_and_a_folder_without_metadata_are_refused(data, tmp_path):
    with pytest.raises(UsageError, match="resize"):
        run_benchmark("msrvtt", data["msrvtt"], model="tiny", knobs=Knobs(resize="bilinear"))
    with pytest.raises(UsageError, match="metadata"):
        run_benchmark("msrvtt", tmp_path, model="tiny")


def test_cli_prints_the_table_and_writes_json_and_markdown(data, tmp_path):
    from typer.testing import CliRunner

    from avsearch.cli.app import app

    out = CliRunner().invoke(app, ["eval", "msrvtt", "--data", str(data["msrvtt"]), "--model", "tiny", "--resize", "pil",
                                   "--out", str(tmp_path / "res")], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    assert "| text→video | exact | 3 | 3 |" in out.stdout and "not published in the WAVE paper's tables" in out.stdout
    (json_file,) = (tmp_path / "res").glob("msrvtt-*.json")
    (md_file,) = (tmp_path / "res").glob("msrvtt-*.md")
    report = json.loads(json_file.read_text())
    assert report["settings"]["index"]["resize"] == "pil" and report["settings"]["knobs"]["resize"] == "pil"
    assert "| text→video | exact | 3 | 3 |" in md_file.read_text()


def test_a_kept_index_scores_only_this_data_sets_clips_and_copies_score_on_their_originals(data, tmp_path):
    from avsearch import Index

    kept = tmp_path / "kept"
    run_benchmark("audiocaps", data["audiocaps"], model="tiny", index_dir=kept, ann=False)
    # MusicCaps' items are other sounds: audiocaps' 3 clips in the same index are no part of its gallery.
    r = run_benchmark("musiccaps", data["musiccaps"], model="tiny", index_dir=kept, ann=False)
    assert _directions(r)["text→audio"]["gallery"] == 3 and _directions(r)["video→audio"]["gallery"] == 3
    # Clotho's fixture recordings are byte-for-byte audiocaps' (same generator and seeds): each is
    # a content duplicate whose clips are under the audiocaps file. Its queries are scored there.
    r = run_benchmark("clotho", data["clotho"], model="tiny", index_dir=kept, ann=False, knobs=Knobs(clip_s=10.0))
    with Index.open(kept) as index:
        status = [f["status"] for f in index.store.file_rows()]
    assert status.count("duplicate") == 3 and status.count("ok") == 6  # the index really holds both other sets
    t2a = _directions(r)["text→audio"]
    assert (t2a["queries"], t2a["gallery"], t2a["skipped"]) == (15, 3, 0) and r["problems"] == []
    _check_found_in_tiny_gallery(t2a)


def test_view_is_refused_where_it_changes_nothing(data, monkeypatch, capsys):
    import sys

    from avsearch.cli.app import main

    for name in ("audiocaps", "clotho"):
        with pytest.raises(UsageError, match="--view means nothing for .*vggsound: the query's view"):
            run_benchmark(name, data[name], model="tiny", knobs=Knobs(view="av"))
    # Through the real entry point: a usage error exits 2.
    monkeypatch.setattr(sys, "argv", ["avsearch", "eval", "clotho", "--data", str(data["clotho"]), "--view", "av"])
    with pytest.raises(SystemExit) as exit:
        main()
    assert exit.value.code == 2 and "--view means nothing for clotho" in capsys.readouterr().err


def test_a_direction_without_scored_queries_says_why_in_the_table(reports):
    import copy

    r = copy.deepcopy(reports["msrvtt"])
    r["directions"][0].update(queries=0, exact={}, ann=None, ann_note=None)
    md = to_markdown(r)
    assert "None" not in md and md.count("| text→video | ") == 2
    assert md.count("n/a: no query could be scored") == 2
