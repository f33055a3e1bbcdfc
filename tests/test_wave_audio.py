"""Audio path pieces: Kaldi fbank, BEATs, Whisper mel, pooling and interleaving (spec §1-§2)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from avsearch.models.wave.audio import (
    WhisperMel, force_length, interleave, pool_pairs, prepare_audio, split_segments,
)
from avsearch.models.wave.beats import (
    BEATs, BEATsConfig, beats_patch_count, normalize_beats_state_dict, relative_position_buckets,
)
from avsearch.models.wave.fbank import fbank_frames, kaldi_fbank, mel_banks
from avsearch.models.wave.tiny import BEATS_CFG
from wave_fixtures import sine


def _reference_wave() -> torch.Tensor:
    t = np.arange(16_000) / 16_000.0
    wave = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 3000 * t)
            + 0.05 * np.sin(2 * np.pi * 97 * t * t * 50))
    return torch.from_numpy(wave * 2**15)


def test_fbank_matches_kaldi_values():
    # Golden values from kaldi-native-fbank 1.23 (a C++ port of Kaldi's compute-fbank-feats) with
    # dither 0 and 80 bins (Kaldi refuses 128 bins at a 512-point FFT because some would be empty;
    # torchaudio and this module allow them). The pipeline is the same for any bin count.
    fbank = kaldi_fbank(_reference_wave(), num_bins=80).numpy()
    assert fbank.shape == (98, 80)
    golden = {0: [14.7654, 15.4252, 5.2443, 15.8362, 8.1036],
              37: [9.2131, 15.2092, 4.2001, 15.8418, 16.6107],
              97: [9.2013, 15.2091, 4.2597, 15.8364, 8.0821]}
    for frame, values in golden.items():
        np.testing.assert_allclose(fbank[frame, [0, 10, 30, 50, 60]], values, atol=2e-3)


def test_fbank_has_128_bins_and_snip_edges_frame_count():
    assert fbank_frames(160_000) == 998 and fbank_frames(399) == 0
    banks = mel_banks(128)
    assert banks.shape == (128, 257) and float(banks[:, -1].abs().sum()) == 0.0 and float(banks.min()) >= 0.0
    out = kaldi_fbank(torch.from_numpy(sine(1.0).astype(np.float64)) * 2**15)
    assert out.shape == (98, 128) and out.dtype == torch.float64


def test_fbank_ignores_a_dc_offset():
    wave = _reference_wave()
    np.testing.assert_allclose(kaldi_fbank(wave + 500.0).numpy(), kaldi_fbank(wave).numpy(), atol=1e-9)


def test_relative_position_buckets_are_exact_near_and_log_spaced_far():
    buckets = relative_position_buckets(1200, num_buckets=320, max_distance=800)
    row = buckets[600]
    assert int(row[600]) == 0  # same position
    assert int(row[601]) == 161 and int(row[599]) == 1  # one step right / left
    assert int(row[600 + 79]) == 160 + 79  # last exact bucket
    assert 160 + 80 <= int(row[600 + 90]) < 160 + 90  # log-spaced beyond 80
    assert int(row[1199]) == 160 + 149  # 599 to the right: 80 + log(599/80)/log(10)*80
    assert int(buckets[0, 1199]) == 319 and int(buckets[1199, 0]) == 159  # beyond max_distance: capped


def test_beats_shapes_for_a_ten_second_clip():
    torch.manual_seed(0)
    model = BEATs(BEATS_CFG).eval()
    wave = torch.from_numpy(sine(10.0)).unsqueeze(0)
    with torch.inference_mode():
        out = model(wave)
    # 998 fbank frames -> 62 slabs of 160 ms x 8 frequency patches
    assert beats_patch_count(998) == 496
    assert out.shape == (1, 496, BEATS_CFG.encoder_embed_dim)
    assert model.post_extract_proj.weight.shape == (48, 32)
    assert model.patch_embedding.weight.shape == (32, 1, 16, 16)
    assert hasattr(model.encoder.layers[0].self_attn, "relative_attention_bias")
    assert not hasattr(model.encoder.layers[1].self_attn, "relative_attention_bias")
    assert torch.isfinite(out).all()


def test_beats_patches_are_time_major():
    torch.manual_seed(0)
    model = BEATs(BEATS_CFG).eval()
    fbank = torch.zeros(1, 64, 128)
    fbank[0, 16:32, 32:48] = 1.0  # one patch: time slab 1, frequency patch 2
    with torch.inference_mode():
        x = model.patch_embedding(fbank.unsqueeze(1)).flatten(2).transpose(1, 2)[0]
    changed = (x - x[0]).abs().sum(-1) > 1e-6
    assert changed.nonzero().flatten().tolist() == [1 * 8 + 2]


def test_beats_rows_do_not_depend_on_the_batch():
    torch.manual_seed(0)
    model = BEATs(BEATS_CFG).eval()
    a, b = torch.from_numpy(sine(2.0, 300.0)), torch.from_numpy(sine(2.0, 900.0))
    with torch.inference_mode():
        alone = model(a.unsqueeze(0))
        both = model(torch.stack([b, a]))
    torch.testing.assert_close(both[1:], alone, atol=1e-5, rtol=1e-5)


def test_beats_state_dict_uses_the_unilm_names_and_normalises_variants():
    keys = set(BEATs(BEATS_CFG).state_dict())
    for key in ("patch_embedding.weight", "layer_norm.weight", "post_extract_proj.weight",
                "encoder.pos_conv.0.weight_g", "encoder.pos_conv.0.weight_v", "encoder.pos_conv.0.bias",
                "encoder.layers.0.self_attn.relative_attention_bias.weight", "encoder.layers.1.self_attn.grep_a",
                "encoder.layers.1.self_attn.grep_linear.weight", "encoder.layers.1.fc1.weight",
                "encoder.layer_norm.weight"):
        assert key in keys
    raw = {"encoder.pos_conv.0.parametrizations.weight.original0": 1,
           "encoder.pos_conv.0.parametrizations.weight.original1": 2,
           "encoder.layers.1.self_attn.relative_attention_bias.weight": 3, "predictor.weight": 4,
           "encoder.layers.0.self_attn.relative_attention_bias.weight": 5}
    assert normalize_beats_state_dict(raw) == {"encoder.pos_conv.0.weight_g": 1, "encoder.pos_conv.0.weight_v": 2,
                                               "encoder.layers.0.self_attn.relative_attention_bias.weight": 5}


def test_beats_config_ignores_training_only_keys():
    extra = {"dropout": 0.1, "predictor_class": 527, "finetuned_model": True}
    cfg = BEATsConfig.from_dict({**BEATS_CFG.to_dict(), **extra})
    assert cfg == BEATS_CFG


def test_force_length_pads_496_patches_to_500_and_pairs_average():
    rows = torch.arange(496 * 2, dtype=torch.float32).view(496, 2) + 1
    forced = force_length(rows, 500)
    assert forced.shape == (500, 2) and float(forced[496:].abs().sum()) == 0.0
    assert force_length(rows, 400).shape == (400, 2)
    pooled = pool_pairs(forced)
    assert pooled.shape == (250, 2)
    torch.testing.assert_close(pooled[3], (rows[6] + rows[7]) / 2)
    torch.testing.assert_close(pooled[247], (rows[494] + rows[495]) / 2)
    assert float(pooled[248:].abs().sum()) == 0.0  # the 4 appended zero rows


def test_interleave_is_whisper_then_beats_token_by_token():
    w = torch.tensor([[1.0], [2.0], [3.0]])
    b = torch.tensor([[10.0], [20.0], [30.0]])
    assert interleave(w, b).flatten().tolist() == [1.0, 10.0, 2.0, 20.0, 3.0, 30.0]
    with pytest.raises(ValueError):
        interleave(w, b[:2])


def test_split_segments_pads_the_short_tail_to_one_second():
    audio = np.ones(300 * 16_000 + 100, dtype=np.float32)
    segments = split_segments(audio)
    assert [len(s) for s in segments] == [4_800_000, 16_000]
    assert segments[1][:100].sum() == 100 and segments[1][100:].sum() == 0


def test_whisper_mel_of_valid_frames_equals_the_300_second_padded_reference():
    mel = WhisperMel(128)
    audio = sine(3.3, 523.0) + 0.05 * np.random.default_rng(0).standard_normal(52_800).astype(np.float32)
    prepared = prepare_audio(audio, mel)
    frames = math.ceil(len(audio) / 160)
    assert prepared.whisper_features[0].shape == (128, frames)
    # the reference: pad every segment to 300 s (4.8M samples), then keep the valid frames
    full = mel.extractor(audio, sampling_rate=16_000, padding="max_length", return_attention_mask=True,
                         return_tensors="np")
    assert int(full["attention_mask"][0].sum()) == frames
    np.testing.assert_allclose(prepared.whisper_features[0], full["input_features"][0][:, :frames], atol=1e-5)
