"""WaveEmbedder on the tiny checkpoint: the Embedder contract, the head, interleaving, invariances."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from avsearch.models.base import Embedder
from avsearch.models.wave.audio import prepare_audio
from avsearch.types import View
from wave_fixtures import make_clip, tiny_embedder

VIEWS = [View.AV, View.VIDEO, View.AUDIO]


@pytest.fixture(scope="module")
def embedder():
    return tiny_embedder()


def _capture_lm_inputs(embedder):
    """Record the kwargs of every language-model call (inputs_embeds, attention_mask, position_ids)."""
    calls = []
    handle = embedder.model.language_model.register_forward_pre_hook(
        lambda _m, _a, kwargs: calls.append({k: v.clone() for k, v in kwargs.items() if torch.is_tensor(v)}),
        with_kwargs=True)
    return calls, handle


def test_it_is_an_embedder_with_unit_vectors_of_one_dim(embedder):
    assert isinstance(embedder, Embedder)
    assert embedder.dim == 64 and embedder.model_id.startswith("wave:")
    clip = make_clip(3.0)
    outputs = [embedder.embed_clips([clip, make_clip(2.0, seed=1)], view) for view in VIEWS]
    outputs.append(embedder.embed_texts(["a dog barks", "rain on a roof"]))
    for out in outputs:
        assert out.dtype == np.float32 and out.shape == (2, embedder.dim)
        np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert embedder.embed_clips([], View.AV).shape == (0, embedder.dim)


def test_embeddings_are_deterministic(embedder):
    clip = make_clip(3.0, seed=4)
    for view in VIEWS:
        np.testing.assert_array_equal(embedder.embed_clips([clip], view), embedder.embed_clips([clip], view))
    np.testing.assert_array_equal(embedder.embed_texts(["x y"]), embedder.embed_texts(["x y"]))


@pytest.mark.parametrize("view", VIEWS)
def test_a_row_does_not_depend_on_its_batch(embedder, view):
    clip = make_clip(3.0, seed=2)
    longer = make_clip(5.0, seed=3, size=(84, 112))
    shorter = make_clip(1.5, seed=5, size=(56, 56))
    alone = embedder.embed_clips([clip], view)
    batch = embedder.embed_clips([longer, clip, shorter], view)
    np.testing.assert_allclose(batch[1:2], alone, atol=1e-5)


def test_a_text_does_not_depend_on_its_batch(embedder):
    alone = embedder.embed_texts(["a dog"])
    batch = embedder.embed_texts(["a much longer caption about a dog barking in the street", "a dog", "hi"])
    np.testing.assert_allclose(batch[1:2], alone, atol=1e-5)


def test_small_token_budgets_split_batches_without_changing_vectors(embedder, monkeypatch):
    clips = [make_clip(2.0, seed=s) for s in range(3)]
    whole = embedder.embed_clips(clips, View.AV)
    monkeypatch.setattr(embedder, "max_batch_tokens", 1)  # one clip per forward
    np.testing.assert_allclose(embedder.embed_clips(clips, View.AV), whole, atol=1e-5)


def test_the_instruction_changes_the_media_embedding(embedder):
    clip = make_clip(3.0, seed=6)
    plain = embedder.embed_clips([clip], View.AV)
    asked = embedder.embed_clips([clip], View.AV, instruction="Is a dog barking?")
    other = embedder.embed_clips([clip], View.AV, instruction="How many people are there?")
    assert np.abs(plain - asked).max() > 1e-3 and np.abs(asked - other).max() > 1e-3


def test_token_cost_is_the_sequence_length_the_model_sees(embedder):
    clip = make_clip(3.0, seed=7, size=(84, 140))
    for view in VIEWS:
        for instruction in (None, "Is a dog barking in the rain, and how many people are there?"):
            calls, handle = _capture_lm_inputs(embedder)
            try:
                embedder.embed_clips([clip], view, instruction=instruction)
            finally:
                handle.remove()
            assert calls[0]["inputs_embeds"].shape[1] == embedder.token_cost(clip, view, instruction)
    # the instruction's tokens are counted: a prompt-aware row is longer than a plain one
    assert embedder.token_cost(clip, View.AV, "Is a dog barking?") > embedder.token_cost(clip, View.AV)


def test_audio_placeholders_hold_whisper_and_beats_rows_interleaved(embedder):
    clip = make_clip(10.0, seed=8, video=False)
    calls, handle = _capture_lm_inputs(embedder)
    try:
        embedder.embed_clips([clip], View.AUDIO)
    finally:
        handle.remove()
    prepared = prepare_audio(clip.audio, embedder._mel)
    with torch.inference_mode():
        whisper = embedder.model.audio.whisper([prepared])[0]
        beats = embedder.model.audio.beats([prepared])[0]
    assert whisper.shape == beats.shape == (250, embedder.dim)
    ids = embedder._row(embedder.plan_clip(clip, View.AUDIO)).ids
    at = [i for i, t in enumerate(ids) if t == embedder.token_ids.audio]
    assert len(at) == 500 and at == list(range(at[0], at[0] + 500))
    embeds = calls[0]["inputs_embeds"][0]
    torch.testing.assert_close(embeds[at[0::2]], whisper)  # W0, W1, ... at even placeholder slots
    torch.testing.assert_close(embeds[at[1::2]], beats)  # B0, B1, ... at odd slots


def test_head_reads_the_last_token_of_every_layer(embedder):
    config = embedder.config
    head = embedder.model.extras.classify_linear
    assert config.classify_type == "all_layer"
    assert head[0].in_features == config.hidden_size * config.num_layers == 64 * 3
    # the hook capture equals transformers' hidden_states[1:] at position -1 (spec §6)
    clip = make_clip(2.0, seed=9)
    calls, handle = _capture_lm_inputs(embedder)
    try:
        vector = embedder.embed_clips([clip], View.AV)
    finally:
        handle.remove()
    kwargs = calls[0]
    with torch.inference_mode():
        out = embedder.model.language_model(**kwargs, output_hidden_states=True)
        states = torch.cat([h[:, -1] for h in out.hidden_states[1:]], dim=-1)
        assert states.shape[-1] == head[0].in_features
        expected = F.normalize(head(states), dim=-1).numpy()
    np.testing.assert_allclose(vector, expected, atol=1e-5)


def test_text_uses_the_final_normed_state_and_no_head(embedder):
    calls, handle = _capture_lm_inputs(embedder)
    try:
        vector = embedder.embed_texts(["a bird sings"])
    finally:
        handle.remove()
    with torch.inference_mode():
        out = embedder.model.language_model(**calls[0])
    np.testing.assert_allclose(vector, F.normalize(out.last_hidden_state[:, -1], dim=-1).numpy(), atol=1e-6)
    ids = embedder.tokenizer("a bird sings<|im_end|>", add_special_tokens=False)["input_ids"]
    assert calls[0]["inputs_embeds"].shape[1] == len(ids)  # TEXT<|im_end|>, no template or BOS


def test_both_av_position_modes_run_and_differ():
    clip = make_clip(4.0, seed=10)
    sequential = tiny_embedder(av_position_mode="sequential")
    training = tiny_embedder(av_position_mode="training")
    a = sequential.embed_clips([clip], View.AV)
    b = training.embed_clips([clip], View.AV)
    assert np.abs(a - b).max() > 1e-4
    np.testing.assert_allclose(np.linalg.norm(b), 1.0, atol=1e-5)
    # only audio+video positions differ between the modes
    np.testing.assert_array_equal(sequential.embed_clips([clip], View.VIDEO), training.embed_clips([clip], View.VIDEO))
    assert sequential.model_id != training.model_id  # the mode changes vectors, so it is part of the id


@pytest.mark.parametrize("view,kwargs,missing", [(View.AUDIO, {"audio": False}, "no audio"),
                                                 (View.AV, {"video": False}, "no frames"),
                                                 (View.VIDEO, {"video": False}, "no frames")])
def test_a_clip_without_the_needed_stream_is_a_clear_error(embedder, view, kwargs, missing):
    with pytest.raises(ValueError, match=f"{missing}.*view '{view.value}'"):
        embedder.embed_clips([make_clip(2.0, **kwargs)], view)


def test_audio_at_another_sample_rate_is_refused(embedder):
    clip = make_clip(2.0)
    clip.sample_rate = 44_100
    with pytest.raises(ValueError, match="16000 Hz"):
        embedder.token_cost(clip, View.AUDIO)


def test_frame_count_is_capped_at_max_frames(embedder):
    # 28x28 frames: one merged token per temporal grid of 2 frames
    long = make_clip(70.0, fps=2.0, size=(28, 28), audio=False)  # 140 frames -> 128 kept -> 64 grids
    one = make_clip(1.0, fps=2.0, size=(28, 28), audio=False)  # 2 frames -> 1 grid
    assert embedder.token_cost(long, View.VIDEO) - embedder.token_cost(one, View.VIDEO) == 63


def test_token_cost_of_a_10_second_720p_av_clip_is_the_2704_block_plus_the_prompt(embedder):
    from avsearch.types import Clip

    clip = Clip("hd.mp4", 0.0, 10.0, frames=np.zeros((20, 720, 1280, 3), dtype=np.uint8), fps=2.0,
                audio=np.zeros(160_000, dtype=np.float32))
    prompt = len(embedder.tokenizer("Please describe the video.<|im_end|>", add_special_tokens=False)["input_ids"])
    assert embedder.token_cost(clip, View.AV) == 2704 + prompt
