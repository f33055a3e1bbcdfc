"""Media: the only package that knows PyAV (probing, streaming decode, cuts, generated media)."""

from avsearch.media.container import AUDIO_EXTENSIONS, SUPPORTED_EXTENSIONS, VIDEO_EXTENSIONS
from avsearch.media.decode import DecodeOptions, iter_clips, read_clip, sample_times
from avsearch.media.fingerprint import fingerprint
from avsearch.media.frames import export_range, extract_frame, range_picture
from avsearch.media.parallel import Decoded, FileToDecode, decode_files, default_decode_workers
from avsearch.media.probe import probe
from avsearch.media.resize import smart_resize
from avsearch.media.segment import plan_clips

__all__ = [
    "AUDIO_EXTENSIONS", "DecodeOptions", "Decoded", "FileToDecode", "SUPPORTED_EXTENSIONS", "VIDEO_EXTENSIONS",
    "decode_files", "default_decode_workers", "export_range", "extract_frame", "fingerprint", "iter_clips", "plan_clips", "probe", "range_picture", "read_clip",
    "sample_times", "smart_resize",
]
