"""What a WAVE checkpoint's config.json says, and the run-time options of the embedder.

`WaveConfig` reads the raw config.json (no torch needed) so token ids, the head type, the audio
mode and the BEATs settings are known before any weight is loaded. `WaveOptions` holds the choices
the spec leaves open (spec §5 position mode, §4 pixel limits, the instruction placement).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Optional

from avsearch.errors import CheckpointError

AV_POSITION_MODES = ("sequential", "training")
INSTRUCTION_PLACEMENTS = ("replace", "append")
CLASSIFY_TYPES = ("all_layer", "last_layer")
AUDIO_MODES = ("interleave", "whisper_only", "beats_only")
_BEATS_OFF = {"", "no", "none", "false"}

# UNVERIFIED (spec §1): the usual cfg of BEATs iter3/iter3+ checkpoints. Used only when the
# checkpoint carries beats.* tensors but no cfg anywhere; a BEATs .pt always brings its own cfg.
BEATS_ITER3_PLUS_CFG: dict[str, Any] = {
    "input_patch_size": 16, "embed_dim": 512, "conv_bias": False,
    "encoder_layers": 12, "encoder_embed_dim": 768, "encoder_ffn_embed_dim": 3072,
    "encoder_attention_heads": 12, "activation_fn": "gelu",
    "layer_norm_first": False, "deep_norm": True,
    "conv_pos": 128, "conv_pos_groups": 16,
    "relative_position_embedding": True, "num_buckets": 320, "max_distance": 800, "gru_rel_pos": True,
    "finetuned_model": False,
}


@dataclass(frozen=True)
class TokenIds:
    """Special token ids, read from config.json and the tokenizer (never hard-coded: the tiny
    checkpoint's ids differ from the real 151643+ ids)."""

    audio: int
    image: int
    video: int
    audio_bos: int
    audio_eos: int
    vision_bos: int
    vision_eos: int
    im_end: int
    pad: int


@dataclass(frozen=True)
class WaveConfig:
    """The facts of a WAVE checkpoint that the embedder needs, from its config.json."""

    raw: dict = field(repr=False, compare=False)
    hidden_size: int
    num_layers: int
    classify_type: str
    audio_mode: str
    beats_path_hint: Optional[str]
    beats_config: Optional[dict]
    num_mel_bins: int
    position_id_per_seconds: int
    spatial_merge_size: int
    patch_size: int
    temporal_patch_size: int
    config_token_ids: dict = field(repr=False)
    av_position_mode: Optional[str]

    @property
    def head_input_dim(self) -> int:
        """all_layer: last token of every decoder layer, concatenated (spec §6); last_layer: one."""
        return self.hidden_size * (self.num_layers if self.classify_type == "all_layer" else 1)

    @property
    def uses_beats(self) -> bool:
        return self.audio_mode != "whisper_only"

    @property
    def audio_tokens_per_whisper_token(self) -> int:
        """2 with Whisper/BEATs interleaving (every <|AUDIO|> doubled, spec §2), else 1."""
        return 2 if self.audio_mode == "interleave" else 1

    @classmethod
    def from_dict(cls, raw: dict, where: str = "config.json") -> "WaveConfig":
        model_type = raw.get("model_type")
        if model_type != "qwen2_5_omni_thinker":
            raise CheckpointError(
                f"{where} has model_type {model_type!r}; a WAVE checkpoint is a Qwen2.5-Omni thinker "
                "(model_type 'qwen2_5_omni_thinker'). Point --model at a WAVE-7B directory or make "
                "one with `avsearch model make-tiny DIR`.")
        if raw.get("is_causal") is False:
            raise CheckpointError(f"{where} sets is_causal: false (bidirectional LLM), which avsearch "
                                  "does not support; WAVE-7B is causal (spec §7).")
        text = _section(raw, "text_config", where)
        audio = _section(raw, "audio_config", where)
        vision = _section(raw, "vision_config", where)
        classify_type = raw.get("classify_type", "all_layer")
        if classify_type not in CLASSIFY_TYPES:
            raise CheckpointError(f"{where}: classify_type {classify_type!r} is not one of {CLASSIFY_TYPES}")
        beats_hint = audio.get("beats_path")
        beats_off = beats_hint is None or str(beats_hint).strip().lower() in _BEATS_OFF
        if audio.get("beats_only"):
            if beats_off:
                raise CheckpointError(f"{where}: audio_config.beats_only is set but beats_path disables BEATs")
            audio_mode = "beats_only"
        else:
            audio_mode = "whisper_only" if beats_off else "interleave"
        ids = {
            "audio": raw.get("audio_token_index", raw.get("audio_token_id")),
            "image": raw.get("image_token_index", raw.get("image_token_id")),
            "video": raw.get("video_token_index", raw.get("video_token_id")),
            "audio_bos": raw.get("audio_start_token_id"),
            "audio_eos": raw.get("audio_end_token_id"),
            "vision_bos": raw.get("vision_start_token_id"),
            "vision_eos": raw.get("vision_end_token_id"),
        }
        try:
            return cls(
                raw=raw,
                hidden_size=int(text["hidden_size"]),
                num_layers=int(text["num_hidden_layers"]),
                classify_type=classify_type,
                audio_mode=audio_mode,
                beats_path_hint=None if beats_off else str(beats_hint),
                beats_config=raw.get("beats_config"),
                num_mel_bins=int(audio.get("num_mel_bins", 128)),
                position_id_per_seconds=int(raw.get("position_id_per_seconds", 25)),
                spatial_merge_size=int(vision.get("spatial_merge_size", 2)),
                patch_size=int(vision.get("patch_size", 14)),
                temporal_patch_size=int(vision.get("temporal_patch_size", 2)),
                config_token_ids={k: v for k, v in ids.items() if v is not None},
                av_position_mode=raw.get("av_position_mode"),
            )
        except KeyError as err:
            raise CheckpointError(f"{where} lacks text_config.{err.args[0]}") from None


def read_wave_config(directory: Path) -> WaveConfig:
    path = Path(directory) / "config.json"
    if not path.is_file():
        raise CheckpointError(f"{directory} has no config.json, so it is not a WAVE checkpoint directory. "
                              "Pass the directory of a WAVE-7B download, or make a tiny one with "
                              "`avsearch model make-tiny DIR`.")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise CheckpointError(f"cannot read {path}: {err}") from None
    return WaveConfig.from_dict(raw, where=str(path))


def _section(raw: dict, key: str, where: str) -> dict:
    value = raw.get(key)
    if not isinstance(value, dict):
        raise CheckpointError(f"{where} has no {key} section; is this a Qwen2.5-Omni thinker config?")
    return value


@dataclass(frozen=True)
class WaveOptions:
    """Run-time choices. Fields marked (*) change the vectors and so enter the model id.

    av_position_mode (*): "sequential" = the released inference path (positions 0..L-1 over the
        whole audio+video sequence, spec §5, default) or "training" = WAVE's training-mode TMRoPE.
        Default comes from config.json's `av_position_mode` key, else "sequential".
    max_frames (*), min_pixels (*), max_pixels (*): spec §4 frame cap and smart_resize limits.
    instruction_placement (*): "replace" = the instruction takes the place of "Please describe
        the video." (as ret_mc.json's question does), "append" = it follows that sentence.
    audio_prompt (*), video_prompt (*): the sentence after the media (spec §3: the released
        scripts use these two; the prompts of the audio benchmarks are UNVERIFIED).
    audio_mode (*): "interleave" | "whisper_only" | "beats_only"; None = from config.json
        (audio_config.beats_path / beats_only), see `resolve_audio_mode`.
    max_batch_tokens: padded tokens per LLM forward; None = a per-device default.
    dtype: "float32" | "bfloat16" | "float16"; None = bfloat16 on CUDA, float32 elsewhere.
    attn_implementation: passed to transformers; None = "sdpa".
    """

    av_position_mode: Optional[str] = None
    max_frames: int = 128
    min_pixels: int = 784
    max_pixels: int = 176_400
    instruction_placement: str = "replace"
    audio_prompt: str = "Please describe the audio."
    video_prompt: str = "Please describe the video."
    audio_mode: Optional[str] = None
    max_batch_tokens: Optional[int] = None
    dtype: Optional[str] = None
    attn_implementation: Optional[str] = None

    IDENTITY_FIELDS = ("av_position_mode", "max_frames", "min_pixels", "max_pixels", "instruction_placement",
                       "audio_prompt", "video_prompt", "audio_mode")

    def __post_init__(self) -> None:
        if self.av_position_mode is not None and self.av_position_mode not in AV_POSITION_MODES:
            raise ValueError(f"av_position_mode {self.av_position_mode!r}: choose one of {AV_POSITION_MODES}")
        if self.instruction_placement not in INSTRUCTION_PLACEMENTS:
            raise ValueError(f"instruction_placement {self.instruction_placement!r}: choose one of "
                             f"{INSTRUCTION_PLACEMENTS}")
        if self.max_frames < 1 or self.min_pixels < 1 or self.max_pixels < self.min_pixels:
            raise ValueError("need max_frames >= 1 and 1 <= min_pixels <= max_pixels")
        if self.audio_mode is not None and self.audio_mode not in AUDIO_MODES:
            raise ValueError(f"audio_mode {self.audio_mode!r}: choose one of {AUDIO_MODES}")
        if self.dtype not in (None, "float32", "bfloat16", "float16"):
            raise ValueError(f"dtype {self.dtype!r}: choose float32, bfloat16 or float16")

    def resolved(self, config: WaveConfig) -> "WaveOptions":
        """Fill the defaults that come from the checkpoint's config.json."""
        mode = self.av_position_mode or config.av_position_mode or "sequential"
        if mode not in AV_POSITION_MODES:
            raise CheckpointError(f"config.json av_position_mode {mode!r}: choose one of {AV_POSITION_MODES}")
        return replace(self, av_position_mode=mode)

    def identity(self, config_audio_mode: Optional[str] = None) -> dict:
        """The fields that change vectors and differ from the defaults (for the model id)."""
        defaults = {f.name: f.default for f in fields(WaveOptions)}
        defaults["av_position_mode"] = "sequential"
        defaults["audio_mode"] = config_audio_mode
        values = asdict(self)
        return {k: values[k] for k in self.IDENTITY_FIELDS if values[k] != defaults[k]}


def resolve_audio_mode(config: WaveConfig, options: WaveOptions, *, checkpoint_has_beats_head: bool,
                       beats_file_given: bool) -> str:
    """The audio mode to run: the option if set, else config.json's, except that a config saying
    beats_path "No" is overridden to "interleave" when the checkpoint carries the BEATs projection
    (beats_ln/beats_proj) or a BEATs file is given. The reference test script sets beats_path on
    the command line (T:263-270), so a stored "No" need not mean the model was trained without
    BEATs (spec §7, UNVERIFIED)."""
    if options.audio_mode is not None:
        return options.audio_mode
    if config.audio_mode == "whisper_only" and (checkpoint_has_beats_head or beats_file_given):
        return "interleave"
    return config.audio_mode
