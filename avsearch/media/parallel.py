"""Decoding many files' clips on a few threads, splitting a long file when a thread runs idle.

Each decode worker takes the next file and decodes it from start to end with one decoder
(`iter_clips`). A worker that finds no file left does not sit idle while another still has a long
way to go: it takes the second half of what remains of the running file with the most media left
(its own decoder, seeking to the keyframe before that half), and the other worker stops where the
half begins. So a file indexed on its own is decoded by every worker from the start, and the last
long file of a folder no longer finishes on one core while the others wait.

Why split only then, and not cut every file into segments up front: a split costs a seek, a
container open and the decoding from the keyframe before the split point (up to a GOP: ~8 s of I/P
frames at x264's defaults), which buys nothing while other files keep every worker busy.

A split-off part that fails (its seek, say) is read once more from the file's start before the
file is reported failed: a file that decodes must not fail because it was split.

Clips are handed back as they are decoded, tagged with their file and range index, so clips of one
file may come out of order (the consumer keys them by index). Frames are the same as one decoder
gives; sound too, to float rounding (< 1e-4; see decode._aligned).
"""

from __future__ import annotations

import os
import queue
import threading
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional, Sequence

from avsearch.media.damage import Damage, merged
from avsearch.media.decode import DecodeOptions, iter_clips
from avsearch.media.sandbox import STALL_S, shared_sandbox
from avsearch.types import Clip, MediaFile

# A running file is split only when both parts keep at least this much media. Each split costs a
# seek and up to a GOP of extra decoding; 15 s measured no better than 30 s on this project's 2-core
# machine (benchmarks/results/ingest-reading.md), so the cheaper, rarer splits stay.
MIN_SPLIT_S = 30.0


def default_decode_workers(cpus: Optional[int] = None) -> int:
    """Decode workers for this machine: half its CPUs, at least 2 and at most 4.

    Measured (benchmarks/results/decode_workers*.md, ingest-reading.md): on 2 cores, 3 or 4 workers
    were slower than 2 (each decoder already keeps most of a core busy beside its conversion
    thread); on 16 cores, 4 workers decoded 1080p 1.60x as fast as 2 (74 vs 46 media-s/s: WAVE-7B
    on an H100 needs ~50), and 6, 8 or 16 were slower than 4: the workers are threads, and the work
    they do holding the GIL (demuxing, audio decoding and resampling) caps them at ~4.5 busy cores
    (8 decode processes of 2 threads reached 3.4x the 2-thread rate there: decode_workers-processes.md).
    """
    if cpus is None:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 2)
    return max(2, min(4, cpus // 2))


@dataclass(frozen=True)
class FileToDecode:
    path: str | Path
    ranges: Sequence[tuple[float, float]]  # clip ranges, in time order
    video: bool = True
    audio: bool = True
    media: Optional[MediaFile] = None  # probed already (saves a probe per decoder)
    isolated: bool = False  # decode in the sandbox child process (a file whose probe looked unusual)

    @property
    def splittable(self) -> bool:
        # Only decoding video is worth a second decoder; sound alone decodes at hundreds of times
        # real time, and a seek in some audio formats is not sample exact. The sandbox reads one
        # file at a time, so an isolated file is never split.
        return self.video and (self.media is None or self.media.has_video) and not self.isolated


@dataclass(frozen=True)
class Decoded:
    """One report from the decoders, in the order the consumer should see them.

    kind "clip":  `clip` is the file's clip for range number `index`.
    kind "done":  the file is decoded; `index` clips were handed back (every "clip" of it came before);
                  `damage`: the stretches FFmpeg could not decode (the file is partly indexed).
    kind "error": decoding the file failed with `error`; no more clips of it follow.
    Every file gets exactly one "done" or "error".
    """

    kind: str
    file: int
    index: int = 0
    clip: Optional[Clip] = None
    error: Optional[BaseException] = None
    damage: tuple[Damage, ...] = ()


@dataclass
class _Lane:
    """One decoder's share of a file: ranges [start, limit); `next` is the next one to hand back."""

    file: int
    start: int
    limit: int
    next: int = field(init=False)

    def __post_init__(self) -> None:
        self.next = self.start


class _Plan:
    """Who decodes what. Every method runs under one lock; the decoding itself runs outside it."""

    def __init__(self, files: Sequence[FileToDecode], min_split_s: float) -> None:
        self.files = files
        self.min_split_s = min_split_s
        self.lock = threading.Lock()
        self.unstarted = 0  # files [unstarted:] have not been given to a worker
        self.lanes: list[_Lane] = []  # lanes being decoded
        self.running = [0] * len(files)  # lanes per file
        self.handed = [0] * len(files)  # clips handed back per file
        self.failed = [False] * len(files)
        self.damage: list[list[Damage]] = [[] for _ in files]  # filled by the file's decoders

    def take(self) -> Optional[_Lane]:
        with self.lock:
            if self.unstarted < len(self.files):
                j = self.unstarted
                self.unstarted += 1
                lane = _Lane(j, 0, len(self.files[j].ranges))
            else:
                lane = self._split()
            if lane is not None:
                self.lanes.append(lane)
                self.running[lane.file] += 1
            return lane

    def _split(self) -> Optional[_Lane]:
        best: Optional[tuple[float, _Lane, int]] = None
        for lane in self.lanes:
            f = self.files[lane.file]
            if self.failed[lane.file] or not f.splittable or lane.limit - lane.next < 2:
                continue
            ranges = f.ranges
            first, last = ranges[lane.next][0], ranges[lane.limit - 1][1]
            middle = (first + last) / 2
            cut = next(i for i in range(lane.next + 1, lane.limit) if ranges[i][0] >= middle or i == lane.limit - 1)
            if ranges[cut][0] - first < self.min_split_s or last - ranges[cut][0] < self.min_split_s:
                continue
            if best is None or last - first > best[0]:
                best = (last - first, lane, cut)
        if best is None:
            return None
        _, owner, cut = best
        thief = _Lane(owner.file, cut, owner.limit)
        owner.limit = cut  # the owner stops when it reaches the cut (see hand)
        return thief

    def hand(self, lane: _Lane, index: int) -> bool:
        """May the lane hand back the clip for range `index`? False: stop decoding this lane."""
        with self.lock:
            if index >= lane.limit or self.failed[lane.file]:
                return False
            lane.next = index + 1
            self.handed[lane.file] += 1
            return True

    def release(self, lane: _Lane, error: Optional[BaseException]) -> Optional[Decoded]:
        """The lane's decoder has stopped; returns the file's final report if this settles it."""
        with self.lock:
            self.lanes.remove(lane)
            j = lane.file
            self.running[j] -= 1
            if self.failed[j]:
                return None
            if error is not None:
                self.failed[j] = True
                return Decoded("error", j, self.handed[j], error=error)
            if self.running[j] == 0:
                return Decoded("done", j, self.handed[j], damage=tuple(merged(self.damage[j])))
            return None


def decode_files(files: Sequence[FileToDecode], options: DecodeOptions = DecodeOptions(), *,
                 workers: Optional[int] = None, queue_clips: int = 8, min_split_s: float = MIN_SPLIT_S,
                 stall_s: float = STALL_S) -> Iterator[Decoded]:
    """Decode every file's clips on `workers` threads (None: `default_decode_workers()`); yields
    `Decoded` reports as they come.

    At most `queue_clips` decoded clips wait for the consumer (the workers pause when it is full),
    so memory stays bounded however long the files are. A file that fails is reported once and
    never stops the others. Closing the iterator early stops the workers (each at its next clip).
    Files marked `isolated` are decoded in the sandbox child process (avsearch.media.sandbox): a
    crash there fails that file only. A file whose decoding goes `stall_s` without a clip is cut
    off and failed (in the sandbox whatever the cause; in-process while packets still come).
    """
    if not files:
        return
    plan = _Plan(files, min_split_s)
    reports: queue.Queue = queue.Queue(maxsize=max(1, queue_clips))
    stop = threading.Event()

    def put(report: Decoded) -> bool:
        while not stop.is_set():  # never block for good: the consumer may have gone
            try:
                reports.put(report, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def decode(lane: _Lane, seek: bool = True) -> Optional[BaseException]:
        """Decode the lane's clips from the next one not yet handed back; the error, if any."""
        f = files[lane.file]
        first = lane.next
        ranges = list(f.ranges[first:lane.limit])
        try:
            # wanted: a split lowers lane.limit, and this decoder stops right after the cut's last
            # clip instead of decoding the next clip only to have it refused (10 s of media wasted).
            damage: list[Damage] = []
            if f.isolated:
                source = shared_sandbox().clips(f.path, ranges, options, video=f.video, audio=f.audio, media=f.media,
                                                damage=damage, stall_s=stall_s)
            else:
                source = iter_clips(f.path, ranges, options, video=f.video, audio=f.audio, media=f.media,
                                    wanted=lambda: lane.limit - first, seek=seek, damage=damage, stall_s=stall_s)
            with closing(source) as clips:
                for offset, clip in enumerate(clips):
                    index = first + offset
                    if stop.is_set() or not plan.hand(lane, index) or not put(Decoded("clip", lane.file, index, clip)):
                        break
        except Exception as err:  # one broken file never stops the run; the consumer words it
            return err
        plan.damage[lane.file].extend(damage)  # list.extend is atomic: lanes of one file may finish together
        return None

    def work() -> None:
        while not stop.is_set():
            lane = plan.take()
            if lane is None:
                return
            error = decode(lane)
            if error is not None and lane.start > 0 and not stop.is_set():
                # A split-off part starts with a seek, which fails on some files that decode well
                # from the start: such a file must not fail only because it was split. Once more,
                # reading from the start (slow, but only on such files).
                error = decode(lane, seek=False)
            final = plan.release(lane, error)
            if final is not None and not put(final):
                return

    crashed: list[BaseException] = []

    def run_worker() -> None:
        try:
            work()
        except BaseException as err:  # a bug, not a media problem (those are reported per file)
            crashed.append(err)

    threads = [threading.Thread(target=run_worker, name=f"decode-{i}", daemon=True) for i in range(max(1, workers or default_decode_workers()))]
    for t in threads:
        t.start()
    settled = 0
    try:
        while settled < len(files):
            try:
                report = reports.get(timeout=1.0)
            except queue.Empty:
                if not any(t.is_alive() for t in threads) and reports.empty():
                    # Never wait for good on workers that are gone: that would hang the indexer.
                    raise RuntimeError("the decode workers stopped before every file was reported (a bug)") from (
                        crashed[0] if crashed else None)
                continue
            if report.kind != "clip":
                settled += 1
            yield report
    finally:
        stop.set()
        while any(t.is_alive() for t in threads):
            _drain(reports)  # frees a worker blocked on a full queue
            for t in threads:
                t.join(timeout=0.05)


def _drain(q: queue.Queue) -> None:
    try:
        while True:
            q.get_nowait()
    except queue.Empty:
        pass
