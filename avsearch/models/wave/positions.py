"""3-D mRoPE position ids of one row (spec §5).

Rules, walking the pieces of a row in order and keeping `start` = (max of the block appended last) + 1:
- text, specials and audio blocks: consecutive 1-D positions (same on the t, h, w axes);
- a silent video block: upstream 3-D positions, t = floor(t_grid * spg * 25) and the merged-grid
  (h, w) offsets, all added to `start`; the eos that follows starts after the block's max;
- an audio+video block:
  * "sequential" (the released inference path, default): consecutive positions for everything,
    because the reference test loop never passes use_audio_in_video (spec §5);
  * "training" (WAVE's training-mode TMRoPE, M:519-562): both bos share one position; audio gets
    start + arange(2N) (the doubled length, so audio runs 50 positions/s against video's 25);
    video gets its 3-D grid positions from the same start; the chunks take their slices of both
    in token order; both eos share (max of the last slice) + 1.
"""

from __future__ import annotations

from typing import Sequence

import torch

from avsearch.models.wave.layout import VideoGrid
from avsearch.models.wave.prompts import AudioBlock, AVBlock, Piece, Special, Text, VideoBlock


def video_grid_positions(grid: VideoGrid, position_id_per_seconds: int = 25) -> torch.Tensor:
    """(3, V) positions of a video block relative to its start (upstream get_llm_pos_ids_for_vision).

    The temporal index is computed in float32 and truncated, as upstream does with
    second_per_grids.float().
    """
    h, w = grid.h // grid.merge, grid.w // grid.merge
    spg = torch.tensor(grid.seconds_per_grid, dtype=torch.float32)
    t_index = (torch.arange(grid.t) * spg * position_id_per_seconds).long()
    t = t_index.view(-1, 1).expand(-1, h * w).flatten()
    hh = torch.arange(h).view(1, -1, 1).expand(grid.t, -1, w).flatten()
    ww = torch.arange(w).view(1, 1, -1).expand(grid.t, h, -1).flatten()
    return torch.stack([t, hh, ww])


def _line(start: int, n: int) -> torch.Tensor:
    return (torch.arange(n) + start).view(1, -1).expand(3, -1)


class _Blocks:
    """Appended position blocks; `start` is the max of the block appended last, plus one."""

    def __init__(self) -> None:
        self.blocks: list[torch.Tensor] = []
        self.start = 0

    def add(self, block: torch.Tensor) -> None:
        self.blocks.append(block)
        if block.numel():
            self.start = int(block.max()) + 1

    def line(self, n: int) -> None:
        self.add(_line(self.start, n))

    def shared_pair(self) -> None:
        """Two tokens at one position (the bos pair, the eos pair of training-mode AV)."""
        pair = _line(self.start, 1)
        self.blocks.append(pair)
        self.add(pair)


def row_positions(pieces: Sequence[tuple[Piece, int]], *, av_mode: str = "sequential",
                  position_id_per_seconds: int = 25) -> torch.Tensor:
    """(3, L) positions for a row given as (piece, token count) pairs."""
    out = _Blocks()
    for piece, length in pieces:
        if isinstance(piece, (Text, Special, AudioBlock)):
            out.line(length)
        elif isinstance(piece, VideoBlock):
            out.line(1)  # <|vision_bos|>
            out.add(video_grid_positions(piece.grid, position_id_per_seconds) + out.start)
            out.line(1)  # <|vision_eos|>
        elif isinstance(piece, AVBlock):
            if av_mode == "sequential":
                out.line(length)
            elif av_mode == "training":
                _training_av(piece, out, position_id_per_seconds)
            else:
                raise ValueError(f"unknown av position mode {av_mode!r}; choose sequential or training")
        else:
            raise TypeError(f"not a prompt piece: {piece!r}")
    positions = torch.cat(out.blocks, dim=1) if out.blocks else torch.zeros(3, 0, dtype=torch.long)
    expected = sum(length for _, length in pieces)
    if positions.shape[1] != expected:
        raise AssertionError(f"positions cover {positions.shape[1]} tokens, the row has {expected}")
    return positions


def _training_av(block: AVBlock, out: _Blocks, position_id_per_seconds: int) -> None:
    out.shared_pair()  # <|vision_bos|><|audio_bos|>
    first = out.start
    video = video_grid_positions(block.grid, position_id_per_seconds) + first
    audio = _line(first, block.audio_tokens)  # doubled length: st + arange(2N)
    v_at = a_at = 0
    for v, a in block.chunks:
        if v:
            out.add(video[:, v_at: v_at + v])
            v_at += v
        if a:
            out.add(audio[:, a_at: a_at + a])
            a_at += a
    out.shared_pair()  # <|audio_eos|><|vision_eos|> at (max of the last slice) + 1
