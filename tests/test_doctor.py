"""`avsearch doctor [--repair]` and `status` on indexes damaged the way disks and people damage them:
a data file deleted, a table's versions deleted, orphan clips, a missing ANN index. Each repair is
judged by the end state a user wants: after `doctor --repair` and one `avsearch index`, the index
holds exactly the clips it held before the damage."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from avsearch import Index
from avsearch.errors import IndexDamagedError
from test_indexer import clip_set

RUST_PATH = ".rs:"


@pytest.fixture
def grown(indexed, tmp_path):
    """The indexed library plus one more file committed on its own: the clips table has a newest
    data file that an older version does not need."""
    from avsearch.media.synth import write_audio

    index, lib, _ = indexed
    extra = tmp_path / "extra"
    extra.mkdir()
    write_audio(extra / "tone.wav", duration_s=3.0, tone_hz=600.0, seed=9)
    index.add([extra])
    return index, [lib, extra], clip_set(index)


def clips_dir(index: Index) -> Path:
    return index.path / "lance" / "clips.lance"


def newest_data_file(index: Index) -> Path:
    return max((clips_dir(index) / "data").iterdir(), key=lambda p: p.stat().st_mtime_ns)


def assert_healthy_and_whole_again(path: Path, roots, before):
    """After a repair: no findings, no errors, and one indexing run restores exactly `before`."""
    index = Index.open(path)
    assert index.doctor().ok, index.doctor().as_dict()
    index.search("x", k=3)
    index.add(roots)
    assert clip_set(Index.open(path)) == before
    assert Index.open(path).doctor().ok


def test_a_healthy_index_has_no_findings(indexed):
    index, _, _ = indexed
    assert index.doctor().as_dict()["findings"] == []


def test_a_deleted_data_file_is_reported_everywhere_then_repaired_from_an_older_version(grown):
    index, roots, before = grown
    newest_data_file(index).unlink()
    damaged = Index.open(index.path)
    with pytest.raises(IndexDamagedError, match="doctor --repair") as err:
        damaged.search("x")
    assert RUST_PATH not in str(err.value)

    stats = damaged.stats()  # status never fails: it says what is wrong
    assert stats["damaged"] and [p["part"] for p in stats["problems"]] == ["clips"]
    found = damaged.doctor().findings
    assert [f.part for f in found] == ["clips"] and "restore version" in found[0].repair

    report = Index.open(index.path).doctor(repair=True)
    assert any(r.startswith("clips: restored version") for r in report.repaired)
    assert report.remaining == []
    assert_healthy_and_whole_again(index.path, roots, before)


def test_a_table_without_versions_is_remade_and_the_next_run_re_embeds(grown):
    index, roots, before = grown
    shutil.rmtree(clips_dir(index) / "_versions")
    damaged = Index.open(index.path)
    with pytest.raises(IndexDamagedError, match="damaged.*doctor --repair"):
        damaged.search("x")
    assert Index.open(index.path).stats()["damaged"]
    report = Index.open(index.path).doctor(repair=True)
    assert any("no readable version" in r for r in report.repaired)
    assert any("missing clips marked part done" in r for r in report.repaired)
    assert_healthy_and_whole_again(index.path, roots, before)


def test_a_lost_files_table_is_rebuilt_from_the_clips_without_re_embedding(grown):
    index, roots, before = grown
    shutil.rmtree(index.path / "lance" / "files.lance" / "_versions")
    report = Index.open(index.path).doctor(repair=True)
    assert any("rows rebuilt from the clips" in r for r in report.repaired)
    resumed = Index.open(index.path)
    assert resumed.stats()["files_ok"] == 0 and resumed.stats()["files_partial"] > 0
    run = resumed.add(roots)
    assert clip_set(Index.open(index.path)) == before
    # every file with clips was carried on ("resume", its clips kept), none embedded from scratch
    assert run.plan_counts["resume"] == Index.open(index.path).stats()["files_ok"] > 0


def test_orphans_and_a_missing_ann_index_are_found_and_fixed(indexed):
    from avsearch.store.tables import _clips_table

    index, lib, _ = indexed
    before = clip_set(index)
    store = index.store
    row = {"clip_id": "orphan", "row_id": 4242, "fingerprint": "nope", "path": str(lib / "ghost.mp4"),
           "start_s": 0.0, "end_s": 10.0, "view": "av", "file_duration_s": 10.0, "indexed_at": 0.0,
           "model_id": store.meta.model_id}
    store.tables.clips.add(_clips_table([row], np.ones((1, store.meta.dim), np.float32), store.meta.dim))
    shutil.rmtree(index.path / "ann")
    parts = sorted(f.part for f in Index.open(index.path).doctor().findings)
    assert parts == ["ann", "orphans"]
    report = Index.open(index.path).doctor(repair=True)
    assert "1 orphan clips deleted" in report.repaired and "ANN index rebuilt" in report.repaired
    assert report.remaining == [] and clip_set(Index.open(index.path)) == before
    assert Index.open(index.path).stats()["ann"]["fresh"]


def cli(*args):
    return subprocess.run([sys.executable, "-m", "avsearch.cli.app", *map(str, args)], capture_output=True,
                          text=True, timeout=300, env={**__import__("os").environ, "COLUMNS": "200"})


def test_cli_status_on_a_damaged_index_and_doctor_repair(grown):
    index, _, _ = grown
    newest_data_file(index).unlink()
    status = cli("status", "--index", index.path)
    assert status.returncode == 0, status.stderr
    assert "damaged" in status.stdout and "clips" in status.stdout and "doctor --repair" in status.stdout
    assert RUST_PATH not in status.stdout + status.stderr
    check = cli("doctor", "--index", index.path, "--json")
    assert check.returncode == 1 and json.loads(check.stdout)["findings"][0]["part"] == "clips"
    fixed = cli("doctor", "--repair", "--index", index.path)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "restored version" in fixed.stdout
    assert cli("doctor", "--index", index.path).stdout.strip().endswith("no problems found")
