"""Crash and hang isolation (issue 17): FFmpeg runs in a child process for probing (every file)
and for decoding files whose probe looks unusual, so a segfault or an endless loop fails one file.

The faults are made with the sandbox's documented test hook (AVSEARCH_TEST_MEDIA_FAULT), which
only the child obeys: a real SIGSEGV, a real sleep."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from avsearch import Index
from avsearch.errors import MediaError, QueryError
from avsearch.media import DecodeOptions, FileToDecode, decode_files, probe
from avsearch.media.sandbox import FAULT_ENV, Sandbox, looks_ordinary
from avsearch.media.synth import write_audio, write_video
from avsearch.store.meta import IndexSettings

# PIL's resize: a fresh sandbox child then need not import torch (seconds) before its first clip.
PIL = IndexSettings(resize="pil")


@pytest.fixture
def lib(tmp_path) -> Path:
    d = tmp_path / "lib"
    write_audio(d / "calm.wav", duration_s=2.0, seed=1)
    write_audio(d / "crashes-x.wav", duration_s=2.0, seed=2)
    write_audio(d / "ulaw-x.wav", duration_s=2.0, seed=3, subtype="ULAW")  # an unusual codec: decoded in the child
    return d


def test_a_segfault_while_probing_fails_that_file_and_the_run_goes_on(tmp_path, lib, monkeypatch):
    monkeypatch.setenv(FAULT_ENV, "crash:probe:crashes-x")
    index = Index.open(tmp_path / "idx", model="tiny", create=True, settings=PIL)
    report = index.add([lib])
    assert sorted(Path(p).name for p in report.indexed) == ["calm.wav", "ulaw-x.wav"]
    [(path, reason)] = report.failed
    assert Path(path).name == "crashes-x.wav"
    assert "the decoder crashed (signal 11: SIGSEGV) probing it" in reason


def test_unusual_files_are_decoded_in_the_child_and_a_crash_there_fails_only_them(tmp_path, lib, monkeypatch):
    assert looks_ordinary(probe(lib / "calm.wav")) and not looks_ordinary(probe(lib / "ulaw-x.wav"))
    # Both *-x files would crash the child while decoding; only the u-law one is decoded there.
    monkeypatch.setenv(FAULT_ENV, "crash:decode:-x")
    report = Index.open(tmp_path / "idx", model="tiny", create=True, settings=PIL).add([lib])
    assert sorted(Path(p).name for p in report.indexed) == ["calm.wav", "crashes-x.wav"]
    [(path, reason)] = report.failed
    assert Path(path).name == "ulaw-x.wav" and "the decoder crashed (signal 11: SIGSEGV) decoding it" in reason
    # isolate="all": every file is decoded in the child, so both crash there (and the run still ends).
    report = Index.open(tmp_path / "all", model="tiny", create=True, settings=PIL).add([lib], isolate="all")
    assert [Path(p).name for p in report.indexed] == ["calm.wav"]
    assert sorted(Path(p).name for p, _ in report.failed) == ["crashes-x.wav", "ulaw-x.wav"]


def test_a_hanging_decode_is_cut_off_and_the_next_file_decodes(tmp_path, monkeypatch):
    hangs = write_video(tmp_path / "hangs.mp4", duration_s=2.0, seed=5)
    fine = write_video(tmp_path / "fine.mp4", duration_s=2.0, seed=6)
    monkeypatch.setenv(FAULT_ENV, "hang:decode:hangs.mp4")
    files = [FileToDecode(p, [(0.0, 2.0)], media=probe(p), isolated=True) for p in (hangs, fine)]
    started = time.monotonic()
    reports = list(decode_files(files, DecodeOptions(resize="pil"), workers=1, stall_s=1.5))
    assert time.monotonic() - started < 20
    final = {r.file: r for r in reports if r.kind != "clip"}
    assert final[0].kind == "error" and "made no progress for 1.5 s and was cut off" in str(final[0].error)
    assert final[1].kind == "done" and final[1].index == 1, final[1]


def test_a_hanging_probe_is_cut_off(tmp_path, monkeypatch):
    f = write_audio(tmp_path / "slow.wav", duration_s=1.0)
    monkeypatch.setenv(FAULT_ENV, "hang:probe:slow")
    sandbox = Sandbox()
    try:
        with pytest.raises(MediaError, match="probing it made no progress for 1 s and was cut off"):
            sandbox.probe(f, timeout_s=1.0)
        monkeypatch.delenv(FAULT_ENV)
        assert sandbox.probe(f).duration_s == pytest.approx(1.0)  # a fresh child answers
    finally:
        sandbox.close()


def test_query_media_that_crashes_the_decoder_is_a_query_error(indexed, tmp_path, monkeypatch):
    index, _, _ = indexed
    f = write_audio(tmp_path / "q-crash.wav", duration_s=1.0)
    monkeypatch.setenv(FAULT_ENV, "crash:probe:q-crash")
    with pytest.raises(QueryError, match="the decoder crashed"):
        index.search(f, k=1)


def test_an_in_process_decode_without_progress_is_cut_off_but_a_slow_consumer_is_not(tmp_path, monkeypatch):
    from avsearch.media import decode as decode_mod
    from avsearch.media import iter_clips

    video = write_video(tmp_path / "v.mp4", duration_s=2.0, fps=10, seed=7)
    ranges = [(0.0, 0.5), (0.5, 1.0), (1.0, 1.5), (1.5, 2.0)]
    clips = []
    for clip in iter_clips(video, ranges, DecodeOptions(resize="pil"), stall_s=0.5):
        time.sleep(0.7)  # the consumer is slow: that time is not the decoder's
        clips.append(clip)
    assert len(clips) == 4

    real = decode_mod._State.on_video

    def crawling(self, frame):  # as if damaged data made every frame cost a long detour
        time.sleep(0.2)
        real(self, frame)

    monkeypatch.setattr(decode_mod._State, "on_video", crawling)
    with pytest.raises(MediaError, match="made no progress for 0.5 s .* and was cut off"):
        list(iter_clips(video, [(0.0, 2.0)], DecodeOptions(resize="pil"), stall_s=0.5))


@pytest.mark.parametrize("change", [dict(video_codec="cinepak"), dict(audio_codec="adpcm_ms"), dict(width=20000, height=20000),
                                    dict(sample_rate=7), dict(channels=200), dict(fps=90000.0)])
def test_a_probe_with_an_unusual_codec_or_impossible_header_values_is_decoded_in_the_child(tmp_path, change):
    from dataclasses import replace

    media = probe(write_video(tmp_path / "v.mp4", duration_s=0.5, seed=8))
    assert looks_ordinary(media)
    assert not looks_ordinary(replace(media, **change))
