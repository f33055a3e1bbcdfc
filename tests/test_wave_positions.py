"""mRoPE position ids (spec §5), checked against transformers' own get_rope_index where they agree."""

from __future__ import annotations

import json

import pytest
import torch

from avsearch.models.wave.batching import left_pad
from avsearch.models.wave.config import TokenIds
from avsearch.models.wave.layout import plan_audio, plan_video
from avsearch.models.wave.positions import row_positions, video_grid_positions
from avsearch.models.wave.prompts import AVBlock, media_row, piece_ids, text_row
from wave_fixtures import tiny_checkpoint


@pytest.fixture(scope="module")
def upstream():
    """transformers' Qwen2_5OmniThinkerModel (shapes only, on the meta device) for its get_rope_index."""
    from transformers import Qwen2_5OmniThinkerConfig, Qwen2_5OmniThinkerModel

    raw = json.loads((tiny_checkpoint() / "config.json").read_text())
    with torch.device("meta"):
        model = Qwen2_5OmniThinkerModel(Qwen2_5OmniThinkerConfig.from_dict(raw))
    ids = TokenIds(audio=raw["audio_token_index"], image=raw["image_token_index"], video=raw["video_token_index"],
                   audio_bos=raw["audio_start_token_id"], audio_eos=raw["audio_end_token_id"],
                   vision_bos=raw["vision_start_token_id"], vision_eos=raw["vision_end_token_id"],
                   im_end=raw["audio_token_index"] - 1, pad=0)
    return model, ids


def _fake_tokenize(text):
    return [7 + (ord(c) % 50) for c in text[:6]]  # any ids outside the special range


def _row(pieces, ids, av_mode="sequential"):
    chunks = [piece_ids(p, ids, _fake_tokenize) for p in pieces]
    positions = row_positions(list(zip(pieces, map(len, chunks))), av_mode=av_mode)
    return [i for c in chunks for i in c], positions


@pytest.mark.parametrize("frames,seconds", [(8, 4.0), (200, 100.0), (7, 3.5)])
def test_silent_video_positions_equal_upstream(upstream, frames, seconds):
    model, ids = upstream
    grid = plan_video(frames, 84, 112, seconds, 2.0)
    short = plan_video(4, 56, 56, 2.0, 2.0)
    rows = [_row(media_row("video", grid=grid), ids),
            _row(media_row("video", grid=short, instruction="Is it red?"), ids)]
    input_ids, mask, mine = left_pad([r[0] for r in rows], [r[1] for r in rows], pad_id=ids.pad)
    theirs, _ = model.get_rope_index(
        input_ids, video_grid_thw=torch.tensor([[g.t, g.h, g.w] for g in (grid, short)]), attention_mask=mask,
        second_per_grids=torch.tensor([grid.seconds_per_grid, short.seconds_per_grid]))
    real = mask.bool()
    assert torch.equal(mine[:, real], theirs[:, real])
    assert int(mine[0, 0, -1]) > mine.shape[-1]  # 3-D: positions run ahead of the token count


def test_training_mode_av_without_doubling_equals_upstream_use_audio_in_video(upstream):
    # With one token per Whisper token and spg = 1, WAVE's training-mode chunking and upstream's
    # use_audio_in_video=True path describe the same layout: a check of slices, shared bos/eos
    # and the 3-D video positions. WAVE's only extra is the doubled audio length.
    model, ids = upstream
    grid = plan_video(12, 56, 84, 6.0, 2.0)
    audio = plan_audio(int(5.5 * 16_000))
    input_ids, positions = _row(media_row("av", grid=grid, audio=audio, tokens_per_whisper_token=1), ids, "training")
    theirs, _ = model.get_rope_index(
        torch.tensor([input_ids]), video_grid_thw=torch.tensor([[grid.t, grid.h, grid.w]]),
        attention_mask=torch.ones(1, len(input_ids), dtype=torch.long), use_audio_in_video=True,
        audio_seqlens=torch.tensor(audio.segment_frames), second_per_grids=torch.tensor([1.0]))
    assert torch.equal(positions, theirs[:, 0])


def test_training_mode_av_doubles_audio_positions_and_shares_bos_and_eos(upstream):
    _, ids = upstream
    grid = plan_video(8, 56, 56, 4.0, 2.0)  # 4 grids of 4 tokens: 2 chunks of 8 video tokens
    audio = plan_audio(4 * 16_000)  # 100 Whisper tokens -> 200 <|AUDIO|>
    pieces = media_row("av", grid=grid, audio=audio)
    input_ids, pos = _row(pieces, ids, "training")
    block = pieces[0]
    assert isinstance(block, AVBlock) and block.chunks == ((8, 100), (8, 100))
    t = pos[0]
    assert t[0] == t[1] == 0  # <|vision_bos|><|audio_bos|>
    audio_at = [i for i, x in enumerate(input_ids) if x == ids.audio]
    assert [int(t[i]) for i in audio_at] == list(range(1, 201))  # st + arange(2N) across the chunks
    video_at = [i for i, x in enumerate(input_ids) if x == ids.video]
    assert [int(t[i]) for i in video_at] == [1] * 4 + [26] * 4 + [51] * 4 + [76] * 4  # t * spg * 25
    eos = [i for i, x in enumerate(input_ids) if x in (ids.audio_eos, ids.vision_eos)]
    assert [int(pos[0, i]) for i in eos] == [201, 201]  # after the last slice (audio, ends at 200)
    assert int(t[-1]) == int(t[eos[-1]]) + len(input_ids) - 1 - eos[-1]


def test_sequential_av_positions_are_0_to_l_minus_1(upstream):
    _, ids = upstream
    grid = plan_video(8, 56, 56, 4.0, 2.0)
    input_ids, pos = _row(media_row("av", grid=grid, audio=plan_audio(4 * 16_000)), ids, "sequential")
    expected = torch.arange(len(input_ids)).expand(3, -1)
    assert torch.equal(pos, expected)


def test_audio_and_text_rows_are_sequential(upstream):
    _, ids = upstream
    for pieces in (media_row("audio", audio=plan_audio(16_000)), text_row("hello there")):
        input_ids, pos = _row(pieces, ids, "training")
        assert torch.equal(pos, torch.arange(len(input_ids)).expand(3, -1))


def test_video_grid_positions_use_truncated_float32_time():
    grid = plan_video(200, 56, 56, 100.0, 2.0)  # spg 1.5625 -> t = floor(k * 39.0625)
    t = video_grid_positions(grid)[0].view(grid.t, -1)[:, 0]
    assert t[:4].tolist() == [0, 39, 78, 117]


def test_an_unknown_av_mode_is_refused(upstream):
    _, ids = upstream
    grid = plan_video(4, 56, 56, 2.0, 2.0)
    with pytest.raises(ValueError, match="sequential or training"):
        _row(media_row("av", grid=grid, audio=plan_audio(32_000)), ids, "upstream")
