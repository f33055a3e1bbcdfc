"""A model id that names the weights, not the place they are stored.

"wave:" + the first 16 hex digits of a sha256 over:
- config.json, canonical (sorted keys) and without keys that change on every save
  (_name_or_path, transformers_version, dtype/torch_dtype);
- every weight file by name and size, the whole safetensors header (names, shapes, dtypes, offsets)
  and 16 evenly spaced 64 KiB samples of its bytes, so a fine-tune of the same architecture gets
  another id while a 15 GB checkpoint is fingerprinted by reading ~1 MB per shard;
- the tokenizer files; the BEATs file when one replaces the checkpoint's BEATs;
- the embedder options that change vectors, when they differ from the defaults.
A copy of the directory anywhere else, or the same seeded tiny checkpoint, gets the same id.
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path
from typing import Optional, Sequence

_VOLATILE_CONFIG_KEYS = {"_name_or_path", "transformers_version", "torch_dtype", "dtype"}
_SAMPLES = 16
_SAMPLE_BYTES = 64 * 1024
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt")


def _strip_volatile(value):
    if isinstance(value, dict):
        return {k: _strip_volatile(v) for k, v in value.items() if k not in _VOLATILE_CONFIG_KEYS}
    if isinstance(value, list):
        return [_strip_volatile(v) for v in value]
    return value


def _file_fingerprint(digest, path: Path) -> None:
    size = path.stat().st_size
    digest.update(f"{path.name}\0{size}\0".encode())
    with path.open("rb") as f:
        if path.suffix == ".safetensors" and size >= 8:
            (header_len,) = struct.unpack("<Q", f.read(8))
            digest.update(f.read(min(header_len, size - 8)))
        if size <= _SAMPLES * _SAMPLE_BYTES:
            f.seek(0)
            digest.update(f.read())
            return
        step = (size - _SAMPLE_BYTES) // (_SAMPLES - 1)
        for i in range(_SAMPLES):
            f.seek(i * step)
            digest.update(f.read(_SAMPLE_BYTES))


def model_id(directory: Path, weight_files: Sequence[Path], *, beats_file: Optional[Path] = None,
             options: Optional[dict] = None) -> str:
    digest = hashlib.sha256()
    config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    digest.update(json.dumps(_strip_volatile(config), sort_keys=True, separators=(",", ":")).encode())
    for path in sorted(weight_files, key=lambda p: p.name):
        _file_fingerprint(digest, path)
    for name in _TOKENIZER_FILES:
        if (directory / name).is_file():
            _file_fingerprint(digest, directory / name)
    if beats_file is not None:
        digest.update(b"beats\0")
        _file_fingerprint(digest, beats_file)
    if options:
        digest.update(json.dumps(options, sort_keys=True).encode())
    return "wave:" + digest.hexdigest()[:16]
