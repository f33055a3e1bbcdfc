"""Single frames (thumbnails) and cut-outs of a time range (exports)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from avsearch.errors import MediaError
from avsearch.media.container import describe, open_media
from avsearch.media.encode import encode_audio
from avsearch.media.probe import probe, video_stream


def extract_frame(path: str | Path, t_s: float, *, max_side: int = 320) -> np.ndarray:
    """The RGB frame shown at about `t_s`, upright, its longer side at most `max_side`."""
    with open_media(path) as container:
        stream = video_stream(container)
        if stream is None:
            raise MediaError(f"{path}: has no video to take a frame from")
        container.seek(int(max(0.0, t_s) * av.time_base), any_frame=False, backward=True)
        chosen = None
        try:
            for frame in container.decode(stream):
                chosen = frame
                if frame.time is not None and frame.time >= t_s:
                    break
        except av.FFmpegError as err:
            if chosen is None:
                raise MediaError(f"{path}: cannot decode a frame at {t_s:.1f} s ({describe(err)})") from None
        if chosen is None:
            raise MediaError(f"{path}: no frame at {t_s:.1f} s")
        image = chosen.to_image()
        rotation = int(round(-(chosen.rotation or 0))) % 360
        if rotation:
            image = image.rotate(-rotation, expand=True)
    image.thumbnail((max_side, max_side), Image.BICUBIC)
    return np.asarray(image)


def export_range(path: str | Path, start_s: float, end_s: float, out_path: str | Path) -> Path:
    """Cut [start_s, end_s) into its own file.

    Re-encodes (H.264 + AAC in MP4 for video, FLAC for audio) so the cut starts exactly at
    start_s rather than at the keyframe before it.
    """
    media = probe(path)
    out_path = Path(out_path)
    if not media.has_video:
        out_path = out_path.with_suffix(".flac")
    elif out_path.suffix.lower() not in (".mp4", ".mov", ".mkv"):
        out_path = out_path.with_suffix(".mp4")
    from avsearch.media.decode import DecodeOptions, iter_clips

    # Full-resolution frames at the source rate for video; audio at its own rate.
    fps = min(media.fps or 25.0, 60.0)
    opts = DecodeOptions(fps=fps, max_pixels=max(784, (media.width or 28) * (media.height or 28)),
                         max_frames=10**9, sample_rate=media.sample_rate or 48_000)
    clip = next(iter_clips(path, [(start_s, min(end_s, media.duration_s))], opts, media=media))
    with av.open(str(out_path), "w") as out:
        vs = as_ = None
        if clip.frames is not None:
            vs = out.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4",
                                rate=Fraction(fps).limit_denominator(1001))
            vs.width, vs.height = clip.frames.shape[2] // 2 * 2, clip.frames.shape[1] // 2 * 2
            vs.pix_fmt = "yuv420p"
        if clip.audio is not None:
            as_ = out.add_stream("aac" if clip.frames is not None else "flac", rate=opts.sample_rate, layout="mono")
        if vs is not None:
            for img in clip.frames:
                frame = av.VideoFrame.from_ndarray(img[: vs.height, : vs.width], format="rgb24")
                for packet in vs.encode(frame):
                    out.mux(packet)
            for packet in vs.encode(None):
                out.mux(packet)
        if as_ is not None:
            encode_audio(out, as_, clip.audio[None, :], opts.sample_rate, "mono")
    return out_path
