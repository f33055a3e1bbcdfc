"""Cutting a hit's time range into its own file: stream copy where a keyframe allows, else re-encode."""

from __future__ import annotations

import pytest

from avsearch.errors import MediaError
from avsearch.media.frames import COPY_TOLERANCE_S, export_range
from avsearch.media.probe import probe
from avsearch.media.synth import write_audio, write_video


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    d = tmp_path_factory.mktemp("export-src")
    return {
        # keyframe every second: most cuts can be copied
        "gop1s": write_video(d / "gop1s.mp4", duration_s=8.0, width=160, height=120, fps=25, gop=25,
                             sample_rate=48_000, channels=2),
        # one keyframe at 0: a cut at 5 s cannot be copied
        "onekey": write_video(d / "onekey.mp4", duration_s=8.0, width=160, height=120, fps=25, gop=1000),
        "flac": write_audio(d / "music.flac", duration_s=8.0, sample_rate=44_100, channels=2),
        "mp3": write_audio(d / "talk.mp3", duration_s=8.0, sample_rate=44_100, channels=2),
    }


def test_cut_on_a_keyframe_is_a_stream_copy(media, tmp_path):
    out = export_range(media["gop1s"], 2.0, 6.0, tmp_path / "a.mp4")
    got = probe(out)
    assert got.duration_s == pytest.approx(4.0, abs=0.1)
    # copied, not re-encoded: the stereo 48 kHz track survives (re-encoding writes mono)
    assert got.has_video and got.has_audio and got.channels == 2 and got.sample_rate == 48_000


def test_cut_just_after_a_keyframe_copies_from_that_keyframe(media, tmp_path):
    out = export_range(media["gop1s"], 2.3, 6.0, tmp_path / "b.mp4", mode="copy")
    assert probe(out).duration_s == pytest.approx(4.0, abs=0.1)  # starts 0.3 s early, at the 2.0 s keyframe
    assert 0.3 <= COPY_TOLERANCE_S


def test_reencoding_starts_exactly_at_the_asked_time(media, tmp_path):
    out = export_range(media["gop1s"], 2.3, 6.0, tmp_path / "c.mp4", mode="encode")
    got = probe(out)
    assert got.duration_s == pytest.approx(3.7, abs=0.12)
    assert got.has_video and got.has_audio and got.channels == 1


def test_no_keyframe_near_the_start_falls_back_to_reencoding(media, tmp_path):
    with pytest.raises(MediaError, match="keyframe"):
        export_range(media["onekey"], 5.0, 7.0, tmp_path / "d.mp4", mode="copy")
    out = export_range(media["onekey"], 5.0, 7.0, tmp_path / "e.mp4")
    assert probe(out).duration_s == pytest.approx(2.0, abs=0.12)


@pytest.mark.parametrize("name, suffix", [("flac", ".flac"), ("mp3", ".mp3")])
def test_audio_cuts(media, tmp_path, name, suffix):
    out = export_range(media[name], 2.0, 5.0, tmp_path / f"cut-{name}")
    assert out.suffix == suffix
    assert probe(out).duration_s == pytest.approx(3.0, abs=0.08)


def test_empty_range_is_a_clear_error(media, tmp_path):
    with pytest.raises(MediaError, match="empty"):
        export_range(media["gop1s"], 9.0, 12.0, tmp_path / "f.mp4")
