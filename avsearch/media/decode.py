"""Streaming decode of clips: frames sampled at a fixed rate, audio as 16 kHz mono float32.

One pass through the file for all its clips: packets of the video and audio streams are demuxed
together, every video frame is decoded (inter-frame codecs need them) but only the sampled ones
are converted to RGB and resized, and audio is resampled as it arrives. A clip is emitted as soon
as its frames and audio are complete, so memory holds about one clip, however long the file.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

import av
import numpy as np

from avsearch.errors import MediaError
from avsearch.media.container import describe, open_media
from avsearch.media.damage import Damage, add_damage
from avsearch.media.probe import frame_rotation, probe, turn_upright, video_stream
from avsearch.media.fields import first_field
from avsearch.media.resize import smart_resize
from avsearch.media.sampled_packets import keyframe_packets, sampled_packets
from avsearch.media.strategy import SKIP_FRAME, choose_strategy
from avsearch.resample import RESAMPLERS, keep_resizing_on_this_thread
from avsearch.types import FRAME_CHOICES, RESIZE_CHOICES, SAMPLE_RATE, Clip, MediaFile, check_choice


@dataclass(frozen=True)
class DecodeOptions:
    fps: float = 2.0  # frames sampled per second of media
    max_pixels: int = 176_400  # WAVE's pixel budget per frame (420²)
    min_pixels: int = 784
    size_factor: int = 28  # frame sides are multiples of this (Qwen2-VL merged patches)
    sample_rate: int = SAMPLE_RATE
    max_frames: int = 128  # per clip (WAVE's cap)
    threads: int = 0  # decoder threads; 0 = FFmpeg's choice
    # FFmpeg threading, None = chosen from skip_frames (decoder_threading): frame threading when
    # every frame or most are decoded, slice threading when only I/P frames or keyframes are.
    thread_type: Optional[str] = None
    # Frames the decoder may skip: "nonref" skips frames nothing refers to (most B-frames), so a
    # 2 fps sample is the nearest decoded frame, a frame or two from its instant; "bidir" skips
    # every B-frame (I/P frames only: ~1 in 3 for x264's defaults, ~100 ms apart at 30 fps) and falls
    # back to "nonref" for the rest of a file once decoded frames come more than half a sampling
    # slot apart; "keyframes" decodes keyframes only (the coarse fast path: one frame per GOP);
    # "none" decodes all.
    skip_frames: str = FRAME_CHOICES[0]
    # How sampled frames reach the model's size (RESIZE_CHOICES). All three are bicubic.
    # "torch": full-size RGB, then PIL's antialiased bicubic through torch's SIMD uint8 kernel
    # (avsearch.resample.bicubic_torch: at most 2 levels of 255 from "pil", on < 1% of pixels; 5-7x
    # faster). "pil": full-size RGB, then PIL itself, exactly WAVE's reference preprocessing.
    # "swscale": scale and convert in one FFmpeg pass (the ffmpeg CLI's way): cheapest, but its
    # pixels differ from the reference's on fine texture (mean 9-15 levels on the ingest
    # benchmark's files).
    resize: str = RESIZE_CHOICES[0]
    # Decode each codec its own way (avsearch.media.strategy): intra-only codecs (ProRes, DNxHD,
    # MJPEG, DV, ...) decode only the packets of sampled frames, the same frames; VP9/AV1 and HEVC
    # skip non-reference frames where "bidir" asks for B-frames; interlaced frames are sampled one
    # field at a time (avsearch.media.fields). False: one way for all, as before (skip_frames and
    # thread_type as set), for comparisons.
    by_codec: bool = True

    def __post_init__(self) -> None:
        check_choice("skip_frames", self.skip_frames, FRAME_CHOICES)
        check_choice("resize", self.resize, RESIZE_CHOICES)


_SKIP_FRAME = SKIP_FRAME  # FFmpeg AVDiscard names
assert set(_SKIP_FRAME) == set(FRAME_CHOICES)


def decoder_threading(options: DecodeOptions) -> str:
    """FFmpeg thread type for these options (ingest benchmark, 2 cores, H.264 30 fps).

    Decoding every frame, frame threading beats slice threading by ~1.4x on 1-slice-per-frame
    files (480p: 1.42 vs 1.97 s). Decoding only I/P frames, the decoded frames are one chain of
    references that frame threads cannot overlap, and the frame threads' per-packet hand-offs
    cost more than they give: slice threading was as fast or faster (480p 1-slice 0.75 vs 1.08 s,
    1080p 2-slice 0.64 vs 0.95 s) and leaves the other core to frame conversion and audio.
    """
    if options.thread_type:
        return options.thread_type
    return "SLICE" if options.skip_frames in ("bidir", "keyframes") else "AUTO"


def sample_times(start_s: float, end_s: float, fps: float, max_frames: int) -> np.ndarray:
    """Uniform sample instants inside [start, end): the middle of each 1/fps slot."""
    duration = end_s - start_s
    n = int(min(max_frames, max(1, round(duration * fps))))
    return start_s + (np.arange(n) + 0.5) * (duration / n)


def read_clip(path: str | Path, start_s: Optional[float] = None, end_s: Optional[float] = None,
              options: DecodeOptions = DecodeOptions(), *, video: bool = True, audio: bool = True) -> Clip:
    media = probe(path)
    start = 0.0 if start_s is None else max(0.0, float(start_s))
    end = media.duration_s if end_s is None else min(float(end_s), media.duration_s)
    if end <= start:
        raise MediaError(f"{path}: the range {start:.2f}–{end:.2f} s is empty (file is {media.duration_s:.2f} s)")
    for clip in iter_clips(path, [(start, end)], options, video=video, audio=audio, media=media):
        return clip
    raise MediaError(f"{path}: nothing could be decoded in {start:.2f}–{end:.2f} s")


def iter_clips(path: str | Path, ranges: Sequence[tuple[float, float]], options: DecodeOptions = DecodeOptions(),
               *, video: bool = True, audio: bool = True, media: Optional[MediaFile] = None,
               wanted: Optional[Callable[[], int]] = None, seek: bool = True,
               damage: Optional[list[Damage]] = None, stall_s: Optional[float] = None) -> Iterator[Clip]:
    """The clips of `ranges` (sorted by start), each as soon as it is complete.

    wanted: how many of the (sorted) ranges are still wanted, asked after every packet; it may
    shrink while decoding (another decoder took the rest, see parallel.py), and decoding then stops
    right after the last wanted clip instead of running on to the next one's end.
    seek: False reads from the file's start even when the first range lies deep in it (for files
    whose seeking fails).
    damage: a list that gets a Damage for each stretch FFmpeg could not decode (corrupt packets are
    skipped, a demuxer error ends the file early); the clips that could be decoded still come. A
    file where damage leaves no clip at all raises MediaError.
    stall_s: decoding that goes on this long without completing a clip (time spent waiting for the
    caller between clips not counted) is cut off with a MediaError: damaged data can make a
    demuxer go round in circles. (A native call that never returns needs the sandbox.)
    """
    media = media or probe(path)
    damage = [] if damage is None else damage
    ranges = sorted((float(a), float(b)) for a, b in ranges)
    if not ranges:
        return
    with open_media(path) as container:
        vstream = video_stream(container) if video and media.has_video else None
        astream = (container.streams.audio[0] if container.streams.audio else None) if audio and media.has_audio else None
        if vstream is None and astream is None:
            raise MediaError(f"{path}: none of the requested streams (video={video}, audio={audio}) exist")
        strategy = choose_strategy(vstream.codec_context.name, options) if vstream is not None else None
        if vstream is not None:
            vstream.thread_type = strategy.thread_type
            vstream.codec_context.skip_frame = strategy.skip_frame
            if options.threads:
                vstream.thread_count = options.threads
        seek = seek and ranges[0][0] > 5.0  # a range deep in a file: seek instead of decoding from 0
        # After a seek, sound is resampled on the grid of a decode from the stream's first sample.
        audio_origin = (astream.start_time or 0) if seek and astream is not None else None
        state = _State(media, ranges, options, vstream is not None, astream is not None, audio_origin)
        state.time_zero = _sound_only_start(media, astream)
        streams = [s for s in (vstream, astream) if s is not None]
        try:
            if seek:
                container.seek(int((max(0.0, ranges[0][0] - 1.0) + state.time_zero) * av.time_base), any_frame=False,
                               backward=True)
            coarse_skip = strategy is not None and strategy.widen_skip
            packets = container.demux(*streams)
            if strategy is not None and strategy.drop_unsampled:
                packets = sampled_packets(packets, vstream, state.is_taken)
            if strategy is not None and strategy.keyframe_packets:
                packets = keyframe_packets(packets, vstream)
            progress = time.monotonic()
            while True:
                if stall_s is not None and time.monotonic() - progress > stall_s:
                    raise MediaError(f"{path}: decoding it made no progress for {stall_s:g} s ({_where(state)}) and "
                                     "was cut off; check the file or re-encode it")
                try:
                    packet = next(packets)
                except StopIteration:
                    # A file that ends well before its declared duration was cut short: the clips
                    # past its end would only repeat the last frame, so they are left out.
                    until = state.decoded_until()
                    if until < state.wanted_end() - (_EARLY_END_S + state.widest_gap):
                        lost = state.stop_at(until)
                        if lost is not None:
                            add_damage(damage, Damage(lost[0], lost[1], "the file ends early: cut short?"))
                    break
                except av.FFmpegError as err:
                    # The demuxer lost its way (a cut file, a damaged index): what follows is out of
                    # reach. The clips decoded so far stay; the rest is recorded as damaged.
                    lost = state.stop_at(state.decoded_until())
                    if lost is not None:
                        add_damage(damage, Damage(lost[0], lost[1], describe(err)))
                    break
                try:
                    frames = packet.decode()
                except av.FFmpegError as err:
                    # A corrupt packet: the decoder conceals it and goes on with the next one (as
                    # the ffmpeg CLI does), so one bad packet costs a few frames, not the file.
                    add_damage(damage, _packet_damage(packet, state, describe(err)))
                    continue
                for frame in frames:
                    if packet.stream is vstream:
                        if options.by_codec and frame.interlaced_frame:
                            state.field_order = vstream.codec_context.field_order
                        state.on_video(frame)
                        if coarse_skip and state.widest_gap > 0.5 / options.fps:
                            # Decoded frames came further apart than half a sampling slot (long
                            # B-frame runs, a low frame rate): decode the B-frames others refer to.
                            vstream.codec_context.skip_frame = _SKIP_FRAME["nonref"]
                            coarse_skip = False
                    else:
                        state.on_audio(frame)
                for clip in state.ready():
                    yield clip
                    progress = time.monotonic()  # the time the caller kept us waiting is not ours
                if state.all_done() or (wanted is not None and state.next_clip >= wanted()):
                    return
            state.finish()
            yield from state.ready()
            if not state.emitted and damage:
                raise MediaError(f"{path}: nothing could be decoded ({damage[-1].reason})")
        except av.FFmpegError as err:
            yield from state.ready()
            raise MediaError(f"{path}: decoding failed {_where(state)} ({describe(err)})") from None
        finally:
            state.close()


def _sound_only_start(media: MediaFile, astream) -> float:
    """Media time of a sound-only file's first sample, which its clip times count from.

    Players and the ffmpeg CLI start such a file at its first sample, but its stream may be stamped
    later: an MP3's decoder drops the encoder delay (LAME's gapless header) and stamps the first
    sample 25 ms in; an MPEG-TS starts wherever its clock stood. Taken as 0, every clip's sound came
    that much late. Files with video keep the stream times, which keep sound and picture together.
    """
    if media.has_video or astream is None or not astream.start_time or not astream.time_base:
        return 0.0
    return max(0.0, float(astream.start_time * astream.time_base))


# How far before its declared end a file's decoding may stop and still count as whole: streams end
# a little apart, and the last frame of a video covers the time up to the next (widest_gap adds it).
_EARLY_END_S = 2.0


def _packet_damage(packet: av.Packet, state: "_State", reason: str) -> Damage:
    if packet.pts is not None and packet.time_base:
        # Clamped at 0: audio packets may start before it (encoder priming), and a negative time
        # in a message reads as a bug.
        start = float(packet.pts * packet.time_base)
        end = start + float((packet.duration or 0) * packet.time_base)
        return Damage(max(0.0, start), max(0.0, end), reason)
    at = max(0.0, state.decoded_until())
    return Damage(at, at, reason)


def _where(state: "_State") -> str:
    until = state.decoded_until()
    return f"after {until:.1f} s" if until >= 0 else "before anything was decoded"


def _aligned(frame: av.AudioFrame, origin_pts: int, out_rate: int) -> Optional[av.AudioFrame]:
    """`frame` without its first samples, so that it starts on the resampling grid of a decode
    from `origin_pts`: a sample whose distance from the origin is a multiple of
    in_rate / gcd(in_rate, out_rate) (3 for 48 kHz -> 16 kHz, 441 for 44.1 kHz). The resampler then
    computes the same output samples as in an unbroken decode, once its filter has filled (within
    the 1 s before the first clip). None when the whole frame is to be dropped."""
    rate = frame.sample_rate
    if frame.pts is None or frame.time_base is None or frame.time_base * rate != 1:
        return frame  # no sample-exact position to align on
    step = rate // math.gcd(rate, out_rate)
    drop = (-(frame.pts - origin_pts)) % step
    if drop == 0:
        return frame
    if drop >= frame.samples:
        return None
    data = frame.to_ndarray()
    kept = data[:, drop:] if frame.format.is_planar else data[:, drop * len(frame.layout.channels):]
    out = av.AudioFrame.from_ndarray(np.ascontiguousarray(kept), format=frame.format.name, layout=frame.layout.name)
    out.sample_rate, out.time_base, out.pts = rate, frame.time_base, frame.pts + drop
    return out


def _converter(options: DecodeOptions):
    from concurrent.futures import ThreadPoolExecutor

    setup = keep_resizing_on_this_thread if options.resize == "torch" else None
    # One helper: a second one measured no faster on 2 cores (the decoder's threads use them).
    return ThreadPoolExecutor(1, thread_name_prefix="frame-convert", initializer=setup)


class _State:
    """Assembles clips from frames and audio as they come out of the decoders."""

    def __init__(self, media: MediaFile, ranges, options: DecodeOptions, want_video: bool, want_audio: bool,
                 audio_origin: Optional[int] = None):
        self.media = media
        self.options = options
        self.ranges = ranges
        self.want_video = want_video
        self.want_audio = want_audio
        self.next_clip = 0
        self.emitted = 0  # clips handed out
        self.times = [sample_times(a, b, options.fps, options.max_frames) for a, b in ranges]
        self.frames: list[list[np.ndarray]] = [[] for _ in ranges]
        self.last_frame: Optional[av.VideoFrame] = None
        self.last_frame_t = -1.0
        self.widest_gap = 0.0  # largest time between two decoded video frames so far
        self.video_ended = not want_video
        self.audio_ended = not want_audio
        # Output in 1 s frames: one array conversion a second instead of one per codec frame (AAC:
        # 47 a second), ~10% of a 480p file's decode time; the samples are the same.
        self.resampler = (av.AudioResampler(format="flt", layout="mono", rate=options.sample_rate,
                                            frame_size=options.sample_rate) if want_audio else None)
        self.audio_start: Optional[float] = None  # media time of self.audio[0]
        self.audio = np.zeros(0, dtype=np.float32)
        self._audio_chunks: list[np.ndarray] = []  # appended cheaply, joined when a clip takes audio
        self._chunked = 0
        self.frame_size: Optional[tuple[int, int]] = None
        self.out: list[Clip] = []
        # Sampled frames are converted (full-size RGB + bicubic resize: ~3 ms at 480p with torch's
        # kernel, ~12 ms with PIL's) on a helper thread while this one keeps decoding; both
        # release the GIL for their C work.
        self._convert = _converter(options) if want_video else None
        self._submitted: Optional[tuple[av.VideoFrame, object]] = None  # last frame sent, its future
        self._audio_origin = audio_origin  # after a seek: the pts whose resampling grid to keep (_aligned)
        self.field_order: Optional[int] = None  # set for interlaced frames: sample one field (fields.py)
        self.time_zero = 0.0  # media time of clip time 0 (_sound_only_start)

    # -- inputs ----------------------------------------------------------------------------

    def on_video(self, frame: av.VideoFrame) -> None:
        t = frame.time if frame.time is not None else self.last_frame_t + 1e-3
        # Fill every sample instant this frame is the best (nearest-earlier) answer for.
        for i in range(self.next_clip, len(self.ranges)):
            times = self.times[i]
            got = self.frames[i]
            while len(got) < len(times) and times[len(got)] <= t:
                chosen = frame if self.last_frame is None or abs(t - times[len(got)]) < abs(times[len(got)] - self.last_frame_t) else self.last_frame
                got.append(self._submit(chosen))
            if len(got) < len(times):
                break
        if self.last_frame is not None:
            self.widest_gap = max(self.widest_gap, t - self.last_frame_t)
        self.last_frame, self.last_frame_t = frame, t

    def is_taken(self, prev_t: Optional[float], t: float, next_t: Optional[float]) -> bool:
        """Whether on_video would take a frame at `t` for some wanted instant, given the frames
        before and after it (at prev_t and next_t; None: there is none) were decoded too. The same
        rule as on_video: an instant takes the nearer of the frames around it, the earlier on a tie."""
        for i in range(self.next_clip, len(self.ranges)):
            if next_t is not None and self.ranges[i][0] > next_t:
                break  # ranges are sorted by start: no later clip has an instant before next_t
            times = self.times[i]
            lo = 0 if prev_t is None else int(np.searchsorted(times, prev_t, side="right"))
            hi = len(times) if next_t is None else int(np.searchsorted(times, next_t, side="right"))
            for s in times[lo:hi]:
                if s <= t:  # this frame is the later one around s
                    if prev_t is None or t - s < s - prev_t:
                        return True
                elif next_t is None or not next_t - s < s - t:  # the earlier one
                    return True
        return False

    def on_audio(self, frame: av.AudioFrame) -> None:
        if self.audio_start is None:
            if self._audio_origin is not None:
                frame = _aligned(frame, self._audio_origin, self.options.sample_rate)
                if frame is None:
                    return
            self.audio_start = float(frame.time) - self.time_zero if frame.time is not None else 0.0
        for out in self.resampler.resample(frame):
            self._append_audio(out)

    def finish(self) -> None:
        """End of file: pad missing frames with the last one, flush the resampler."""
        self.video_ended = self.audio_ended = True
        if self.want_video and self.last_frame is not None:
            for i in range(self.next_clip, len(self.ranges)):
                while len(self.frames[i]) < len(self.times[i]):
                    self.frames[i].append(self._submit(self.last_frame))
        if self.resampler is not None:
            for out in self.resampler.resample(None):
                self._append_audio(out)

    # -- outputs ---------------------------------------------------------------------------

    def ready(self):
        while self.next_clip < len(self.ranges) and self._complete(self.next_clip):
            yield self._emit(self.next_clip)
            self.next_clip += 1
            self.emitted += 1

    def stop_at(self, t: float) -> Optional[tuple[float, float]]:
        """Nothing after media time `t` can be read: ranges starting at or after it get no clip.
        The lost stretch (start, end), or None if nothing wanted was lost."""
        t = max(0.0, t)
        if not self.ranges:
            return None
        keep = max(self.next_clip, sum(1 for a, _ in self.ranges if a < t))
        if keep == len(self.ranges) and self.ranges[-1][1] <= t:
            return None
        lost = (t, self.ranges[-1][1])
        del self.ranges[keep:], self.times[keep:], self.frames[keep:]
        return lost

    def wanted_end(self) -> float:
        return self.ranges[-1][1] if self.ranges else 0.0

    def all_done(self) -> bool:
        return self.next_clip >= len(self.ranges)

    def decoded_until(self) -> float:
        return max(self.last_frame_t, self._audio_end())

    def _complete(self, i: int) -> bool:
        start, end = self.ranges[i]
        video_ok = not self.want_video or len(self.frames[i]) == len(self.times[i])
        audio_ok = not self.want_audio or self.audio_ended or self._audio_end() >= end
        return video_ok and audio_ok

    def _emit(self, i: int) -> Clip:
        start, end = self.ranges[i]
        frames = None
        if self.want_video:
            if not self.frames[i]:
                raise MediaError(f"{self.media.path}: no video frame decoded for {start:.1f}–{end:.1f} s")
            frames = np.stack([f.result() for f in self.frames[i]])
            self.frames[i] = []
        audio = None
        if self.want_audio:
            audio = self._take_audio(start, end)
        fps = len(frames) / (end - start) if frames is not None else self.options.fps
        return Clip(self.media.path, start, end, frames, fps, audio, self.options.sample_rate)

    # -- helpers ---------------------------------------------------------------------------

    def _to_rgb(self, frame: av.VideoFrame, field_order: Optional[int] = None) -> np.ndarray:
        h, w = self.frame_size
        if self.options.resize == "swscale" and field_order is None:
            rotation = frame_rotation(frame)
            sw, sh = (h, w) if rotation in (90, 270) else (w, h)  # scale before turning upright
            rgb = frame.to_ndarray(width=sw, height=sh, format="rgb24", interpolation="BICUBIC")
            return np.ascontiguousarray(turn_upright(rgb, rotation))
        # Upright first, then resize, as the reference does.
        rgb = frame.to_ndarray(format="rgb24")
        if field_order is not None:
            rgb = first_field(rgb, field_order)
        rgb = turn_upright(rgb, frame_rotation(frame))
        resample = RESAMPLERS.get(self.options.resize, RESAMPLERS["torch"])  # a field in "swscale" mode: torch's
        return rgb if rgb.shape[:2] == (h, w) else resample(rgb, h, w)

    def close(self) -> None:
        if self._convert is not None:
            self._convert.shutdown(wait=True, cancel_futures=True)

    def _submit(self, frame: av.VideoFrame):
        if self.frame_size is None:
            self.frame_size = self._target_size(frame)
        # The same decoded frame answers several sample instants when frames are sparser than the
        # sampling (keyframe-only decoding, slideshows, a 1-frame video): convert it once.
        if self._submitted is not None and self._submitted[0] is frame:
            return self._submitted[1]
        field_order = self.field_order if frame.interlaced_frame else None
        args = (frame,) if field_order is None else (frame, field_order)
        future = self._convert.submit(self._to_rgb, *args)
        self._submitted = (frame, future)
        return future

    def _target_size(self, frame: av.VideoFrame) -> tuple[int, int]:
        turned = frame_rotation(frame) in (90, 270)
        height, width = (frame.width, frame.height) if turned else (frame.height, frame.width)
        return smart_resize(height, width, factor=self.options.size_factor,
                            min_pixels=self.options.min_pixels, max_pixels=self.options.max_pixels)

    def _append_audio(self, frame: av.AudioFrame) -> None:
        samples = frame.to_ndarray().reshape(-1).astype(np.float32, copy=False)
        self._audio_chunks.append(samples)
        self._chunked += len(samples)

    def _join_audio(self) -> None:
        if self._audio_chunks:
            self.audio = np.concatenate([self.audio, *self._audio_chunks])
            self._audio_chunks, self._chunked = [], 0

    def _audio_end(self) -> float:
        if self.audio_start is None:
            return -1.0
        return self.audio_start + (len(self.audio) + self._chunked) / self.options.sample_rate

    def _take_audio(self, start: float, end: float) -> np.ndarray:
        self._join_audio()
        sr = self.options.sample_rate
        n = max(1, int(round((end - start) * sr)))
        out = np.zeros(n, dtype=np.float32)
        if self.audio_start is not None:
            a = int(round((start - self.audio_start) * sr))
            src_a, dst_a = max(a, 0), max(-a, 0)
            take = min(n - dst_a, len(self.audio) - src_a)
            if take > 0:
                out[dst_a : dst_a + take] = self.audio[src_a : src_a + take]
            # Drop what no later clip needs (clips are in order and do not overlap).
            cut = int(round((end - self.audio_start) * sr))
            if cut > 0:
                self.audio = self.audio[cut:]
                self.audio_start += cut / sr
        return out
