"""Damage-tolerant decoding (issue 17): corrupt packets cost the stretch they cover, not the file.
The clips FFmpeg can decode are indexed; the damaged time ranges are recorded in the file's error
text (status "ok": partly indexed) and shown by `failures` and `status`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from avsearch import Index
from avsearch.media import iter_clips, plan_clips, probe
from avsearch.media.synth import write_video
from avsearch.store.meta import IndexSettings

from fuzz_corpus import flip_bytes


@pytest.fixture(scope="module")
def damaged_video(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("damaged")
    good = write_video(d / "good.mp4", duration_s=6.0, seed=3)
    # 300 flipped bytes in the middle half of the file (inside the mdat payload, past the header).
    bad = d / "flipped.mp4"
    bad.write_bytes(flip_bytes(good.read_bytes(), count=300, start=0.25, end=0.75, seed=1))
    return bad


def test_corrupt_packets_are_skipped_and_their_stretch_recorded(damaged_video):
    media = probe(damaged_video)
    damage = []
    clips = list(iter_clips(damaged_video, plan_clips(media.duration_s, clip_s=2.0, min_last_s=1.0), damage=damage))
    assert [c.start_s for c in clips] == [0.0, 2.0, 4.0]  # every clip is there
    assert damage and all(0.0 <= d.start_s <= d.end_s <= media.duration_s + 0.1 for d in damage)
    assert all(d.reason for d in damage) and any("Invalid data" in d.reason for d in damage)


def test_a_damaged_file_is_partly_indexed_and_shown_so(tmp_path, damaged_video):
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "flipped.mp4").write_bytes(damaged_video.read_bytes())
    index = Index.open(tmp_path / "idx", model="tiny", create=True, settings=IndexSettings(clip_s=2.0))
    report = index.add([lib])
    assert report.failed == []
    assert [Path(p).name for p in report.indexed] == ["flipped.mp4"]
    [(path, note)] = report.partly
    assert re.fullmatch(r"partly indexed: damaged at \d+\.\d–\d+\.\d s.* \(Invalid data found when processing input\)", note), note
    assert not re.search(r"-\d", note)  # never a negative time
    assert index.stats()["files_damaged"] == 1
    assert index.stats()["clips"] == 3 * 3  # 3 clips of 2 s, 3 views each
    [row] = index.failures()
    assert row["status"] == "partly indexed" and row["error"] == note
    # Recorded as done: the next run leaves it alone.
    assert index.add([lib]).indexed == []
    # The CLI shows it: `failures` lists it as partly indexed, `status` counts it.
    from test_cli import run

    out = run("failures", "--index", tmp_path / "idx")
    assert "0 failed files, 1 partly indexed" in out.stdout and "partly indexed: damaged at" in out.stdout
    out = run("status", "--index", tmp_path / "idx")
    assert re.search(r"files partly indexed\W+1 ", out.stdout), out.stdout


def test_a_file_cut_short_keeps_the_clips_before_the_cut(tmp_path):
    # A Matroska file cut at 60%: its header still says 6 s. The clips before the cut are decoded;
    # the later ones are left out (they would only repeat the last frame) and recorded as damage.
    good = write_video(tmp_path / "whole.mkv", duration_s=6.0, seed=4)
    data = good.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    media = probe(cut)
    assert media.duration_s > 5.9
    damage = []
    clips = list(iter_clips(cut, plan_clips(media.duration_s, clip_s=2.0, min_last_s=1.0), damage=damage))
    assert [c.start_s for c in clips] == [0.0, 2.0]
    [d] = damage
    assert 2.0 < d.start_s < 4.0 and d.end_s == pytest.approx(media.duration_s, abs=0.1)
    assert "ends early" in d.reason
