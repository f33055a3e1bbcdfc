"""Opening files with PyAV, turning every failure into a MediaError with a readable reason."""

from __future__ import annotations

import errno
import os
from contextlib import contextmanager
from pathlib import Path

import av

from avsearch.errors import MediaError

VIDEO_EXTENSIONS = frozenset({"mp4", "mkv", "mov", "webm", "avi", "m4v", "mpg", "mpeg", "ts", "wmv", "flv", "3gp"})
AUDIO_EXTENSIONS = frozenset({"wav", "flac", "mp3", "ogg", "opus", "m4a", "aac", "wma", "aif", "aiff"})
SUPPORTED_EXTENSIONS = VIDEO_EXTENSIONS | AUDIO_EXTENSIONS


def check_readable(path: Path) -> None:
    if not os.path.lexists(path):
        raise MediaError(f"{path}: no such file")
    if path.is_dir():
        raise MediaError(f"{path}: is a directory, not a media file")
    try:
        size = path.stat().st_size
    except OSError as err:
        reason = "symlink loop" if err.errno == errno.ELOOP else (err.strerror or str(err))
        raise MediaError(f"{path}: cannot read file: {reason}") from None
    if size == 0:
        raise MediaError(f"{path}: empty file (0 bytes)")
    if not os.access(path, os.R_OK):
        raise MediaError(f"{path}: permission denied")


@contextmanager
def open_media(path: str | Path):
    path = Path(path)
    check_readable(path)
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except PermissionError:
        raise MediaError(f"{path}: permission denied") from None
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError) as err:
        raise MediaError(f"{path}: not a readable media file ({describe(err)})") from None
    try:
        yield container
    finally:
        container.close()


def describe(err: BaseException) -> str:
    text = getattr(err, "strerror", None) or str(err) or type(err).__name__
    return text.split(": '")[0]  # PyAV appends the path; ours already names it
