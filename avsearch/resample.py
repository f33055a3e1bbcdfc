"""Bicubic resizing of RGB frames to the model's size, as WAVE's reference preprocessing does it.

Shared by the media layer (sampled frames, resized while decoding) and the WAVE processor (frames a
caller passes at another size). The reference is PIL's antialiased bicubic ("pil"); "torch" is the
same filter through torch's SIMD kernel, 5-7x faster and a level or two off on a few pixels.
"""

from __future__ import annotations

import numpy as np


def bicubic_pil(rgb: np.ndarray, height: int, width: int) -> np.ndarray:
    """PIL's antialiased bicubic resize, horizontal pass first: the reference's pixels, bit for bit.

    The two passes are asked for one at a time because Pillow 13 no longer always runs them in
    that order when asked for both at once: where it runs the vertical pass first (e.g. 160x90 ->
    168x84) its pixels are up to 8 levels from Pillow 12's, which WAVE's reference used. One
    pass at a time gives Pillow 12's pixels on either version (tests/test_resample.py).
    """
    from PIL import Image

    image = Image.fromarray(np.ascontiguousarray(rgb))
    if image.width != width:
        image = image.resize((width, image.height), Image.BICUBIC)
    if image.height != height:
        image = image.resize((width, height), Image.BICUBIC)
    return np.asarray(image, dtype=np.uint8)


def bicubic_torch(rgb: np.ndarray, height: int, width: int) -> np.ndarray:
    """PIL's antialiased bicubic resize through torch's uint8 CPU kernel.

    `interpolate(mode="bicubic", antialias=True)` on uint8 is a SIMD port of Pillow's resampling
    (same filter and support, horizontal pass first), but its fixed-point weights have fewer bits
    than Pillow's 22, so a sum on a rounding boundary can land one level away, and the second pass
    can carry that to two. Measured against bicubic_pil (tests/test_resample.py): at most 2 levels
    of 255, on < 1% of pixels (0.3-0.6% at the usual video sizes, 2 levels on ~1 pixel in 500,000).
    A torch build without this kernel gets bicubic_pil's pixels instead.
    """
    try:
        import torch

        # HWC uint8 seen as a channels-last NCHW tensor: no copy in, one small copy out.
        image = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None]
        out = torch.nn.functional.interpolate(image, size=(height, width), mode="bicubic", antialias=True)
    except (ImportError, RuntimeError, NotImplementedError):
        return bicubic_pil(rgb, height, width)
    return out[0].permute(1, 2, 0).contiguous().numpy()


def keep_resizing_on_this_thread() -> None:
    """Run bicubic_torch on the calling thread alone (OpenMP's thread count is per thread).

    For the decoder's conversion thread: with torch's default team of one thread per core, the
    team's workers spin after each resize and take the cores from FFmpeg's decoding threads (480p
    decoding measured 20% slower than with PIL instead of faster). Other threads keep their count.
    """
    import torch

    torch.set_num_threads(1)


RESAMPLERS = {"pil": bicubic_pil, "torch": bicubic_torch}
