"""Video path (spec §4, §8.5): the slow Qwen2-VL image processor's pixel pipeline, then the ViT.

Per clip: cap the frames at max_frames (uniform), smart_resize, PIL bicubic resize, rescale by
1/255, CLIP mean/std, pad an odd count by repeating the last frame, and patchify in the order
(grid_t, h/2, w/2, 2, 2, C, T, 14, 14). The PIL path is kept (not transformers 5's torchvision
video processor) for parity with the reference, which used the slow processor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from avsearch.models.wave.layout import (
    MERGE_SIZE, PATCH_SIZE, TEMPORAL_PATCH_SIZE, VideoGrid, plan_video, select_frames, smart_resize,
)
from avsearch.resample import bicubic_pil

CLIP_MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
CLIP_STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)


@dataclass
class PreparedVideo:
    grid: VideoGrid
    pixel_values: np.ndarray  # (t*h*w, 3*2*14*14) float32 patches


def check_frames(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be (T, H, W, 3) RGB, got shape {frames.shape}")
    if frames.dtype != np.uint8:
        frames = np.clip(np.rint(frames), 0, 255).astype(np.uint8)
    return frames


def normalize_frame(frame: np.ndarray, height: int, width: int) -> np.ndarray:
    """(H, W, 3) uint8 -> (3, height, width) float32: PIL bicubic, /255, CLIP mean/std."""
    if frame.shape[:2] != (height, width):
        frame = bicubic_pil(frame, height, width)
    # transformers' rescale multiplies in float64 and casts to float32; normalize is float32
    pixels = (frame.astype(np.float64) * (1 / 255)).astype(np.float32)
    pixels = (pixels - CLIP_MEAN) / CLIP_STD
    return pixels.transpose(2, 0, 1)


def patchify(frames: np.ndarray, merge: int = MERGE_SIZE) -> np.ndarray:
    """(T, C, H, W) with even T -> (grid_t*grid_h*grid_w, C*2*14*14) in the Qwen2-VL patch order."""
    t, c, h, w = frames.shape
    gt, gh, gw = t // TEMPORAL_PATCH_SIZE, h // PATCH_SIZE, w // PATCH_SIZE
    x = frames.reshape(gt, TEMPORAL_PATCH_SIZE, c, gh // merge, merge, PATCH_SIZE, gw // merge, merge, PATCH_SIZE)
    x = x.transpose(0, 3, 6, 4, 7, 2, 1, 5, 8)
    return np.ascontiguousarray(x.reshape(gt * gh * gw, c * TEMPORAL_PATCH_SIZE * PATCH_SIZE * PATCH_SIZE))


def prepare_video(frames: np.ndarray, fps: float, duration_s: Optional[float], *, max_frames: int = 128,
                  min_pixels: int = 784, max_pixels: int = 176_400) -> PreparedVideo:
    frames = check_frames(frames)
    n_total, height, width = frames.shape[:3]
    grid = plan_video(n_total, height, width, duration_s, fps, max_frames=max_frames,
                      min_pixels=min_pixels, max_pixels=max_pixels)
    rh, rw = smart_resize(height, width, min_pixels=min_pixels, max_pixels=max_pixels)
    kept = [normalize_frame(frames[i], rh, rw) for i in select_frames(n_total, max_frames)]
    if len(kept) % TEMPORAL_PATCH_SIZE:
        kept.append(kept[-1])  # odd count: repeat the last frame
    return PreparedVideo(grid, patchify(np.stack(kept)))


class VisionEncoder:
    """Runs the thinker's ViT + PatchMerger over several clips in one call."""

    def __init__(self, thinker_model, device: torch.device) -> None:
        self.thinker_model = thinker_model
        self.device = device

    def encode(self, clips: list[PreparedVideo], dtype: Optional[torch.dtype] = None) -> list[torch.Tensor]:
        """(V_c, hidden) per clip, in token order."""
        if not clips:
            return []
        pixels = torch.from_numpy(np.concatenate([c.pixel_values for c in clips])).to(self.device)
        grid_thw = torch.tensor([[c.grid.t, c.grid.h, c.grid.w] for c in clips], device=self.device)
        out = self.thinker_model.get_video_features(pixels, grid_thw, return_dict=True).pooler_output
        return [o.to(dtype) if dtype is not None else o for o in out]
