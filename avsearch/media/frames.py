"""Single frames (thumbnails) and cut-outs of a time range (exports)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from avsearch.errors import MediaError
from avsearch.media.container import describe, open_media
from avsearch.media.encode import AudioSink
from avsearch.media.probe import probe, upright_image, video_stream
from avsearch.media.spectrogram import spectrogram_tile


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
        image = upright_image(chosen)
    image.thumbnail((max_side, max_side), Image.BICUBIC)
    return np.asarray(image)


def range_picture(path: str | Path, start_s: float, end_s: float, *, max_side: int = 320) -> np.ndarray:
    """A picture of a time range of a file (RGB, longer side at most `max_side`): its middle frame,
    or for a file without video a spectrogram of the range's sound, so sound-only hits are shown
    by what they sound like rather than by a blank tile."""
    if probe(path).has_video:
        return extract_frame(path, (start_s + end_s) / 2, max_side=max_side)
    from avsearch.media.decode import read_clip

    audio = read_clip(path, start_s, end_s, video=False).audio
    return np.asarray(spectrogram_tile(audio, (max_side, max_side * 9 // 16)))


COPY_TOLERANCE_S = 0.5  # a stream copy may start this much before the asked start (at a keyframe)
_EXPORT_PIECE_S = 2.0  # re-encode works through the range in pieces: memory holds ~2 s of frames


def export_range(path: str | Path, start_s: float, end_s: float, out_path: str | Path, *,
                 mode: str = "auto") -> Path:
    """Cut [start_s, end_s) into its own file; returns the path written.

    mode "auto": stream copy (no quality loss, fast) when a keyframe lies at most
    COPY_TOLERANCE_S before start_s -- always true for audio-only files -- else re-encode
    (H.264 + AAC in MP4, FLAC for audio-only) so the cut starts at start_s exactly.
    "copy" and "encode" force one way ("copy" raises MediaError when it cannot).
    """
    if mode not in ("auto", "copy", "encode"):
        raise ValueError(f"mode {mode!r}: choose auto, copy or encode")
    media = probe(path)
    end_s = min(end_s, media.duration_s)
    if end_s <= start_s:
        raise MediaError(f"{path}: the range {start_s:.2f}-{end_s:.2f} s is empty (file is {media.duration_s:.2f} s)")
    out_path = Path(out_path)
    if mode != "encode":
        copied = _stream_copy(path, start_s, end_s, out_path, media)
        if copied is not None:
            return copied
        if mode == "copy":
            raise MediaError(f"{path}: no keyframe within {COPY_TOLERANCE_S} s before {start_s:.2f} s; "
                             "a stream copy would start too early (use re-encoding)")
    return _reencode(path, start_s, end_s, out_path, media)


def _copy_suffix(path: Path, media) -> str:
    src = Path(path).suffix.lower()
    if media.has_video:
        return ".mkv" if src in (".mkv", ".webm") else ".mp4"
    return {".wav": ".wav", ".flac": ".flac", ".mp3": ".mp3", ".ogg": ".ogg", ".opus": ".ogg"}.get(src, ".m4a")


def _stream_copy(path, start_s: float, end_s: float, out_path: Path, media) -> Path | None:
    """Remux the packets of [keyframe <= start_s, end_s) without decoding; None when not possible."""
    out_path = out_path.with_suffix(_copy_suffix(Path(path), media))
    try:
        with open_media(path) as inp:
            vin = video_stream(inp) if media.has_video else None
            ain = inp.streams.audio[0] if inp.streams.audio else None
            streams = [s for s in (vin, ain) if s is not None]
            if not streams or (vin is None and ain.codec_context.name.startswith("pcm_") and out_path.suffix != ".wav"):
                return None
            if vin is None and ain.codec_context.name == "flac":
                return None  # the FLAC muxer keeps the source's total length in its header; re-encoding is lossless
            inp.seek(int(max(0.0, start_s) * av.time_base), any_frame=False, backward=True)
            packets, origin = [], None
            for packet in inp.demux(*streams):
                if packet.dts is None or packet.pts is None:
                    continue
                t = float(packet.pts * packet.time_base)
                if origin is None:
                    if packet.stream is not (vin or ain):
                        continue  # start at the first video keyframe (or first audio packet)
                    if vin is not None and not packet.is_keyframe:
                        return None
                    if start_s - t > COPY_TOLERANCE_S:
                        return None
                    origin = t
                if t >= end_s:
                    if packet.stream is (vin or ain):
                        break
                    continue
                if t < origin - 1e-3:
                    continue
                packets.append(packet)
            if origin is None or not packets:
                return None
            tmp = out_path.with_name(out_path.name + ".part" + out_path.suffix)
            with av.open(str(tmp), "w") as out:
                mapping = {s.index: out.add_stream_from_template(s) for s in streams}
                for packet in packets:
                    shift = int(round(origin / packet.time_base))
                    packet.pts -= shift
                    packet.dts -= shift
                    packet.stream = mapping[packet.stream.index]
                    out.mux(packet)
            tmp.replace(out_path)
            return out_path
    except (av.FFmpegError, ValueError, TypeError, AttributeError):
        return None  # an odd codec or container for copying: re-encode instead


def _reencode(path, start_s: float, end_s: float, out_path: Path, media) -> Path:
    if not media.has_video:
        out_path = out_path.with_suffix(".flac")
    elif out_path.suffix.lower() not in (".mp4", ".mov", ".mkv"):
        out_path = out_path.with_suffix(".mp4")
    from avsearch.media.decode import DecodeOptions, iter_clips

    # Full-resolution frames at the source rate (every frame decoded); audio at its own rate.
    fps = min(media.fps or 25.0, 60.0)
    opts = DecodeOptions(fps=fps, max_pixels=max(784, (media.width or 28) * (media.height or 28)),
                         max_frames=10**9, sample_rate=media.sample_rate or 48_000, skip_frames="none",
                         by_codec=False)  # whole frames, both fields: an export is for watching
    pieces, t = [], start_s
    while t < end_s - 1e-6:
        pieces.append((t, min(end_s, t + _EXPORT_PIECE_S)))
        t = pieces[-1][1]
    tmp = out_path.with_name(out_path.name + ".part" + out_path.suffix)
    vs = as_ = sink = None
    with av.open(str(tmp), "w") as out:
        for clip in iter_clips(path, pieces, opts, media=media):
            if vs is None and as_ is None:
                if clip.frames is not None:
                    vs = out.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4",
                                        rate=Fraction(fps).limit_denominator(1001))
                    vs.width, vs.height = clip.frames.shape[2] // 2 * 2, clip.frames.shape[1] // 2 * 2
                    vs.pix_fmt = "yuv420p"
                if clip.audio is not None:
                    as_ = out.add_stream("aac" if clip.frames is not None else "flac", rate=opts.sample_rate,
                                         layout="mono")
                    sink = AudioSink(out, as_, opts.sample_rate, "mono", step=4096)
            if vs is not None and clip.frames is not None:
                for img in clip.frames:
                    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img[: vs.height, : vs.width]), format="rgb24")
                    for packet in vs.encode(frame):
                        out.mux(packet)
            if sink is not None and clip.audio is not None:
                sink.write(clip.audio[None, :])
        if vs is not None:
            for packet in vs.encode(None):
                out.mux(packet)
        if sink is not None:
            sink.close()
    tmp.replace(out_path)
    return out_path
