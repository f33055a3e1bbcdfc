"""`make_tiny_checkpoint`: a seeded random WAVE checkpoint in the real layout, made offline.

It has every part of WAVE-7B at toy size -- thinker (Whisper tower, ViT with a window block and a
full-attention block, 3-layer mRoPE LLM), BEATs (relative bias, gru_rel_pos, deep_norm,
post_extract_proj), the BEATs projection and the all-layer head -- saved with the legacy key
names (spec §7), so tests and offline smoke runs go through exactly the loading and embedding
code of the real model. Vectors carry no meaning. Same seed, same bytes.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import torch

from avsearch.models.wave.beats import BEATsConfig
from avsearch.models.wave.config import WaveConfig
from avsearch.models.wave.extras import WaveExtras
from avsearch.models.wave.tiny_tokenizer import CHAT_TEMPLATE, build_tokenizer

HIDDEN = 64
LAYERS = 3

BEATS_CFG = BEATsConfig(
    input_patch_size=16, embed_dim=32, conv_bias=False, encoder_layers=2, encoder_embed_dim=48,
    encoder_ffn_embed_dim=96, encoder_attention_heads=4, activation_fn="gelu", layer_norm_first=False,
    deep_norm=True, conv_pos=16, conv_pos_groups=4, relative_position_embedding=True, num_buckets=320,
    max_distance=800, gru_rel_pos=True,
)


def tiny_config(vocab_size: int, special: dict[str, int]) -> dict:
    """config.json of the tiny checkpoint: a Qwen2.5-Omni thinker config plus the WAVE keys."""
    return {
        "architectures": ["Qwen2_5OmniThinkerForConditionalGeneration"],
        "model_type": "qwen2_5_omni_thinker",
        "text_config": {
            "model_type": "qwen2_5_omni_text", "vocab_size": vocab_size, "hidden_size": HIDDEN,
            "intermediate_size": 128, "num_hidden_layers": LAYERS, "num_attention_heads": 4,
            "num_key_value_heads": 2, "hidden_act": "silu", "max_position_embeddings": 32768,
            "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
            # head_dim 16 -> 8 rotary frequencies split t/h/w like WAVE-7B's [16, 24, 24] of 64
            "rope_scaling": {"mrope_section": [2, 3, 3], "rope_type": "default", "type": "default"},
            "use_sliding_window": False, "tie_word_embeddings": False,
        },
        "vision_config": {
            "model_type": "qwen2_5_omni_vision_encoder", "depth": 2, "hidden_size": 32, "hidden_act": "silu",
            "intermediate_size": 64, "num_heads": 2, "in_channels": 3, "patch_size": 14, "spatial_merge_size": 2,
            "temporal_patch_size": 2, "window_size": 112, "out_hidden_size": HIDDEN, "fullatt_block_indexes": [1],
        },
        "audio_config": {
            "model_type": "qwen2_5_omni_audio_encoder", "num_mel_bins": 128, "encoder_layers": 2,
            "encoder_attention_heads": 4, "encoder_ffn_dim": 128, "d_model": 64, "output_dim": HIDDEN,
            "n_window": 100, "max_source_positions": 1500, "activation_function": "gelu",
            # WAVE keys (spec §7): BEATs is on; its weights live in this checkpoint (beats.*)
            "beats_path": BEATS_FILE, "beats_only": False,
        },
        "audio_token_index": special["<|AUDIO|>"],
        "image_token_index": special["<|IMAGE|>"],
        "video_token_index": special["<|VIDEO|>"],
        "audio_start_token_id": special["<|audio_bos|>"],
        "audio_end_token_id": special["<|audio_eos|>"],
        "vision_start_token_id": special["<|vision_bos|>"],
        "vision_end_token_id": special["<|vision_eos|>"],
        "user_token_id": special["<|im_start|>"],
        "position_id_per_seconds": 25,
        "seconds_per_chunk": 2,
        "tie_word_embeddings": False,
        # WAVE keys
        "train_classify": True,
        "classify_type": "all_layer",
        "sim_temperature": 0.01,
        "av_position_mode": "sequential",
        "beats_config": BEATS_CFG.to_dict(),
    }


# Qwen2.5-Omni keeps its audio feature extractor's and its image processor's settings in one
# preprocessor_config.json; the reference's processor needs both (avsearch reads neither: its
# pixel and mel settings are the spec's, in code).
PREPROCESSOR = {
    "processor_class": "Qwen2_5OmniProcessor",
    "feature_extractor_type": "WhisperFeatureExtractor",
    "feature_size": 128, "sampling_rate": 16000, "hop_length": 160, "chunk_length": 300, "n_fft": 400,
    "n_samples": 4_800_000, "nb_max_frames": 30000, "padding_side": "right", "padding_value": 0.0,
    "return_attention_mask": True, "dither": 0.0,
    "image_processor_type": "Qwen2VLImageProcessor",
    "do_resize": True, "resample": 3, "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
    "do_convert_rgb": True, "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_std": [0.26862954, 0.26130258, 0.27577711], "min_pixels": 784, "max_pixels": 176400,
    "patch_size": 14, "temporal_patch_size": 2, "merge_size": 2,
}

BEATS_FILE = "BEATs_iter3_plus.pt"  # the name config.json's audio_config.beats_path gives


def _random_tensor(name: str, shape: torch.Size, generator: torch.Generator) -> torch.Tensor:
    """Seeded values with sane scales: norms near 1, biases small, matrices ~ 1/sqrt(fan_in)."""
    noise = torch.randn(shape, generator=generator, dtype=torch.float32)
    last = name.rsplit(".", 1)[-1]
    if len(shape) == 1 or last in ("weight_g", "grep_a"):
        if last == "bias":
            return noise * 0.02
        return 1.0 + 0.1 * noise  # norm scales, gates, weight-norm magnitudes
    if "embed_tokens" in name or "relative_attention_bias" in name or "audio_bos_eos_token" in name:
        return noise
    fan_in = math.prod(shape[1:])
    return noise / math.sqrt(fan_in)


def make_tiny_checkpoint(directory: str | Path, seed: int = 0) -> Path:
    """Write a tiny random WAVE checkpoint into `directory` (created if needed) and return its path."""
    from safetensors.torch import save_file
    from transformers import Qwen2_5OmniThinkerConfig, Qwen2_5OmniThinkerForConditionalGeneration

    from avsearch.models.wave.checkpoint import legacy_name, quiet_transformers

    directory = Path(directory).expanduser()
    directory.mkdir(parents=True, exist_ok=True)
    vocab, special = build_tokenizer(directory)
    config = tiny_config(vocab_size=-(-vocab // 64) * 64, special=special)
    (directory / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    preprocessor = json.dumps(PREPROCESSOR, indent=2, sort_keys=True) + "\n"
    (directory / "preprocessor_config.json").write_text(preprocessor)
    # The processor reads its template from here (the tokenizer from tokenizer_config.json).
    (directory / "chat_template.json").write_text(json.dumps({"chat_template": CHAT_TEMPLATE}, indent=2) + "\n")

    with quiet_transformers():
        thinker_config = Qwen2_5OmniThinkerConfig.from_dict(config)
        with torch.device("meta"):  # shapes only: the values come from the seeded generator below
            thinker = Qwen2_5OmniThinkerForConditionalGeneration(thinker_config)
    shapes = {legacy_name(k): v.shape for k, v in thinker.state_dict().items()}  # WAVE's 4.x names
    wave_config = WaveConfig.from_dict(config)
    with torch.device("meta"):
        extras = WaveExtras(wave_config, BEATS_CFG)
    shapes.update({k: v.shape for k, v in extras.state_dict().items()})

    generator = torch.Generator().manual_seed(seed)
    tensors = {name: _random_tensor(name, shapes[name], generator).contiguous() for name in sorted(shapes)}
    save_file(tensors, str(directory / "model.safetensors"), metadata={"format": "pt"})
    _save_beats_file(directory / BEATS_FILE, tensors)
    return directory


def _save_beats_file(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    """The BEATs .pt that config.json's beats_path names, in the form of Microsoft's files: {'cfg',
    'model'} with the relative bias table once per layer (the original ties one table to every
    layer and its state dict lists each copy; the reference loads this file strictly). Same
    values as the checkpoint's beats.*, so loading it over them changes nothing."""
    state = {k.removeprefix("beats."): v for k, v in tensors.items() if k.startswith("beats.")}
    table = "encoder.layers.0.self_attn.relative_attention_bias.weight"
    for layer in range(1, BEATS_CFG.encoder_layers):
        state[table.replace("layers.0.", f"layers.{layer}.")] = state[table]
    # torch.save pickles: write to memory first so the file's bytes do not depend on its path.
    buffer = io.BytesIO()
    torch.save({"cfg": BEATS_CFG.to_dict(), "model": state}, buffer)
    path.write_bytes(buffer.getvalue())
