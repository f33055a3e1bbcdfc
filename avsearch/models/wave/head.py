"""The embedding head (spec §6) and the capture of the last-token states it reads.

all_layer (WAVE-7B): the last-token state of every decoder layer -- the outputs of layers 1..n-1
(un-normalised) and the final RMSNorm output in place of layer n, i.e. transformers'
`hidden_states[1:]` -- concatenated (hidden * n), then Linear, exact-erf GELU, Linear, L2 norm.
last_layer: the final normed last-token state through Linear(h, h), GELU, Linear(h, h).

Only the last position is kept, via forward hooks, instead of output_hidden_states=True, which
would hold (layers + 1) full (batch, length, hidden) tensors: 4.5 GB in bf16 for 8 clips of
2,704 tokens on WAVE-7B. The hook path is tested against output_hidden_states.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn


def make_head(input_dim: int, hidden_size: int) -> nn.Sequential:
    """classify_linear: state-dict indices 0 and 2 like the checkpoint."""
    return nn.Sequential(nn.Linear(input_dim, hidden_size), nn.GELU(), nn.Linear(hidden_size, hidden_size))


def pool_last_token(layer_states: list[torch.Tensor], final_normed: torch.Tensor, classify_type: str) -> torch.Tensor:
    """Head input from the per-layer last-token states.

    layer_states: last-token outputs of decoder layers 1..n-1 (each (B, h));
    final_normed: last-token output of the final norm (B, h).
    """
    if classify_type == "last_layer":
        return final_normed
    return torch.cat([*layer_states, final_normed], dim=-1)


@contextmanager
def capture_last_token(language_model: nn.Module) -> Iterator[list[torch.Tensor]]:
    """Record `output[:, -1]` of every decoder layer but the last while the block runs.

    The last layer's state is not needed: spec §6 replaces it with the final norm's output,
    which the caller takes from last_hidden_state.
    """
    captured: list[torch.Tensor] = []

    def hook(_module, _inputs, output):
        hidden = output[0] if isinstance(output, tuple) else output
        captured.append(hidden[:, -1])

    layers = list(language_model.layers)
    handles = [layer.register_forward_hook(hook) for layer in layers[:-1]]
    try:
        yield captured
    finally:
        for handle in handles:
            handle.remove()
