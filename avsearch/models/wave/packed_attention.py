"""One attention call per layer for the thinker's ViT windows and Whisper chunks.

Why: upstream transformers runs the vision tower's windowed attention and the audio tower's
chunked attention as a Python loop of one SDPA call per window unless flash-attn is installed
(`Qwen2_5OmniVisionAttention.forward`). A 10 s 720p clip at 2 fps has ~150 windows, so a batch of
12 clips makes ~1,800 tiny SDPA launches per ViT layer: on an H100 this loop, not the matrix work,
set WAVE-7B's speed (measured: the same 1.6 clips/s at batch 1, 4, 12 and 24).

`packed_sdpa` takes the variable-length (cu_seqlens) path that transformers reserves for
flash-attention and runs it as one padded SDPA call: windows are gathered into a
(windows, heads, longest, dim) batch and padded keys are masked out, so every real query sees
exactly its own window's keys, as in the loop (same function; only float summation order moves).
It is registered under a name containing "flash" because that is how the upstream attention
modules decide to pass cu_seqlens (`is_flash_attention_requested`); the language model keeps SDPA.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

PACKED_ATTENTION = "avsearch_packed_sdpa_flash_compatible"


def packed_sdpa(module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                attention_mask=None, *, scaling: float | None = None, dropout: float = 0.0,
                cu_seq_lens_q: torch.Tensor | None = None, cu_seq_lens_k: torch.Tensor | None = None,
                is_causal: bool = False, **_ignored) -> tuple[torch.Tensor, None]:
    """query/key/value (1, heads, total, dim) with windows at cu_seq_lens -> (1, total, heads, dim)."""
    if cu_seq_lens_q is None or (cu_seq_lens_k is not None and not torch.equal(cu_seq_lens_q, cu_seq_lens_k)):
        raise ValueError("packed_sdpa needs one cu_seqlens shared by queries and keys (ViT windows, audio chunks)")
    if is_causal or attention_mask is not None:
        raise ValueError("packed_sdpa implements non-causal window attention only")
    starts = cu_seq_lens_q[:-1].long()
    lengths = cu_seq_lens_q[1:].long() - starts
    longest = int(lengths.max())
    offsets = torch.arange(longest, device=query.device)
    valid = offsets[None, :] < lengths[:, None]  # (windows, longest)
    index = (starts[:, None] + offsets[None, :]).clamp(max=query.shape[2] - 1)  # padded slots read any row

    def gather(t: torch.Tensor) -> torch.Tensor:  # (1, H, total, D) -> (windows, H, longest, D)
        return t[0][:, index].permute(1, 0, 2, 3)

    out = F.scaled_dot_product_attention(gather(query), gather(key), gather(value),
                                         attn_mask=valid[:, None, None, :], dropout_p=dropout, scale=scaling)
    # (windows, H, longest, D) -> rows of the real tokens only, back in packed order: (1, total, H, D)
    return out.permute(0, 2, 1, 3)[valid].unsqueeze(0), None


def use_packed_attention(*towers: nn.Module) -> int:
    """Switch the given towers (the thinker's ViT and Whisper encoder) to `packed_sdpa`.

    Only towers currently on plain SDPA are switched (a flash-attn install is left alone).
    Returns how many config objects were switched.
    """
    from transformers import AttentionInterface

    AttentionInterface.register(PACKED_ATTENTION, packed_sdpa)
    switched = 0
    seen: set[int] = set()
    for tower in towers:
        for module in tower.modules():
            config = getattr(module, "config", None)
            if config is None or id(config) in seen:
                continue
            seen.add(id(config))
            if getattr(config, "_attn_implementation", None) == "sdpa":
                config._attn_implementation = PACKED_ATTENTION
                switched += 1
    return switched
