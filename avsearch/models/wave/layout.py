"""Token-count arithmetic of WAVE inputs: pure Python, no torch, cheap enough for batching.

Everything the sequence length of a clip depends on lives here, so `token_cost` (the indexer's
batching key), the prompt builder and the tests share one source of truth:

- audio: padding to 1 s, 300 s segments, Whisper frames and tokens per segment (spec §2);
- video: frame capping, seconds per temporal grid, smart_resize and the patch grid (spec §4);
- audio+video: the chunk layout, 2 temporal grids + matching audio per chunk (spec §4).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

from avsearch.sizing import round_to_budget

SAMPLE_RATE = 16_000
WHISPER_HOP = 160  # samples per Whisper mel frame (10 ms)
SEGMENT_SECONDS = 300  # spec §2: audio is cut into 300 s segments (Whisper's chunk_length)
MIN_AUDIO_SECONDS = 1  # spec §2: clips and segments shorter than 1 s are zero-padded to 1 s

PATCH_SIZE = 14
TEMPORAL_PATCH_SIZE = 2
MERGE_SIZE = 2
RESIZE_FACTOR = PATCH_SIZE * MERGE_SIZE  # 28: smart_resize rounds sides to this


# --------------------------------------------------------------------------------------------
# audio (spec §2)


def whisper_frames(n_samples: int) -> int:
    """Valid Whisper mel frames of a segment: L = ceil(n / 160)."""
    return -(-n_samples // WHISPER_HOP)


def whisper_tokens(frames: int) -> int:
    """Whisper tokens of a segment (conv stride 2, then AvgPool 2): N = ((L-1)//2 + 1 - 2)//2 + 1."""
    return ((frames - 1) // 2 + 1 - 2) // 2 + 1


def audio_segments(n_samples: int, sample_rate: int = SAMPLE_RATE) -> list[tuple[int, int, int]]:
    """(start, end, padded_length) of every 300 s segment of a clip of `n_samples` samples.

    The clip is first zero-padded to 1 s; each segment shorter than 1 s is padded to 1 s too.
    """
    minimum = MIN_AUDIO_SECONDS * sample_rate
    total = max(n_samples, minimum)
    step = SEGMENT_SECONDS * sample_rate
    out = []
    for start in range(0, total, step):
        end = min(start + step, total)
        out.append((start, end, max(end - start, minimum)))
    return out


@dataclass(frozen=True)
class AudioPlan:
    """Token facts of one audio clip: per segment padded samples, Whisper frames and tokens."""

    segment_samples: tuple[int, ...]
    segment_frames: tuple[int, ...]
    segment_tokens: tuple[int, ...]

    @property
    def whisper_tokens(self) -> int:
        """N: the Whisper tokens over all segments (BEATs is forced to the same count)."""
        return sum(self.segment_tokens)


def plan_audio(n_samples: int, sample_rate: int = SAMPLE_RATE) -> AudioPlan:
    segments = audio_segments(n_samples, sample_rate)
    samples = tuple(padded for _, _, padded in segments)
    frames = tuple(whisper_frames(s) for s in samples)
    return AudioPlan(samples, frames, tuple(whisper_tokens(f) for f in frames))


# --------------------------------------------------------------------------------------------
# video (spec §4)


def select_frames(n_frames: int, max_frames: int) -> list[int]:
    """Indices of the frames kept: all of them, or `max_frames` spread uniformly (linspace, truncated)."""
    if n_frames <= max_frames:
        return list(range(n_frames))
    if max_frames == 1:
        return [0]
    step = (n_frames - 1) / (max_frames - 1)
    return [int(i * step) for i in range(max_frames)]


def seconds_per_grid(n_frames: int, duration_s: float) -> float:
    """spg = temporal_patch / fps_eff, with fps_eff = n / duration (spec §4)."""
    return TEMPORAL_PATCH_SIZE * duration_s / n_frames


def smart_resize(height: int, width: int, *, factor: int = RESIZE_FACTOR, min_pixels: int = 784,
                 max_pixels: int = 176_400) -> tuple[int, int]:
    """Qwen2-VL's smart_resize: sides multiple of `factor`, area within [min_pixels, max_pixels],
    aspect ratio kept as well as possible."""
    if min(height, width) <= 0:
        raise ValueError(f"frame size {height}x{width} is empty")
    if max(height, width) / min(height, width) > 200:
        raise ValueError(f"frame aspect ratio {height}x{width} is more extreme than 200:1")
    return round_to_budget(height, width, factor, min_pixels, max_pixels)


@dataclass(frozen=True)
class VideoGrid:
    """The ViT patch grid of one clip: t temporal grids (2 frames each), h x w patches of 14 px."""

    t: int
    h: int
    w: int
    seconds_per_grid: float
    merge: int = MERGE_SIZE

    @property
    def tokens_per_grid(self) -> int:
        return (self.h // self.merge) * (self.w // self.merge)

    @property
    def tokens(self) -> int:
        return self.t * self.tokens_per_grid


def plan_video(n_frames: int, height: int, width: int, duration_s: Optional[float], fps: float, *,
               max_frames: int = 128, min_pixels: int = 784, max_pixels: int = 176_400) -> VideoGrid:
    """Grid of a clip of `n_frames` frames sampled at `fps` (spec §4).

    The kept frame count n is capped at `max_frames`; fps_eff = n / duration, so a clip sampled at
    2 fps has spg = 1 until the cap bites. An odd n is padded by repeating the last frame.
    """
    if n_frames <= 0:
        raise ValueError("a video needs at least one frame")
    n = len(select_frames(n_frames, max_frames))
    if not duration_s or duration_s <= 0:
        duration_s = n_frames / fps
    rh, rw = smart_resize(height, width, min_pixels=min_pixels, max_pixels=max_pixels)
    return VideoGrid(t=-(-n // TEMPORAL_PATCH_SIZE), h=rh // PATCH_SIZE, w=rw // PATCH_SIZE,
                     seconds_per_grid=seconds_per_grid(n, duration_s))


# --------------------------------------------------------------------------------------------
# audio+video chunks (spec §4, the WAVE processor P:213-312)


def chunk_run_lengths(indices: Sequence[float], chunk: float) -> list[int]:
    """Split monotone token indices into runs [c*chunk, (c+1)*chunk), the way WAVE's processor does.

    A boundary is hit when an index reaches c*chunk or is isclose to it (rel 1e-5), so float
    chunk sizes (2*spg*25) do not lose a token to rounding. At most one boundary per token.
    """
    runs: list[int] = []
    start, boundary = 0, 1
    for i, value in enumerate(indices):
        edge = boundary * chunk
        if value >= edge or math.isclose(value, edge, rel_tol=1e-5):
            runs.append(i - start)
            start = i
            boundary += 1
    runs.append(len(indices) - start)
    return runs


def av_chunks(grid: VideoGrid, whisper_tokens: int, *, position_id_per_seconds: int = 25,
              grids_per_chunk: int = 2) -> list[tuple[int, int]]:
    """(video tokens, Whisper tokens) per chunk of an audio+video block.

    seconds_per_chunk = 2*spg (D:450), so each chunk holds exactly 2 temporal grids and the
    Whisper tokens k with j*50*spg <= k < (j+1)*50*spg. Unpaired remainders come as (v, 0) or (0, a).
    """
    chunk = position_id_per_seconds * grids_per_chunk * grid.seconds_per_grid
    video_index = [t * grid.seconds_per_grid * position_id_per_seconds
                   for t in range(grid.t) for _ in range(grid.tokens_per_grid)]
    video_runs = chunk_run_lengths(video_index, chunk)
    audio_runs = chunk_run_lengths(range(whisper_tokens), chunk)
    n = max(len(video_runs), len(audio_runs))
    return [(video_runs[j] if j < len(video_runs) else 0, audio_runs[j] if j < len(audio_runs) else 0)
            for j in range(n)]


# --------------------------------------------------------------------------------------------
# block lengths (spec §3): bos/eos included


def audio_block_length(plan: AudioPlan, tokens_per_whisper_token: int = 2) -> int:
    """<|audio_bos|> + (2N or N) <|AUDIO|> + <|audio_eos|>."""
    return 2 + tokens_per_whisper_token * plan.whisper_tokens


def video_block_length(grid: VideoGrid) -> int:
    """<|vision_bos|> + V <|VIDEO|> + <|vision_eos|>."""
    return 2 + grid.tokens


def av_block_length(grid: VideoGrid, plan: AudioPlan, tokens_per_whisper_token: int = 2,
                    position_id_per_seconds: int = 25) -> int:
    """<|vision_bos|><|audio_bos|> + chunks of V_j <|VIDEO|> then 2A_j <|AUDIO|> + <|audio_eos|><|vision_eos|>."""
    chunks = av_chunks(grid, plan.whisper_tokens, position_id_per_seconds=position_id_per_seconds)
    return 4 + sum(v + tokens_per_whisper_token * a for v, a in chunks)
