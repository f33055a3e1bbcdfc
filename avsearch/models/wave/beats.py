"""Microsoft BEATs audio encoder (feature extraction only), written from the published architecture.

Spec §1: the checkpoint's `cfg` dict configures it. The pipeline per waveform is
Kaldi fbank (128 bins) -> 16x16 patch conv -> LayerNorm -> optional post_extract_proj ->
conv positional embedding -> transformer encoder. The encoder layers are post-LN with deep_norm
residual scaling (or pre-LN when layer_norm_first), with a bucketed relative position bias computed
once by layer 0 and reused by every layer, gated per query (gru_rel_pos) when configured.

Parameter names match the unilm `BEATs` state dict (e.g. `encoder.pos_conv.0.weight_g`), so a
BEATs .pt's 'model' dict loads directly. Inference only: no dropout, no layer drop, no predictor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from avsearch.models.wave.fbank import beats_fbank


@dataclass(frozen=True)
class BEATsConfig:
    input_patch_size: int = 16
    embed_dim: int = 512
    conv_bias: bool = False
    encoder_layers: int = 12
    encoder_embed_dim: int = 768
    encoder_ffn_embed_dim: int = 3072
    encoder_attention_heads: int = 12
    activation_fn: str = "gelu"
    layer_norm_first: bool = False
    deep_norm: bool = False
    conv_pos: int = 128
    conv_pos_groups: int = 16
    relative_position_embedding: bool = False
    num_buckets: int = 320
    max_distance: int = 1280
    gru_rel_pos: bool = False

    @classmethod
    def from_dict(cls, cfg: dict) -> "BEATsConfig":
        """Keep the keys this module uses; training-only keys (dropouts, predictor...) are ignored."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in cfg.items() if k in known})

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @property
    def out_dim(self) -> int:
        return self.encoder_embed_dim


def beats_patch_count(n_fbank_frames: int, patch: int = 16, mel_bins: int = 128) -> int:
    """Patches of an (F x 128) fbank: (F // 16) time slabs x (128 // 16) frequency patches."""
    return (n_fbank_frames // patch) * (mel_bins // patch)


def _activation(name: str):
    if name == "gelu":
        # fairseq's gelu: exact erf, computed in float32 even for fp16 inputs
        return lambda x: F.gelu(x.float()).type_as(x)
    if name == "relu":
        return F.relu
    raise ValueError(f"unsupported BEATs activation_fn {name!r} (gelu or relu)")


class WeightNormConv1d(nn.Module):
    """Conv1d with the weight normalised over every dim but the kernel position (torch weight_norm
    with dim=2), stored as weight_g (1, 1, K) and weight_v like the original checkpoints."""

    def __init__(self, channels: int, kernel_size: int, groups: int) -> None:
        super().__init__()
        self.padding = kernel_size // 2
        self.groups = groups
        self.weight_g = nn.Parameter(torch.ones(1, 1, kernel_size))
        self.weight_v = nn.Parameter(torch.empty(channels, channels // groups, kernel_size))
        self.bias = nn.Parameter(torch.zeros(channels))
        nn.init.normal_(self.weight_v, std=math.sqrt(4.0 / (kernel_size * channels)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        norm = self.weight_v.norm(dim=(0, 1), keepdim=True)
        weight = self.weight_v * (self.weight_g / norm)
        return F.conv1d(x, weight, self.bias, padding=self.padding, groups=self.groups)


class SamePad(nn.Module):
    """Drop the extra trailing frame that an even kernel with padding k//2 produces."""

    def __init__(self, kernel_size: int) -> None:
        super().__init__()
        self.remove = 1 if kernel_size % 2 == 0 else 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, :-self.remove] if self.remove else x


def relative_position_buckets(length: int, num_buckets: int, max_distance: int,
                              device: Optional[torch.device] = None) -> torch.Tensor:
    """(L, L) bucket of key-minus-query offsets: bidirectional, exact below num_buckets/4, log-spaced above."""
    position = torch.arange(length, dtype=torch.long, device=device)
    relative = position[None, :] - position[:, None]
    half = num_buckets // 2
    buckets = (relative > 0).long() * half
    distance = relative.abs()
    max_exact = half // 2
    far = max_exact + (
        torch.log(distance.clamp(min=1).float() / max_exact) / math.log(max_distance / max_exact)
        * (half - max_exact)
    ).long()
    far = far.clamp(max=half - 1)
    return buckets + torch.where(distance < max_exact, distance, far)


class BEATsAttention(nn.Module):
    # BEATs scales q by 1/alpha and multiplies the max-shifted scores back by alpha; softmax is
    # shift-invariant, so this is plain scaled dot-product attention, kept for fp16 headroom.
    ALPHA = 32.0

    def __init__(self, cfg: BEATsConfig, has_relative_bias: bool) -> None:
        super().__init__()
        dim, heads = cfg.encoder_embed_dim, cfg.encoder_attention_heads
        if dim % heads:
            raise ValueError(f"BEATs encoder_embed_dim {dim} is not divisible by {heads} heads")
        self.heads, self.head_dim = heads, dim // heads
        self.scaling = self.head_dim ** -0.5
        self.num_buckets, self.max_distance = cfg.num_buckets, cfg.max_distance
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)
        if has_relative_bias:
            self.relative_attention_bias = nn.Embedding(cfg.num_buckets, heads)
        self.gru_rel_pos = cfg.gru_rel_pos
        if self.gru_rel_pos:
            self.grep_linear = nn.Linear(self.head_dim, 8)
            self.grep_a = nn.Parameter(torch.ones(1, heads, 1, 1))

    def compute_bias(self, length: int) -> torch.Tensor:
        """(1, heads, L, L) relative position bias (only layer 0 owns the table)."""
        buckets = relative_position_buckets(length, self.num_buckets, self.max_distance,
                                            self.relative_attention_bias.weight.device)
        return self.relative_attention_bias(buckets).permute(2, 0, 1).unsqueeze(0)

    def forward(self, x: torch.Tensor, position_bias: Optional[torch.Tensor]):
        batch, length, dim = x.shape
        split = lambda t: t.view(batch, length, self.heads, self.head_dim).transpose(1, 2)  # noqa: E731
        q_raw = split(self.q_proj(x))
        k, v = split(self.k_proj(x)), split(self.v_proj(x))
        q = q_raw * (self.scaling / self.ALPHA)
        scores = q @ k.transpose(-1, -2)
        scores = (scores - scores.amax(dim=-1, keepdim=True)) * self.ALPHA
        if position_bias is None and hasattr(self, "relative_attention_bias"):
            position_bias = self.compute_bias(length)
        if position_bias is not None:
            bias = position_bias
            if self.gru_rel_pos:
                gates = torch.sigmoid(self.grep_linear(q_raw).view(batch, self.heads, length, 2, 4).sum(-1))
                gate_a, gate_b = gates.chunk(2, dim=-1)
                bias = (gate_a * (gate_b * self.grep_a - 1.0) + 2.0) * position_bias
            scores = scores + bias
        probs = torch.softmax(scores.float(), dim=-1).type_as(scores)
        out = (probs @ v).transpose(1, 2).reshape(batch, length, dim)
        return self.out_proj(out), position_bias


class BEATsLayer(nn.Module):
    def __init__(self, cfg: BEATsConfig, has_relative_bias: bool) -> None:
        super().__init__()
        dim = cfg.encoder_embed_dim
        self.self_attn = BEATsAttention(cfg, has_relative_bias)
        self.self_attn_layer_norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, cfg.encoder_ffn_embed_dim)
        self.fc2 = nn.Linear(cfg.encoder_ffn_embed_dim, dim)
        self.final_layer_norm = nn.LayerNorm(dim)
        self.activation = _activation(cfg.activation_fn)
        self.layer_norm_first = cfg.layer_norm_first
        # deep_norm: residual branch scaled by (2 * layers)^(1/4) in post-LN layers
        self.residual_scale = math.pow(2 * cfg.encoder_layers, 0.25) if cfg.deep_norm else 1.0

    def forward(self, x: torch.Tensor, position_bias: Optional[torch.Tensor]):
        if self.layer_norm_first:
            attn, position_bias = self.self_attn(self.self_attn_layer_norm(x), position_bias)
            x = x + attn
            x = x + self.fc2(self.activation(self.fc1(self.final_layer_norm(x))))
            return x, position_bias
        attn, position_bias = self.self_attn(x, position_bias)
        x = self.self_attn_layer_norm(x * self.residual_scale + attn)
        x = self.final_layer_norm(x * self.residual_scale + self.fc2(self.activation(self.fc1(x))))
        return x, position_bias


class BEATsEncoder(nn.Module):
    def __init__(self, cfg: BEATsConfig) -> None:
        super().__init__()
        dim = cfg.encoder_embed_dim
        self.pos_conv = nn.Sequential(WeightNormConv1d(dim, cfg.conv_pos, cfg.conv_pos_groups),
                                      SamePad(cfg.conv_pos), nn.GELU())
        self.layers = nn.ModuleList(
            BEATsLayer(cfg, has_relative_bias=cfg.relative_position_embedding and i == 0)
            for i in range(cfg.encoder_layers))
        self.layer_norm = nn.LayerNorm(dim)
        self.layer_norm_first = cfg.layer_norm_first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.pos_conv(x.transpose(1, 2)).transpose(1, 2)
        if not self.layer_norm_first:
            x = self.layer_norm(x)
        position_bias = None
        for layer in self.layers:
            x, position_bias = layer(x, position_bias)
        if self.layer_norm_first:
            x = self.layer_norm(x)
        return x


class BEATs(nn.Module):
    """BEATs feature extractor: waveform (16 kHz, [-1, 1]) -> (patches, encoder_embed_dim)."""

    def __init__(self, cfg: BEATsConfig) -> None:
        super().__init__()
        if cfg.layer_norm_first and cfg.deep_norm:
            raise ValueError("BEATs cfg: deep_norm and layer_norm_first cannot both be set")
        self.cfg = cfg
        self.patch_embedding = nn.Conv2d(1, cfg.embed_dim, kernel_size=cfg.input_patch_size,
                                         stride=cfg.input_patch_size, bias=cfg.conv_bias)
        self.layer_norm = nn.LayerNorm(cfg.embed_dim)
        self.post_extract_proj = (nn.Linear(cfg.embed_dim, cfg.encoder_embed_dim)
                                  if cfg.embed_dim != cfg.encoder_embed_dim else None)
        self.encoder = BEATsEncoder(cfg)

    def forward_fbank(self, fbank: torch.Tensor) -> torch.Tensor:
        """(B, frames, 128) normalised fbank -> (B, patches, dim); patches are time-major
        (all frequency patches of one 160 ms slab, then the next slab)."""
        x = self.patch_embedding(fbank.unsqueeze(1).to(self.patch_embedding.weight.dtype))
        x = x.flatten(2).transpose(1, 2)
        x = self.layer_norm(x)
        if self.post_extract_proj is not None:
            x = self.post_extract_proj(x)
        return self.encoder(x)

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        """(B, samples) equal-length waveforms -> (B, patches, dim)."""
        fbank = torch.stack([beats_fbank(w) for w in waveforms])
        return self.forward_fbank(fbank)


def normalize_beats_state_dict(state: dict) -> dict:
    """Map a BEATs state dict onto this module's names.

    - the relative bias table is shared by all layers in the original (a copy per layer in the
      state dict); only layer 0's is used, so the copies are dropped;
    - new-style weight-norm names (parametrizations.weight.original0/1) become weight_g/weight_v;
    - the classifier head of fine-tuned checkpoints (predictor.*) is ignored (spec §7).
    """
    out = {}
    for key, value in state.items():
        if key.startswith("predictor."):
            continue
        if ".self_attn.relative_attention_bias." in key and not key.startswith("encoder.layers.0."):
            continue
        key = key.replace("pos_conv.0.parametrizations.weight.original0", "pos_conv.0.weight_g")
        key = key.replace("pos_conv.0.parametrizations.weight.original1", "pos_conv.0.weight_v")
        out[key] = value
    return out
