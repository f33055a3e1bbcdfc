"""How to decode a video stream, chosen from its codec: what to skip, and which threads to use.

The 2 fps sample needs few of a file's frames; what a decoder may leave out depends on the codec:

* intra-only codecs (ProRes, DNxHD/DNxHR, Motion JPEG, DV, JPEG 2000, rawvideo, ...: every frame
  stands alone, FFmpeg's codec descriptor says so): only the packets whose frames are sampled go to
  the decoder (`sampled_packets`), one in 12-30 at 25-60 fps; the others are dropped unread. The
  sampled frames are exactly those of decoding every frame. FFmpeg's "AUTO" threads (frame threads
  where the decoder has them) decode the sampled frames side by side: nothing links them.
* VP9 and AV1 (no B-frames for `skip_frames="bidir"` to skip): non-reference frames are skipped
  instead (AV1's hierarchical layers: 111 of 300 frames of SVT-AV1's; libvpx marks none, and
  FFmpeg's VP9 decoder ignores skip_frame anyway, so "keyframes" drops packets before it). VP9
  keeps slice (tile) threads: frame threads measured slower on 2 shared cores (1080p 0.86x the CLI
  against 1.26-1.39x, benchmarks/results/codecs-vp9-av1.md); dav1d (AV1) runs its own threads.
* everything else (H.264, HEVC, MPEG-2, MPEG-4, ...): the B-frame skipping and threading of
  `DecodeOptions.skip_frames` (decode.decoder_threading), as measured in benchmarks/ingest.py;
  except that HEVC skips only non-reference frames where "bidir" asks for all B-frames (x265
  codes P-pictures as B-slices).
"""

from __future__ import annotations

from dataclasses import dataclass

import av

# FFmpeg AVDiscard names for DecodeOptions.skip_frames
SKIP_FRAME = {"none": "DEFAULT", "nonref": "NONREF", "bidir": "BIDIR", "keyframes": "NONKEY"}

# Inter-frame codecs without B-frames (what they can skip is non-reference frames).
NO_B_FRAMES = frozenset({"vp9", "av1", "libdav1d"})


@dataclass(frozen=True)
class Strategy:
    """What iter_clips does with one video stream."""

    family: str  # "intra-only", "no-b-frames" or "b-frames": for logs and benchmarks
    thread_type: str  # FFmpeg thread type: "AUTO" (frame + slice), "FRAME" or "SLICE"
    skip_frame: str  # FFmpeg AVDiscard name
    drop_unsampled: bool  # give the decoder only the packets of sampled frames (intra-only codecs)
    widen_skip: bool  # "bidir": fall back to "nonref" when decoded frames come too far apart
    keyframe_packets: bool = False  # give the decoder only keyframe packets ("keyframes" where skip_frame is ignored)


def is_intra_only(codec_name: str) -> bool:
    """True when every frame of this codec decodes on its own (FFmpeg's AV_CODEC_PROP_INTRA_ONLY)."""
    try:
        return bool(av.Codec(codec_name, "r").intra_only)
    except (av.FFmpegError, ValueError, KeyError):
        return False  # a codec PyAV does not know: assume frames depend on each other


def choose_strategy(codec_name: str, options) -> Strategy:
    """The strategy for a stream of `codec_name` under DecodeOptions `options`.

    `options.by_codec=False` gives the one strategy for every codec that came before this module
    (B-frame skipping, threads from decoder_threading), for comparisons. An explicit
    `options.thread_type` always wins.
    """
    from avsearch.media.decode import decoder_threading

    skip = SKIP_FRAME[options.skip_frames]
    if not options.by_codec:
        return Strategy("b-frames", decoder_threading(options), skip, False, options.skip_frames == "bidir")
    if is_intra_only(codec_name):
        # Skipping frames means nothing here (all are keyframes): decode what is given, every frame.
        return Strategy("intra-only", options.thread_type or "AUTO", "DEFAULT", True, False)
    if codec_name in NO_B_FRAMES:
        # No B-frames: "bidir" means "nonref" (frames no other frame refers to, e.g. AV1's
        # hierarchical layers), and "keyframes" still means keyframes.
        skip = SKIP_FRAME["nonref"] if options.skip_frames == "bidir" else skip
        # FFmpeg's VP9 decoder ignores skip_frame: it decoded all 300 frames of a 10 s file asked for
        # keyframes only (dav1d's AV1 decoded 2). So "keyframes" drops the other packets before it.
        by_packets = codec_name == "vp9" and options.skip_frames == "keyframes"
        return Strategy("no-b-frames", options.thread_type or "SLICE", skip, False, False, by_packets)
    if codec_name == "hevc" and options.skip_frames == "bidir":
        # FFmpeg's "bidir" discards B-slices, and x265 (like many HEVC encoders) codes its P-pictures
        # as B-slices: "bidir" left only the keyframes, every sample in a GOP showing the same frame
        # (tests/test_codec_strategies.py). Non-reference frames are what can go.
        return Strategy("b-frames", options.thread_type or "AUTO", SKIP_FRAME["nonref"], False, False)
    return Strategy("b-frames", decoder_threading(options), skip, False, options.skip_frames == "bidir")
