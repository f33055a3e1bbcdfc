"""Phone videos store their pixels sideways plus a display rotation: avsearch must see them upright
(issue #4, robustness corpus: rotated video).

The expectation is independent of the decoder: the same pictures are written twice, once plain
and once with a display matrix, and the rotated file must decode to the plain file's frames turned
clockwise by the stored angle. (That a stored "90" means clockwise on display was checked against
the ffmpeg command-line tool's autorotation when this test was written.) Sides are multiples of 28
so frames are not resized, and the comparison is exact.
"""

from __future__ import annotations

import numpy as np
import pytest

from avsearch.media import probe, read_clip
from avsearch.media.frames import extract_frame
from avsearch.media.decode import DecodeOptions
from avsearch.media.synth import set_display_rotation, write_video

W, H = 84, 56  # stored (coded) size


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    path = write_video(tmp_path_factory.mktemp("rot") / "plain.mp4", duration_s=1.0, width=W, height=H,
                       audio=False, seed=7)
    return path, read_clip(path).frames


@pytest.mark.parametrize("rotation, turns", [(90, -1), (180, 2), (270, 1)])  # np.rot90: k<0 is clockwise
def test_rotated_video_decodes_upright(tmp_path, plain, rotation, turns):
    _, frames = plain
    path = write_video(tmp_path / f"r{rotation}.mp4", duration_s=1.0, width=W, height=H, audio=False, seed=7,
                       rotation=rotation)
    media = probe(path)
    assert media.rotation == rotation
    assert (media.width, media.height) == ((H, W) if rotation in (90, 270) else (W, H))
    turned = read_clip(path).frames
    assert turned.shape == np.rot90(frames, turns, axes=(1, 2)).shape
    assert np.array_equal(turned, np.rot90(frames, turns, axes=(1, 2)))


@pytest.mark.parametrize("rotation, turns", [(90, -1), (270, 1)])
def test_rotated_video_decodes_upright_when_swscale_scales(tmp_path, plain, rotation, turns):
    # swscale scales the coded frame to the turned size first, then turns it: a 2x budget cut
    # makes it really scale (84x56 is already on the 28-pixel grid).
    options = DecodeOptions(resize="swscale", max_pixels=W * H // 2)
    plain_frames = read_clip(plain[0], options=options).frames
    path = write_video(tmp_path / f"s{rotation}.mp4", duration_s=1.0, width=W, height=H, audio=False, seed=7,
                       rotation=rotation)
    turned = read_clip(path, options=options).frames
    assert plain_frames.shape[1:3] != (H, W)  # it did scale
    assert np.array_equal(turned, np.rot90(plain_frames, turns, axes=(1, 2)))


def test_thumbnail_of_a_rotated_video_is_upright(tmp_path, plain):
    path, _ = plain
    rotated = tmp_path / "r90.mp4"
    rotated.write_bytes(path.read_bytes())
    set_display_rotation(rotated, 90)
    upright = extract_frame(path, 0.0, max_side=W)
    turned = extract_frame(rotated, 0.0, max_side=W)
    assert np.array_equal(turned, np.rot90(upright, -1))


def test_display_rotation_refuses_what_it_cannot_write(tmp_path):
    with pytest.raises(ValueError, match="choose 90, 180 or 270"):
        set_display_rotation(tmp_path / "x.mp4", 45)
    not_mp4 = tmp_path / "x.mp4"
    not_mp4.write_bytes(b"\x00\x00\x00\x08free" * 4)
    with pytest.raises(ValueError, match="no MP4 video track"):
        set_display_rotation(not_mp4, 90)
