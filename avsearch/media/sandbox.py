"""Reading media in a child process, where a crash or a hang of FFmpeg costs one file, not the run.

FFmpeg is C: a hostile file can make a demuxer or decoder segfault, abort or loop for ever, and in
the indexer's own process that would end (or freeze) the whole run. So every file is probed in a
persistent child process ("the sandbox"), and the files whose probe looks unusual (see
`looks_ordinary`) are decoded there too; the common case (H.264/AAC in MP4, PCM WAV, ...) keeps
the in-process fast path. If the child dies while it reads a file, that file is failed as "the
decoder crashed (signal N ...)" and the next call starts a fresh child. If it sends nothing for
`timeout_s` (a probe) or `stall_s` (between two clips of a decode), it is killed and the file is
failed as cut off. The cost is measured in benchmarks/results/isolation.md.

The child is a plain `python -m avsearch.media.sandbox_child` talking over two pipes (not
multiprocessing's spawn, which re-imports the caller's __main__ in the child).

Test hook, outside the normal path: AVSEARCH_TEST_MEDIA_FAULT="ACTION:STAGE:TEXT" (ACTION crash
or hang, STAGE probe or decode) makes the *child* crash (SIGSEGV) or sleep when it reads a path
containing TEXT. Only the child obeys it, so it shows what the sandbox contains.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Iterator, Optional, Sequence

from avsearch.errors import MediaError
from avsearch.media.damage import Damage
from avsearch.media.decode import DecodeOptions
from avsearch.types import Clip, MediaFile

PROBE_TIMEOUT_S = 60.0  # probing reads headers (and packet times for raw streams): seconds at most
# A decode that hands back no clip for this long is stuck. Generous: a 10 s clip of 8K HEVC can take
# a minute on two cores.
STALL_S = 120.0

FAULT_ENV = "AVSEARCH_TEST_MEDIA_FAULT"
_STARTUP_S = 120.0

# Codecs whose FFmpeg decoders are the most used and fuzzed: files in them are decoded in-process.
_ORDINARY_VIDEO = frozenset({"h264", "hevc", "vp8", "vp9", "av1", "mpeg4", "mpeg1video", "mpeg2video", "mjpeg",
                             "theora", "prores", "dnxhd"})
_ORDINARY_AUDIO = frozenset({"aac", "mp3", "mp3float", "mp2", "opus", "vorbis", "flac", "alac", "ac3", "eac3", "pcm_s16le",
                             "pcm_s24le", "pcm_s32le", "pcm_f32le", "pcm_f64le", "pcm_u8", "pcm_s16be", "pcm_s24be"})
_MAX_ORDINARY_PIXELS = 8192 * 8192


def looks_ordinary(media: MediaFile) -> bool:
    """Whether a probed file is the common case, safe to decode in the indexer's own process."""
    if media.video_codec is not None and media.video_codec not in _ORDINARY_VIDEO:
        return False
    if media.audio_codec is not None and media.audio_codec not in _ORDINARY_AUDIO:
        return False
    if media.width and media.height and media.width * media.height > _MAX_ORDINARY_PIXELS:
        return False
    # Header values no encoder writes: a damaged or crafted header, which decoders trust.
    if media.sample_rate is not None and not 1_000 <= media.sample_rate <= 384_000:
        return False
    if (media.channels or 0) > 32 or (media.fps or 0) > 1_000:
        return False
    return True


class Sandbox:
    """One child process that reads media on request; restarted after a crash or a cut-off.
    Calls are serialised (one lock): the child reads one file at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: Optional[subprocess.Popen] = None
        self._send_conn: Optional[Connection] = None
        self._recv_conn: Optional[Connection] = None

    def probe(self, path: str | Path, *, timeout_s: float = PROBE_TIMEOUT_S) -> MediaFile:
        with self._lock:
            try:
                self._request(("probe", str(path), _fault()))
                kind, value = self._receive(path, timeout_s, "probing it")
            except BaseException:  # Ctrl-C while the child works: its late answer must not be the next one's
                self._stop()
                raise
            if kind == "error":
                raise MediaError(value)
            return value

    def clips(self, path: str | Path, ranges: Sequence[tuple[float, float]], options: DecodeOptions = DecodeOptions(),
              *, video: bool = True, audio: bool = True, media: Optional[MediaFile] = None,
              damage: Optional[list[Damage]] = None, stall_s: float = STALL_S) -> Iterator[Clip]:
        """As `iter_clips`, decoded in the child. Closing the iterator early restarts the child."""
        with self._lock:
            finished = False
            try:
                self._request(("clips", str(path), [tuple(r) for r in ranges], options, video, audio, media, _fault()))
                kind, value = self._receive(path, _STARTUP_S, "starting to decode it")  # ("started", None)
                if kind == "error":
                    finished = True
                    raise MediaError(value)
                while True:
                    kind, value = self._receive(path, stall_s, "decoding it")
                    if kind == "clip":
                        yield value
                    elif kind == "end":
                        finished = True
                        if damage is not None:
                            damage.extend(value)
                        return
                    else:
                        finished = True
                        raise MediaError(value)
            finally:
                if not finished:  # the child is still sending this file's clips: start afresh next time
                    self._stop()

    def close(self) -> None:
        with self._lock:
            self._stop()

    # -- the child process -------------------------------------------------------------------

    def _request(self, message: tuple) -> None:
        if self._proc is None or self._proc.poll() is not None:
            self._start()
        try:
            self._send_conn.send(message)
        except OSError:  # it died between two requests: once more with a fresh one
            self._start()
            self._send_conn.send(message)

    def _receive(self, path, timeout_s: float, doing: str) -> tuple:
        # poll() also wakes when the child dies (the pipe reaches end of file).
        if not self._recv_conn.poll(timeout_s):
            self._stop()
            raise MediaError(f"{path}: {doing} made no progress for {timeout_s:g} s and was cut off "
                             "(FFmpeg may loop on damaged data); check the file or re-encode it")
        try:
            return self._recv_conn.recv()
        except (EOFError, OSError):
            code = self._wait_exit()
            self._stop()
            raise MediaError(f"{path}: the decoder crashed ({_exit_text(code)}) {doing}; the file is probably "
                             "damaged or hostile: re-encode it with ffmpeg to index it") from None

    def _start(self) -> None:
        self._stop()
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "avsearch.media.sandbox_child", str(to_child_r), str(from_child_w)],
            pass_fds=(to_child_r, from_child_w), stdin=subprocess.DEVNULL, close_fds=True,
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self._send_conn = Connection(to_child_w, readable=False)
        self._recv_conn = Connection(from_child_r, writable=False)
        # Wait for its imports (~0.5 s, more on a busy machine): they must not count against the
        # first file's time limit.
        try:
            ready = self._recv_conn.poll(_STARTUP_S) and self._recv_conn.recv() == ("ready", None)
        except (EOFError, OSError):
            ready = False
        if not ready:
            code = self._proc.poll()
            self._stop()
            raise MediaError(f"the media sandbox process did not start ({_exit_text(code)}); "
                             "check that `python -m avsearch.media.sandbox_child` runs")

    def _wait_exit(self) -> Optional[int]:
        try:
            return self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return None

    def _stop(self) -> None:
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
            self._proc.wait()
            self._proc = None
        for conn in (self._send_conn, self._recv_conn):
            if conn is not None:
                conn.close()
        self._send_conn = self._recv_conn = None


def _exit_text(code: Optional[int]) -> str:
    if code is None:
        return "it stopped answering"
    if code < 0:
        try:
            return f"signal {-code}: {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


def _fault() -> Optional[str]:
    return os.environ.get(FAULT_ENV) or None


_shared: Optional[Sandbox] = None
_shared_lock = threading.Lock()


def shared_sandbox() -> Sandbox:
    """The process's sandbox, started on first use and kept for later runs (a start costs ~0.5 s)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Sandbox()
        return _shared
