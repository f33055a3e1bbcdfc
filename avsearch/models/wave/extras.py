"""The modules WAVE adds to the Qwen2.5-Omni thinker (spec §1), named like the checkpoint keys.

`WaveExtras().state_dict()` has exactly the legacy names `beats.*`, `beats_ln.*`,
`beats_proj.{0,2}.*` and `classify_linear.{0,2}.*`, so tensors read from the shards load with a
strict `load_state_dict` and missing or misshapen ones are reported by name.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from avsearch.models.wave.beats import BEATs, BEATsConfig
from avsearch.models.wave.config import WaveConfig
from avsearch.models.wave.head import make_head

EXTRA_PREFIXES = ("beats.", "beats_ln.", "beats_proj.", "classify_linear.")


class WaveExtras(nn.Module):
    def __init__(self, config: WaveConfig, beats_config: Optional[BEATsConfig]) -> None:
        super().__init__()
        hidden = config.hidden_size
        self.beats: Optional[BEATs] = None
        if config.uses_beats:
            if beats_config is None:
                raise ValueError("this checkpoint uses BEATs but no BEATs cfg was given")
            self.beats = BEATs(beats_config)
            dim = beats_config.out_dim
            self.beats_ln = nn.LayerNorm(dim)
            # Linear, GELU, Linear (state-dict indices 0 and 2, spec §1)
            self.beats_proj = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, hidden))
        self.classify_linear = make_head(config.head_input_dim, hidden)

    def project_beats(self, pooled: torch.Tensor) -> torch.Tensor:
        """(N, beats_dim) pooled BEATs rows -> (N, hidden): LayerNorm then the projection."""
        return self.beats_proj(self.beats_ln(pooled.to(self.beats_ln.weight.dtype)))


def is_extra_key(key: str) -> bool:
    return key.startswith(EXTRA_PREFIXES)
