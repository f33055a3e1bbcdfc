"""Decoding one file's clips on several threads: consecutive segments of clips, each decoded by its
own decoder (seeking to the keyframe before it), clips handed back in order.

Decoding only I/P frames is a chain of references that one decoder runs serially, so on small
frames (480p) that chain, not the CPU, limits a single file's speed; decoding two segments at once
uses the second core. The indexer does this for a file indexed on its own (with several files,
its decode workers already keep the cores busy).

Frames are the same as `iter_clips` gives (each segment starts decoding at a keyframe at least 1 s
before its first clip). Audio too, to float rounding (< 1e-4; 9e-8 to 8e-5 on the ingest
benchmark's files): each segment's resampler starts on the sample grid of a decode from the file's
start (see decode._aligned; without that, 48 kHz sound came out shifted by up to a source sample).
"""

from __future__ import annotations

import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator, Optional, Sequence

from avsearch.errors import MediaError
from avsearch.media.decode import DecodeOptions, iter_clips
from avsearch.media.probe import probe
from avsearch.types import Clip, MediaFile

SEGMENT_S = 30.0  # media per segment: memory holds about (workers + 1) segments of clips


def segments_of(ranges: Sequence[tuple[float, float]], segment_s: float = SEGMENT_S) -> list[list[tuple[float, float]]]:
    """Consecutive clip ranges grouped until a group spans at least `segment_s`."""
    groups: list[list[tuple[float, float]]] = []
    for r in sorted(ranges):
        if not groups or groups[-1][-1][1] - groups[-1][0][0] >= segment_s:
            groups.append([])
        groups[-1].append(r)
    return groups


def iter_clips_parallel(path: str | Path, ranges: Sequence[tuple[float, float]],
                        options: DecodeOptions = DecodeOptions(), *, workers: int = 2,
                        segment_s: float = SEGMENT_S, video: bool = True, audio: bool = True,
                        media: Optional[MediaFile] = None) -> Iterator[Clip]:
    """`iter_clips` with up to `workers` segments decoded at once; clips come in order.

    A segment that fails ends the iteration where `iter_clips` would: its clips decoded before the
    error are yielded, then its MediaError is raised; later segments are discarded.
    """
    media = media or probe(path)
    groups = segments_of(ranges, segment_s)
    if workers <= 1 or len(groups) < 2 or not (video and media.has_video):
        yield from iter_clips(path, ranges, options, video=video, audio=audio, media=media)
        return
    stop = threading.Event()

    def decode(group: list[tuple[float, float]]) -> tuple[list[Clip], Optional[MediaError]]:
        clips: list[Clip] = []
        try:
            for clip in iter_clips(path, group, options, video=video, audio=audio, media=media):
                if stop.is_set():
                    break
                clips.append(clip)
        except MediaError as err:
            return clips, err
        return clips, None

    pool = ThreadPoolExecutor(workers, thread_name_prefix="segment-decode")
    try:
        pending = deque(pool.submit(decode, g) for g in groups[:workers])
        queued = len(pending)
        while pending:
            clips, error = pending.popleft().result()
            if queued < len(groups):
                pending.append(pool.submit(decode, groups[queued]))
                queued += 1
            yield from clips
            if error is not None:
                raise error
    finally:
        stop.set()  # a consumer that stops early: running segments end at their next clip
        pool.shutdown(wait=True, cancel_futures=True)
