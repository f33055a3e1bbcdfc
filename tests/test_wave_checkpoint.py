"""Making, finding and loading WAVE checkpoints: layout, errors, identity, registry names."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from avsearch.errors import CheckpointError, DeviceError, ModelNotFoundError
from avsearch.models.wave import load_wave_embedder, make_tiny_checkpoint
from avsearch.types import View
from wave_fixtures import copy_checkpoint, make_clip, tiny_checkpoint, tiny_embedder


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _vectors(embedder):
    clip = make_clip(2.0, seed=11)
    return np.concatenate([embedder.embed_clips([clip], View.AV), embedder.embed_clips([clip], View.AUDIO),
                           embedder.embed_texts(["a dog"])])


def _rewrite_weights(directory, change):
    path = directory / "model.safetensors"
    tensors = load_file(str(path))
    change(tensors)
    save_file(tensors, str(path), metadata={"format": "pt"})


def test_tiny_checkpoint_has_the_wave_layout():
    directory = tiny_checkpoint()
    names = {p.name for p in directory.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
            "preprocessor_config.json"} <= names
    config = json.loads((directory / "config.json").read_text())
    assert config["model_type"] == "qwen2_5_omni_thinker"
    assert config["train_classify"] is True and config["classify_type"] == "all_layer"
    assert config["audio_config"]["beats_only"] is False and config["audio_config"]["beats_path"]
    assert config["av_position_mode"] == "sequential" and "sim_temperature" in config
    keys = load_file(str(directory / "model.safetensors")).keys()
    for prefix in ("audio_tower.", "visual.", "model.layers.", "model.embed_tokens.", "beats.", "beats_ln.",
                   "beats_proj.0.", "beats_proj.2.", "classify_linear.0.", "classify_linear.2."):
        assert any(k.startswith(prefix) for k in keys), prefix
    assert "lm_head.weight" in keys and not any(k.startswith(("thinker.", "model.language_model.")) for k in keys)


def test_tiny_checkpoint_has_what_the_reference_code_reads():
    """What the WAVE authors' loading code (qwenvl/train/train_qwen.py) needs of a checkpoint
    directory; benchmarks/wave_reference_load.py runs that code itself on one (another
    environment: transformers 4.51)."""
    from jinja2 import Template

    from avsearch.models.wave.tiny import BEATS_CFG

    directory = tiny_checkpoint()
    tokenizer_config = json.loads((directory / "tokenizer_config.json").read_text())
    named = tokenizer_config["extra_special_tokens"]  # the processor reads tokenizer.audio_token, ...
    assert set(named) == {"audio_token", "audio_bos_token", "audio_eos_token", "image_token", "video_token",
                          "vision_bos_token", "vision_eos_token"}
    vocab = json.loads((directory / "tokenizer.json").read_text())["added_tokens"]
    assert set(named.values()) <= {t["content"] for t in vocab if t["special"]}
    # a chat template for the processor (chat_template.json) and the tokenizer, rendering the
    # spec's audio row once the reference cuts at the last user header
    template = json.loads((directory / "chat_template.json").read_text())["chat_template"]
    assert template == tokenizer_config["chat_template"]
    text = Template(template).render(messages=[{"role": "user", "content": [
        {"type": "audio", "audio": "x.wav"}, {"type": "text", "text": "Please describe the audio."}]}],
        add_generation_prompt=False)
    assert text.split("<|im_start|>user\n")[-1].strip() == (
        "<|audio_bos|><|AUDIO|><|audio_eos|>Please describe the audio.<|im_end|>")
    preprocessor = json.loads((directory / "preprocessor_config.json").read_text())
    assert preprocessor["feature_extractor_type"] == "WhisperFeatureExtractor"
    assert preprocessor["image_processor_type"] == "Qwen2VLImageProcessor"
    assert (preprocessor["min_pixels"], preprocessor["max_pixels"]) == (784, 176400)  # spec §4
    # the BEATs file config.json names, in Microsoft's form: cfg + the state with the relative
    # bias table once per layer (the reference's strict load needs every copy)
    config = json.loads((directory / "config.json").read_text())
    beats = torch.load(directory / config["audio_config"]["beats_path"], weights_only=True)
    assert beats["cfg"] == BEATS_CFG.to_dict()
    weights = load_file(str(directory / "model.safetensors"))
    tables = [f"encoder.layers.{i}.self_attn.relative_attention_bias.weight" for i in range(BEATS_CFG.encoder_layers)]
    assert all(torch.equal(beats["model"][t], beats["model"][tables[0]]) for t in tables)
    from_checkpoint = {k[len("beats."):]: v for k, v in weights.items() if k.startswith("beats.")}
    assert set(beats["model"]) == set(from_checkpoint) | set(tables)
    assert all(torch.equal(beats["model"][k], v) for k, v in from_checkpoint.items())


def test_tiny_tokenizer_loads_with_autotokenizer_and_adds_no_bos_or_eos():
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_checkpoint()))
    config = json.loads((tiny_checkpoint() / "config.json").read_text())
    assert tok.convert_tokens_to_ids("<|AUDIO|>") == config["audio_token_index"]
    assert tok.convert_tokens_to_ids("<|VIDEO|>") == config["video_token_index"] != 151656
    ids = tok("a dog<|im_end|>")["input_ids"]
    assert ids[-1] == tok.convert_tokens_to_ids("<|im_end|>") and len(ids) == len(tok("a dog")["input_ids"]) + 1


def test_same_seed_same_bytes_other_seed_other_weights(tmp_path):
    a = make_tiny_checkpoint(tmp_path / "a", seed=0)
    b = make_tiny_checkpoint(tmp_path / "b", seed=0)
    c = make_tiny_checkpoint(tmp_path / "c", seed=1)
    for name in ("model.safetensors", "config.json", "tokenizer.json"):
        assert _digest(a / name) == _digest(b / name)
    assert _digest(a / "model.safetensors") != _digest(c / "model.safetensors")


def test_save_and_load_round_trip_gives_identical_vectors_and_id(tmp_path):
    first = tiny_embedder()
    moved = load_wave_embedder(str(copy_checkpoint(tmp_path / "elsewhere")), device="cpu")
    np.testing.assert_array_equal(_vectors(moved), _vectors(first))
    assert moved.model_id == first.model_id  # identity of the weights, not of the directory
    assert moved.source == str((tmp_path / "elsewhere").resolve())
    assert tiny_embedder(seed=1).model_id != first.model_id


def test_tiny_seed_0_always_has_the_same_model_id(tmp_path):
    fresh = load_wave_embedder(str(make_tiny_checkpoint(tmp_path / "x")), device="cpu")
    assert fresh.model_id == tiny_embedder().model_id


def test_a_missing_thinker_weight_is_named(tmp_path):
    directory = copy_checkpoint(tmp_path / "ckpt")
    _rewrite_weights(directory, lambda t: t.pop("model.layers.1.mlp.up_proj.weight"))
    with pytest.raises(CheckpointError, match=r"model\.layers\.1\.mlp\.up_proj\.weight"):
        load_wave_embedder(str(directory), device="cpu")


def test_missing_head_weights_are_named(tmp_path):
    directory = copy_checkpoint(tmp_path / "ckpt")
    _rewrite_weights(directory, lambda t: t.pop("classify_linear.0.weight"))
    with pytest.raises(CheckpointError, match=r"classify_linear\.0\.weight.*plain Qwen2\.5-Omni"):
        load_wave_embedder(str(directory), device="cpu")


def test_missing_beats_weights_say_how_to_supply_them(tmp_path, monkeypatch):
    monkeypatch.delenv("AVSEARCH_BEATS", raising=False)
    directory = copy_checkpoint(tmp_path / "ckpt")
    _rewrite_weights(directory, lambda t: [t.pop(k) for k in list(t) if k.startswith("beats.")])
    (directory / "BEATs_iter3_plus.pt").unlink()  # and no BEATs file beside it either
    with pytest.raises(CheckpointError, match=r"beats\..*AVSEARCH_BEATS"):
        load_wave_embedder(str(directory), device="cpu")


def test_a_beats_file_is_loaded_over_the_checkpoint(tmp_path, monkeypatch):
    monkeypatch.delenv("AVSEARCH_BEATS", raising=False)
    directory = copy_checkpoint(tmp_path / "ckpt")
    config = json.loads((directory / "config.json").read_text())
    weights = load_file(str(directory / "model.safetensors"))
    beats = {k[len("beats."):]: v for k, v in weights.items() if k.startswith("beats.")}
    same, changed = tmp_path / "same.pt", tmp_path / "changed.pt"
    torch.save({"cfg": config["beats_config"], "model": beats}, same)
    torch.save({"cfg": config["beats_config"], "model": {k: v * 1.5 for k, v in beats.items()}}, changed)
    _rewrite_weights(directory, lambda t: [t.pop(k) for k in list(t) if k.startswith("beats.")])
    reference = _vectors(tiny_embedder())
    # rewritten files land at other memory alignments, so allow float32 kernel noise
    np.testing.assert_allclose(_vectors(load_wave_embedder(str(directory), device="cpu", beats_path=str(same))),
                               reference, atol=1e-6)
    monkeypatch.setenv("AVSEARCH_BEATS", str(changed))
    other = load_wave_embedder(str(directory), device="cpu")
    assert np.abs(_vectors(other)[1] - reference[1]).max() > 1e-4  # the audio view changed
    np.testing.assert_allclose(_vectors(other)[2], reference[2], atol=1e-6)  # text has no audio
    monkeypatch.delenv("AVSEARCH_BEATS")
    (directory / "BEATs_iter3_plus.pt").write_bytes(same.read_bytes())  # the name config.json gives
    np.testing.assert_allclose(_vectors(load_wave_embedder(str(directory), device="cpu")), reference, atol=1e-6)


def test_a_beats_file_that_is_not_plain_tensors_is_refused(tmp_path):
    bad = tmp_path / "evil.pt"
    torch.save({"cfg": {}, "model": {}, "payload": _NotATensor()}, bad)
    with pytest.raises(CheckpointError, match="weights_only"):
        load_wave_embedder(str(tiny_checkpoint()), device="cpu", beats_path=str(bad))


class _NotATensor:
    pass


def test_bin_shards_with_a_thinker_prefix_load_the_same_model(tmp_path):
    directory = copy_checkpoint(tmp_path / "ckpt")
    tensors = load_file(str(directory / "model.safetensors"))
    (directory / "model.safetensors").unlink()
    torch.save({f"thinker.{k}": v for k, v in tensors.items()}, directory / "pytorch_model.bin")
    np.testing.assert_allclose(_vectors(load_wave_embedder(str(directory), device="cpu")), _vectors(tiny_embedder()),
                               atol=1e-6)


def test_a_4x_mrope_rope_scaling_config_loads(tmp_path):
    directory = copy_checkpoint(tmp_path / "ckpt")
    config = json.loads((directory / "config.json").read_text())
    config["text_config"]["rope_scaling"] = {"type": "mrope", "mrope_section": [2, 3, 3]}
    (directory / "config.json").write_text(json.dumps(config))
    np.testing.assert_allclose(_vectors(load_wave_embedder(str(directory), device="cpu")), _vectors(tiny_embedder()),
                               atol=1e-6)


def test_a_directory_without_config_is_not_a_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="config.json"):
        load_wave_embedder(str(tmp_path), device="cpu")


def test_a_missing_local_path_is_model_not_found(tmp_path):
    with pytest.raises(ModelNotFoundError, match="--model PATH"):
        load_wave_embedder(str(tmp_path / "nope" / "ckpt"), device="cpu")


def test_a_hub_id_offline_is_model_not_found_with_the_fixes(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.chdir(tmp_path)  # no local directory named like the hub id
    with pytest.raises(ModelNotFoundError) as err:
        load_wave_embedder("tsinghua-ee/WAVE-7B", device="cpu")
    message = str(err.value)
    assert "hub could not be reached" in message and "--model PATH" in message
    assert "avsearch model make-tiny DIR" in message


def test_cuda_without_cuda_is_a_device_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DeviceError, match="--device cpu"):
        load_wave_embedder(str(tiny_checkpoint()), device="cuda")


def test_registry_tiny_is_made_once_in_the_cache_and_loaded_the_same_way(tmp_path, monkeypatch):
    from avsearch.models import load_embedder, registered
    from avsearch.models.wave.builtins import ensure_tiny_checkpoint

    monkeypatch.setenv("AVSEARCH_CACHE", str(tmp_path))
    assert {"tiny", "wave"} <= set(registered())
    embedder = load_embedder("tiny", device="cpu")
    assert embedder.source == "tiny" and embedder.model_id == tiny_embedder().model_id
    path = tmp_path / "tiny-wave-seed0"
    assert (path / "config.json").is_file()
    stamp = (path / "model.safetensors").stat().st_mtime_ns
    assert ensure_tiny_checkpoint() == path and (path / "model.safetensors").stat().st_mtime_ns == stamp
    assert [p.name for p in tmp_path.iterdir()] == ["tiny-wave-seed0"]  # no temporary leftovers


def test_config_beats_path_no_is_overridden_when_the_checkpoint_has_the_beats_projection(tmp_path):
    directory = copy_checkpoint(tmp_path / "ckpt")
    config = json.loads((directory / "config.json").read_text())
    config["audio_config"]["beats_path"] = "No"
    (directory / "config.json").write_text(json.dumps(config))
    embedder = load_wave_embedder(str(directory), device="cpu")
    assert embedder.config.audio_mode == "interleave"
    np.testing.assert_allclose(_vectors(embedder), _vectors(tiny_embedder()), atol=1e-6)


def test_whisper_only_mode_uses_one_placeholder_per_whisper_token(tmp_path):
    from avsearch.models.wave import WaveOptions

    embedder = load_wave_embedder(str(tiny_checkpoint()), device="cpu", options=WaveOptions(audio_mode="whisper_only"))
    clip = make_clip(10.0, video=False)
    assert embedder.token_cost(clip, View.AUDIO) == tiny_embedder().token_cost(clip, View.AUDIO) - 250
    vector = embedder.embed_clips([clip], View.AUDIO)
    assert vector.shape == (1, 64) and embedder.model.extras.beats is None
    assert embedder.model_id != tiny_embedder().model_id


def test_prompt_options_change_vectors_and_the_model_id():
    from avsearch.models.wave import WaveOptions

    custom = load_wave_embedder(str(tiny_checkpoint()), device="cpu",
                                options=WaveOptions(audio_prompt="Describe the sound in detail."))
    clip = make_clip(2.0, video=False)
    assert np.abs(custom.embed_clips([clip], View.AUDIO) - tiny_embedder().embed_clips([clip], View.AUDIO)).max() > 1e-3
    assert custom.model_id != tiny_embedder().model_id
    with pytest.raises(ValueError, match="choose one of"):
        WaveOptions(av_position_mode="upstream")


def _as_last_layer(directory, head_in):
    config = json.loads((directory / "config.json").read_text())
    config["classify_type"] = "last_layer"
    (directory / "config.json").write_text(json.dumps(config))
    _rewrite_weights(directory, lambda t: t.update({"classify_linear.0.weight": torch.randn(64, head_in) / 8}))


def test_last_layer_head_reads_only_the_final_state(tmp_path):
    directory = copy_checkpoint(tmp_path / "ckpt")
    _as_last_layer(directory, head_in=64)
    embedder = load_wave_embedder(str(directory), device="cpu")
    assert embedder.model.extras.classify_linear[0].in_features == 64
    out = embedder.embed_clips([make_clip(2.0)], View.AV)
    assert out.shape == (1, 64) and np.linalg.norm(out) == pytest.approx(1.0, abs=1e-5)


def test_a_head_of_the_wrong_shape_is_named(tmp_path):
    directory = copy_checkpoint(tmp_path / "ckpt")
    _as_last_layer(directory, head_in=192)  # an all_layer head under a last_layer config
    with pytest.raises(CheckpointError, match=r"classify_linear\.0\.weight \(64, 192\) \(expected \(64, 64\)\)"):
        load_wave_embedder(str(directory), device="cpu")
