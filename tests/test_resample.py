"""Frame resizing (issue #4, item 5): the reference path must give the pixels of Pillow's algorithm
as WAVE's reference ran it (horizontal pass first, 22-bit fixed point), and the fast default path
must stay within two levels of it at every size the decoder asks for, without taking threads from
the rest of the process."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from avsearch import resample
from avsearch.media import read_clip
from avsearch.media.decode import DecodeOptions
from avsearch.media.resize import smart_resize
from avsearch.media.synth import write_video
from avsearch.resample import bicubic_pil, bicubic_torch, keep_resizing_on_this_thread


def _textured(height: int, width: int, seed: int) -> np.ndarray:
    """Smooth waves plus strong noise: rounding lands everywhere, unlike flat test pictures."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = 127 + 100 * np.sin(x / 7.3) * np.cos(y / 5.1)
    rgb = np.stack([base, base[::-1], base[:, ::-1]], axis=-1) + rng.normal(0, 30, (height, width, 3))
    return np.clip(rgb, 0, 255).astype(np.uint8)


# -- an independent model of Pillow's 8-bit resampling, written from its documented algorithm ----


def _cubic(x: float, a: float = -0.5) -> float:
    x = abs(x)
    if x < 1:
        return ((a + 2) * x - (a + 3)) * x * x + 1
    if x < 2:
        return (((x - 5) * x + 8) * x - 4) * a
    return 0.0


def _pillow_pass(image: np.ndarray, out_size: int, axis: int) -> np.ndarray:
    """One antialiased bicubic pass along `axis`: float weights over the filter's support (widened
    by the downscale factor), normalised, rounded to 22-bit integers; sums start at half a unit,
    are shifted back and clipped to 0..255."""
    in_size = image.shape[axis]
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = 2.0 * filterscale
    moved = np.moveaxis(image.astype(np.int64), axis, 0)
    out = np.empty((out_size, *moved.shape[1:]), dtype=np.int64)
    for i in range(out_size):
        center = (i + 0.5) * scale
        lo = max(int(center - support + 0.5), 0)
        hi = min(int(center + support + 0.5), in_size)
        w = np.array([_cubic((x - center + 0.5) / filterscale) for x in range(lo, hi)])
        w = w / w.sum()
        k = np.where(w < 0, np.trunc(w * (1 << 22) - 0.5), np.trunc(w * (1 << 22) + 0.5)).astype(np.int64)
        acc = (1 << 21) + np.tensordot(k, moved[lo:hi], axes=(0, 0))
        out[i] = np.clip(acc >> 22, 0, 255)
    return np.moveaxis(out, 0, axis).astype(np.uint8)


def _pillow_model(image: np.ndarray, height: int, width: int) -> np.ndarray:
    if width != image.shape[1]:
        image = _pillow_pass(image, width, axis=1)
    if height != image.shape[0]:
        image = _pillow_pass(image, height, axis=0)
    return image


# Sizes where Pillow 13, asked for both passes at once, runs the vertical one first and lands up
# to 8 levels from Pillow 12 (measured against Pillow 12.0 while writing this test), plus a plain
# downscale where both agree.
@pytest.mark.parametrize("src,dst", [((90, 160), (84, 168)), ((75, 27), (33, 22)), ((55, 109), (28, 96)),
                                     ((120, 200), (56, 84))])
def test_reference_path_gives_pillows_horizontal_first_pixels(src, dst):
    image = _textured(*src, seed=sum(src))
    assert np.array_equal(bicubic_pil(image, *dst), _pillow_model(image, *dst))


@pytest.mark.parametrize("src", [(1080, 1920), (480, 854), (2160, 3840), (480, 640), (90, 160), (308, 600),
                                 (1920, 1080), (576, 720)])
def test_torch_path_is_within_two_levels_of_the_reference(src, monkeypatch):
    dst = smart_resize(*src) if src != (308, 600) else (308, 560)  # the last: one side only
    image = _textured(*src, seed=sum(src))
    reference = bicubic_pil(image, *dst)

    def no_fallback(*args):
        raise AssertionError("torch's kernel was not used")

    monkeypatch.setattr(resample, "bicubic_pil", no_fallback)
    fast = bicubic_torch(image, *dst)
    assert fast.shape == reference.shape == (*dst, 3) and fast.dtype == np.uint8
    diff = np.abs(fast.astype(np.int16) - reference.astype(np.int16))
    assert diff.max() <= 2, diff.max()
    assert (diff > 0).mean() < 0.01, (diff > 0).mean()  # 0.3-0.6% at these sizes


def test_torch_path_moves_model_inputs_less_than_bfloat16_does():
    """The drift in the model's normalised pixels, against the bf16 rounding every pixel gets on
    its way into the vision tower on GPU: the mean change must be far smaller."""
    import torch

    from avsearch.models.wave.vision import CLIP_MEAN, CLIP_STD

    image = _textured(1080, 1920, seed=1)
    dst = smart_resize(1080, 1920)
    ref = (bicubic_pil(image, *dst) / 255.0 - CLIP_MEAN) / CLIP_STD
    fast = (bicubic_torch(image, *dst) / 255.0 - CLIP_MEAN) / CLIP_STD
    as_bf16 = torch.from_numpy(ref.astype(np.float32)).to(torch.bfloat16).float().numpy()
    drift, rounding = np.abs(fast - ref).mean(), np.abs(as_bf16 - ref).mean()
    assert drift < rounding / 10, (drift, rounding)


def test_torch_path_takes_non_contiguous_input():
    image = _textured(120, 200, seed=3)
    turned = np.rot90(image, -1)  # what a rotated video's frame is before resizing
    assert np.array_equal(bicubic_torch(turned, 112, 56), bicubic_torch(np.ascontiguousarray(turned), 112, 56))


def test_decoded_frames_of_the_two_paths_agree(tmp_path):
    path = write_video(tmp_path / "wide.mp4", duration_s=2.0, width=640, height=360, fps=10, audio=False, seed=5)
    pil = read_clip(path, options=DecodeOptions(resize="pil"), audio=False).frames
    fast = read_clip(path, options=DecodeOptions(), audio=False).frames
    assert DecodeOptions().resize == "torch"
    assert fast.shape == pil.shape and fast.shape[1:3] == smart_resize(360, 640)
    assert np.abs(fast.astype(np.int16) - pil.astype(np.int16)).max() <= 2


def test_pinning_the_resize_thread_leaves_other_threads_alone():
    import torch

    before = torch.get_num_threads()
    seen = {}

    def worker():
        keep_resizing_on_this_thread()
        seen["worker"] = torch.get_num_threads()

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen["worker"] == 1
    # The embedder runs on other threads of the same process: they keep their thread count.
    assert torch.get_num_threads() == before
