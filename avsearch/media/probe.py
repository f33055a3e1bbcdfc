"""Probe a file's facts with PyAV, without decoding it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import av
import numpy as np
from PIL import Image

from avsearch.errors import MediaError
from avsearch.media.container import describe, open_media
from avsearch.types import MediaFile


def probe(path: str | Path) -> MediaFile:
    path = Path(path)
    with open_media(path) as container:
        video = video_stream(container)
        audio = container.streams.audio[0] if container.streams.audio else None
        for stream in (video, audio):
            if stream is not None and stream.codec_context is None:
                # FFmpeg opened the stream but has no decoder for it (PCM at 36/45/53-bit samples in a
                # WAVE_FORMAT_EXTENSIBLE file, an unknown codec tag): nothing of it can be decoded.
                raise MediaError(f"{path}: its {stream.type} stream is in a format FFmpeg has no decoder for; "
                                 "convert the file (e.g. to 16/24-bit PCM WAV, FLAC or AAC)")
        if video is None and audio is None:
            raise MediaError(f"{path}: has no video or audio stream")
        duration = _duration(container, video, audio)
        if duration is None or duration <= 0:
            raise MediaError(f"{path}: duration is unknown or zero (empty or truncated file)")
        st = os.stat(path)
        fps = float(video.average_rate) if video is not None and video.average_rate else None
        width = height = None
        rotation = 0
        if video is not None:
            width, height = video.codec_context.width, video.codec_context.height
            rotation = _rotation(container, video)
            if rotation in (90, 270):
                width, height = height, width  # display size
            if not width or not height:
                raise MediaError(f"{path}: video stream has no frame size")
        return MediaFile(
            path=str(path.absolute()),
            duration_s=float(duration),
            has_video=video is not None,
            has_audio=audio is not None,
            size=int(st.st_size),
            mtime=float(st.st_mtime),
            fps=fps,
            width=width,
            height=height,
            rotation=rotation,
            sample_rate=audio.codec_context.sample_rate if audio is not None else None,
            channels=audio.codec_context.channels if audio is not None else None,
            video_codec=video.codec_context.name if video is not None else None,
            audio_codec=audio.codec_context.name if audio is not None else None,
        )


def video_stream(container) -> Optional[av.video.stream.VideoStream]:
    """The first real video stream: cover art in music files (attached pictures) is not video."""
    for stream in container.streams.video:
        if not (stream.disposition & av.stream.Disposition.attached_pic):
            return stream
    return None


def _duration(container, video, audio) -> Optional[float]:
    candidates = []
    for stream in (video, audio):
        if stream is not None and stream.duration and stream.time_base:
            candidates.append(float(stream.duration * stream.time_base))
    if candidates:
        return max(candidates)
    if container.duration:
        return container.duration / av.time_base
    return _duration_from_packets(container, video or audio)


def _duration_from_packets(container, stream) -> Optional[float]:
    # Some formats (raw streams, damaged headers) carry no duration: read packet times instead.
    end = None
    try:
        for packet in container.demux(stream):
            if packet.pts is not None and packet.time_base:
                t = float((packet.pts + (packet.duration or 0)) * packet.time_base)
                end = t if end is None else max(end, t)
    except av.FFmpegError as err:
        raise MediaError(f"{container.name}: unreadable while measuring duration ({describe(err)})") from None
    start = float(stream.start_time * stream.time_base) if stream.start_time and stream.time_base else 0.0
    return None if end is None else end - start


def frame_rotation(frame: av.VideoFrame) -> int:
    """Clockwise degrees to turn this decoded frame to display it upright."""
    return int(round(-(getattr(frame, "rotation", 0) or 0))) % 360


def turn_upright(rgb: np.ndarray, rotation: int) -> np.ndarray:
    """Decoded pixels (H, W, 3) turned `rotation` degrees clockwise (a multiple of 90, from
    frame_rotation): as the frame is displayed. A view, no copy."""
    return np.rot90(rgb, -(rotation // 90)) if rotation else rgb


def upright_image(frame: av.VideoFrame) -> Image.Image:
    """The frame as an RGB image at its full size, turned as it is displayed. Same pixels as
    frame.to_image(), which copies row by row under the GIL: 24 ms against 0.9 ms for 1080p."""
    return Image.fromarray(np.ascontiguousarray(turn_upright(frame.to_ndarray(format="rgb24"), frame_rotation(frame))))


def _rotation(container, video) -> int:
    """Clockwise degrees to turn decoded frames to display them upright."""
    try:
        for frame in container.decode(video):
            return frame_rotation(frame)
    except av.FFmpegError:
        return 0
    return 0
