"""The one-call window attention computes what the upstream per-window loop computes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from avsearch.models.wave.packed_attention import PACKED_ATTENTION, packed_sdpa
from wave_fixtures import make_clip, tiny_checkpoint


def loop_reference(q, k, v, cu):
    """The upstream non-flash path: one SDPA per window, outputs (1, total, heads, dim)."""
    outs = []
    for a, b in zip(cu[:-1].tolist(), cu[1:].tolist()):
        o = F.scaled_dot_product_attention(q[:, :, a:b], k[:, :, a:b], v[:, :, a:b])
        outs.append(o.transpose(1, 2))
    return torch.cat(outs, dim=1)


@pytest.mark.parametrize("lengths", [[5], [4, 4, 4], [7, 1, 3, 16, 2]])
def test_packed_sdpa_equals_per_window_loop(lengths):
    g = torch.Generator().manual_seed(len(lengths))
    total, heads, dim = sum(lengths), 3, 8
    q, k, v = (torch.randn(1, heads, total, dim, generator=g) for _ in range(3))
    cu = torch.tensor([0, *np.cumsum(lengths)], dtype=torch.int32)
    got, _ = packed_sdpa(None, q, k, v, cu_seq_lens_q=cu, cu_seq_lens_k=cu)
    torch.testing.assert_close(got, loop_reference(q, k, v, cu), rtol=1e-5, atol=1e-6)


def test_packed_sdpa_refuses_what_it_does_not_implement():
    q = torch.zeros(1, 1, 4, 2)
    cu = torch.tensor([0, 4], dtype=torch.int32)
    with pytest.raises(ValueError, match="cu_seqlens"):
        packed_sdpa(None, q, q, q)
    with pytest.raises(ValueError, match="non-causal"):
        packed_sdpa(None, q, q, q, cu_seq_lens_q=cu, cu_seq_lens_k=cu, is_causal=True)


def test_tiny_model_vectors_match_the_upstream_loop():
    """Switching the towers back to plain SDPA (the upstream loop) leaves every vector unchanged."""
    from avsearch.models.wave import load_wave_embedder

    embedder = load_wave_embedder(str(tiny_checkpoint()), device="cpu")
    inner = embedder.model.thinker.model
    configs = {id(m.config): m.config for t in (inner.visual, inner.audio_tower) for m in t.modules()
               if getattr(m, "config", None) is not None}
    assert configs and all(c._attn_implementation == PACKED_ATTENTION for c in configs.values())
    clips = [make_clip(3.0, seed=1), make_clip(6.5, seed=2, size=(84, 112))]
    packed = embedder.embed_clips(clips, "av")
    for c in configs.values():
        c._attn_implementation = "sdpa"
    try:
        looped = embedder.embed_clips(clips, "av")
    finally:
        for c in configs.values():
            c._attn_implementation = PACKED_ATTENTION
    np.testing.assert_allclose(packed, looped, atol=2e-5)
