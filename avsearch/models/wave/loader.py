"""`load_wave_embedder`: a model spec in, a ready WaveEmbedder out.

Steps: resolve the spec to a directory (local, or a Hugging Face snapshot), read config.json,
pick device and dtypes, load the upstream thinker, read the WAVE extras from the shards (and a
BEATs .pt over them), load the tokenizer, check the special token ids, fingerprint the weights.
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from pathlib import Path
from typing import Optional

import torch

from avsearch.errors import CheckpointError, DeviceError
from avsearch.models.wave import checkpoint as ckpt
from avsearch.models.wave.config import TokenIds, WaveConfig, WaveOptions, read_wave_config, resolve_audio_mode
from avsearch.models.wave.embedder import WaveEmbedder
from avsearch.models.wave.extras import WaveExtras
from avsearch.models.wave.identity import model_id as fingerprint
from avsearch.models.wave.model import WaveModel
from avsearch.models.wave.prompts import SPECIAL_TOKENS

log = logging.getLogger(__name__)

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_device(device: Optional[str]) -> torch.device:
    """None: CUDA when present, else CPU. An explicit CUDA request without CUDA is a DeviceError."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise DeviceError(f"unknown device {device!r} ({err}); use 'cpu', 'cuda' or 'cuda:N'") from None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"device {device!r} was requested but this torch build sees no CUDA GPU "
                              f"(torch {torch.__version__}). Use --device cpu, or install a CUDA build of torch "
                              "on a machine with an NVIDIA driver.")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise DeviceError(f"device {device!r} does not exist: {torch.cuda.device_count()} CUDA device(s)")
    return resolved


def dtypes_for(device: torch.device, requested: Optional[str]) -> tuple[torch.dtype, torch.dtype]:
    """(model dtype, BEATs dtype).

    CUDA: bf16 model, BEATs fp16 under autocast, as the reference runs them (spec §1).
    CPU: float32 for both. CPU kernels for fp16/bf16 matmuls are slow or missing, and reduced
    precision on CPU would not reproduce the reference's GPU rounding anyway; fp32 is the closest
    we can get to the real numbers there.
    """
    if requested is not None:
        dtype = _DTYPES[requested]
        return dtype, (torch.float16 if device.type == "cuda" and dtype != torch.float32 else torch.float32)
    if device.type == "cuda":
        return torch.bfloat16, torch.float16
    return torch.float32, torch.float32


def token_ids_of(tokenizer, config: WaveConfig) -> TokenIds:
    """Special ids from config.json, checked against the tokenizer; <|im_end|> and the pad from the tokenizer."""
    ids = {}
    for name, token in SPECIAL_TOKENS.items():
        from_tokenizer = tokenizer.convert_tokens_to_ids(token)
        if from_tokenizer == tokenizer.unk_token_id and token != tokenizer.unk_token:
            from_tokenizer = None  # an unknown token maps to <unk>, not to itself
        from_config = config.config_token_ids.get(name)
        if from_config is not None and from_tokenizer is not None and from_config != from_tokenizer:
            raise CheckpointError(f"config.json says {token} is id {from_config} but the tokenizer says "
                                  f"{from_tokenizer}; the tokenizer files do not belong to this checkpoint")
        value = from_config if from_config is not None else from_tokenizer
        if value is None:
            raise CheckpointError(f"neither config.json nor the tokenizer defines the special token {token}")
        ids[name] = int(value)
    return TokenIds(**ids)


def load_tokenizer(directory: Path):
    from transformers import AutoTokenizer

    try:
        with ckpt.quiet_transformers():
            return AutoTokenizer.from_pretrained(str(directory))
    except (OSError, ValueError, TypeError) as err:
        raise CheckpointError(f"cannot load the tokenizer from {directory} ({err}); a WAVE checkpoint carries "
                              "tokenizer.json (or vocab.json + merges.txt) and tokenizer_config.json") from None


def load_wave_embedder(spec: Optional[str] = None, device: Optional[str] = None, beats_path: Optional[str] = None,
                       *, options: Optional[WaveOptions] = None, source: Optional[str] = None) -> WaveEmbedder:
    """Load WAVE from a hub id (default tsinghua-ee/WAVE-7B) or a local directory in the same layout.

    beats_path (or $AVSEARCH_BEATS): a BEATs .pt ({'cfg', 'model'}) loaded over the checkpoint's
    BEATs weights. options: see WaveOptions. source: what to record as the way to load this model
    again (default: the hub id or the absolute directory).
    """
    directory, resolved_source = ckpt.resolve_checkpoint(spec)
    config = read_wave_config(directory)
    options = (options or WaveOptions()).resolved(config)
    torch_device = resolve_device(device)
    dtype, beats_dtype = dtypes_for(torch_device, options.dtype)

    files = ckpt.weight_files(directory)
    extra = ckpt.read_extra_tensors(files)
    audio_mode = resolve_audio_mode(config, options,
                                    checkpoint_has_beats_head=any(k.startswith("beats_proj.") for k in extra),
                                    beats_file_given=bool(beats_path or os.environ.get(ckpt.BEATS_ENV)))
    if audio_mode != config.audio_mode:
        log.warning("running audio mode %s although config.json implies %s", audio_mode, config.audio_mode)
    config_audio_mode, config = config.audio_mode, replace(config, audio_mode=audio_mode)
    beats_cfg, beats_state, beats_file = ckpt.beats_from(directory, config, beats_path, extra)
    state = {k: v for k, v in extra.items() if not k.startswith("beats")}  # beats, beats_ln, beats_proj
    if config.uses_beats:
        state.update({k: v for k, v in extra.items() if k.startswith(("beats_ln.", "beats_proj."))})
        state.update(beats_state)
    with torch.device("meta"):  # no random init of the 360M-parameter head: the weights are assigned
        extras = WaveExtras(config, beats_cfg)
    ckpt.load_extras_state(extras, state, directory, config, beats_file)
    del extra, state, beats_state
    extras.to(torch_device, dtype)
    if extras.beats is not None:
        extras.beats.to(beats_dtype)
    extras.eval()

    thinker = ckpt.load_thinker(directory, dtype=dtype, device=torch_device,
                                attn_implementation=options.attn_implementation)
    tokenizer = load_tokenizer(directory)
    token_ids = token_ids_of(tokenizer, config)
    ident = fingerprint(directory, files, beats_file=beats_file, options=options.identity(config_audio_mode))
    model = WaveModel(thinker, extras, config, torch_device, dtype, beats_dtype)
    log.info("loaded WAVE %s from %s on %s (%s)", ident, directory, torch_device, dtype)
    return WaveEmbedder(model, tokenizer, config, token_ids, options, model_id=ident,
                        source=source or resolved_source, directory=str(directory))
