"""Token-count arithmetic and token strings of WAVE inputs (spec §2-§4): no model needed."""

from __future__ import annotations

import pytest

from avsearch.models.wave.layout import (
    audio_block_length, av_block_length, av_chunks, chunk_run_lengths, plan_audio, plan_video,
    select_frames, smart_resize, video_block_length, whisper_tokens,
)
from avsearch.models.wave.prompts import media_row, render_string, text_row


def test_ten_seconds_of_audio_is_250_whisper_tokens_and_500_placeholders():
    plan = plan_audio(10 * 16_000)
    assert plan.segment_frames == (1000,)
    assert plan.whisper_tokens == 250
    assert audio_block_length(plan) == 502  # bos + 2N + eos
    row = render_string(media_row("audio", audio=plan))
    assert row.count("<|AUDIO|>") == 500
    assert row.startswith("<|audio_bos|><|AUDIO|>")
    assert row.endswith("<|AUDIO|><|audio_eos|>Please describe the audio.<|im_end|>")


def test_whisper_token_formula_matches_the_spec_examples():
    assert [whisper_tokens(L) for L in (100, 103, 1000, 30000)] == [25, 26, 250, 7500]


def test_short_audio_is_padded_to_one_second():
    plan = plan_audio(1234)
    assert plan.segment_samples == (16_000,)
    assert plan.whisper_tokens == 25


def test_long_audio_is_cut_into_300_second_segments_with_a_padded_tail():
    plan = plan_audio(600 * 16_000 + 8_000)  # 600.5 s: two full segments and a 0.5 s tail
    assert plan.segment_samples == (4_800_000, 4_800_000, 16_000)
    assert plan.segment_tokens == (7500, 7500, 25)
    assert plan.whisper_tokens == 15025


@pytest.mark.parametrize("height,width", [(360, 640), (720, 1280), (1080, 1920)])
def test_smart_resize_of_16_by_9_frames_is_308_by_560(height, width):
    assert smart_resize(height, width) == (308, 560)


def test_smart_resize_enlarges_tiny_frames_to_min_pixels():
    h, w = smart_resize(10, 20)
    assert h % 28 == 0 and w % 28 == 0 and h * w >= 784


def test_frame_cap_spreads_128_frames_over_the_clip():
    kept = select_frames(300, 128)
    assert len(kept) == 128 and kept[0] == 0 and kept[-1] == 299
    assert select_frames(20, 128) == list(range(20))


def test_seconds_per_grid_follows_the_effective_fps():
    assert plan_video(20, 720, 1280, 10.0, 2.0).seconds_per_grid == 1.0
    assert plan_video(200, 720, 1280, 100.0, 2.0).seconds_per_grid == pytest.approx(1.5625)
    odd = plan_video(7, 56, 56, 3.5, 2.0)
    assert odd.t == 4  # 7 frames, the last repeated: 4 temporal grids


def test_audio_video_block_of_a_10_second_720p_clip_is_2704_tokens():
    grid = plan_video(20, 720, 1280, 10.0, 2.0)
    audio = plan_audio(10 * 16_000)
    assert (grid.t, grid.h, grid.w, grid.tokens_per_grid) == (10, 22, 40, 220)
    assert av_chunks(grid, audio.whisper_tokens) == [(440, 50)] * 5
    assert av_block_length(grid, audio) == 2704
    row = render_string(media_row("av", grid=grid, audio=audio))
    block = row[: row.index("Please")]
    assert block.count("<|VIDEO|>") + block.count("<|AUDIO|>") + 4 == 2704


def test_audio_video_chunks_of_100_seconds_hold_2_grids_and_156_to_158_audio_tokens():
    grid = plan_video(200, 720, 1280, 100.0, 2.0)  # capped at 128 frames: spg 1.5625
    audio = plan_audio(100 * 16_000)
    chunks = av_chunks(grid, audio.whisper_tokens)
    assert len(chunks) == 32
    assert all(v == 440 for v, _ in chunks)
    assert {2 * a for _, a in chunks} == {156, 158}
    assert sum(a for _, a in chunks) == 2500


def test_unpaired_audio_chunks_are_appended_after_the_video():
    grid = plan_video(4, 56, 56, 2.0, 2.0)  # 2 s of frames: one chunk of 2 grids
    audio = plan_audio(6 * 16_000)  # 6 s of audio: three chunks
    assert av_chunks(grid, audio.whisper_tokens) == [(grid.tokens, 50), (0, 50), (0, 50)]


def test_chunk_boundaries_tolerate_float_rounding():
    # t*spg*25 can land a hair below c*chunk; isclose (rel 1e-5) still opens the next chunk there
    assert chunk_run_lengths([0, 5, 10, 14.9999999, 20, 25, 29.9999999], 15.0) == [3, 3, 1]
    assert chunk_run_lengths([0, 5, 10, 14.9, 20], 15.0) == [4, 1]


def test_audio_video_token_string_interleaves_chunks_in_order():
    grid = plan_video(4, 56, 56, 2.0, 2.0)
    audio = plan_audio(2 * 16_000)
    row = render_string(media_row("av", grid=grid, audio=audio))
    v = "<|VIDEO|>" * grid.tokens
    a = "<|AUDIO|>" * 100
    assert row == f"<|vision_bos|><|audio_bos|>{v}{a}<|audio_eos|><|vision_eos|>Please describe the video.<|im_end|>"
    assert video_block_length(grid) == grid.tokens + 2


def test_instruction_replaces_or_follows_the_describe_sentence():
    audio = plan_audio(16_000)
    replaced = render_string(media_row("audio", audio=audio, instruction="  Is a dog barking? "))
    assert replaced.endswith("<|audio_eos|>Is a dog barking?<|im_end|>")
    appended = render_string(media_row("audio", audio=audio, instruction="Is a dog barking?", placement="append"))
    assert appended.endswith("<|audio_eos|>Please describe the audio.\nIs a dog barking?<|im_end|>")


def test_text_rows_are_the_text_and_im_end_only():
    assert render_string(text_row("a dog barks")) == "a dog barks<|im_end|>"
