"""The loaded WAVE network: thinker + BEATs + head, and one forward from token rows to vectors.

inputs_embeds are built here (spec §8.2): embed the token ids, then write the audio rows into
the <|AUDIO|> positions and the video rows into the <|VIDEO|> positions, in row-major order. The
thinker's own forward cannot take 2N audio rows, so the language model is called directly.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from avsearch.models.wave.audio import AudioEncoder
from avsearch.models.wave.config import TokenIds, WaveConfig
from avsearch.models.wave.head import capture_last_token, pool_last_token
from avsearch.models.wave.packed_attention import use_packed_attention
from avsearch.models.wave.vision import VisionEncoder


class WaveModel:
    def __init__(self, thinker, extras, config: WaveConfig, device: torch.device, dtype: torch.dtype,
                 beats_dtype: torch.dtype) -> None:
        self.thinker = thinker
        self.extras = extras
        self.config = config
        self.device = device
        self.dtype = dtype
        inner = thinker.model
        if not all(hasattr(inner, part) for part in ("language_model", "audio_tower", "visual")):
            import transformers

            raise RuntimeError(
                f"transformers {transformers.__version__} lays out Qwen2.5-Omni differently from the 5.23 layout "
                "avsearch is written for (thinker.model.language_model/audio_tower/visual). "
                "Run: pip install 'transformers>=5.23,<6'")
        self.language_model = inner.language_model
        # One SDPA call per layer for the ViT windows and Whisper chunks instead of one per window.
        use_packed_attention(inner.visual, inner.audio_tower)
        self.audio = AudioEncoder(inner, extras, config.audio_mode, device, beats_dtype)
        self.vision = VisionEncoder(inner, device)

    def inputs_embeds(self, ids: torch.Tensor, token_ids: TokenIds, audio_rows: Sequence[torch.Tensor],
                      video_rows: Sequence[torch.Tensor]) -> torch.Tensor:
        embeds = self.language_model.embed_tokens(ids)
        for token, rows, what in ((token_ids.audio, audio_rows, "audio"), (token_ids.video, video_rows, "video")):
            where = ids == token
            count = int(where.sum())
            given = sum(r.shape[0] for r in rows)
            if count != given:
                raise ValueError(f"{count} {what} placeholders but {given} {what} feature rows; does the "
                                 "instruction or text contain special tokens such as <|AUDIO|>?")
            if count:
                embeds[where] = torch.cat(list(rows)).to(embeds.dtype)
        return embeds

    def forward(self, ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor, token_ids: TokenIds, *,
                audio_rows: Sequence[torch.Tensor] = (), video_rows: Sequence[torch.Tensor] = (),
                use_head: bool = True) -> torch.Tensor:
        """(B, hidden) float32 L2-normalised vectors of left-padded rows.

        use_head=False is the text side of spec §6: the final normed last-token state, no head.
        """
        ids, mask, positions = ids.to(self.device), mask.to(self.device), positions.to(self.device)
        embeds = self.inputs_embeds(ids, token_ids, audio_rows, video_rows)
        with capture_last_token(self.language_model) as layer_states:
            out = self.language_model(inputs_embeds=embeds, attention_mask=mask, position_ids=positions,
                                      use_cache=False)
        final = out.last_hidden_state[:, -1]
        if use_head:
            pooled = pool_last_token(layer_states, final, self.config.classify_type)
            head = self.extras.classify_linear
            vectors = head(pooled.to(head[0].weight.dtype))
        else:
            vectors = final
        return F.normalize(vectors.float(), dim=-1)
