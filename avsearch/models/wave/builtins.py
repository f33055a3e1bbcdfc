"""Built-in registry names: "tiny" (the generated offline checkpoint) and "wave" (WAVE-7B).

Importing this module imports no torch; the loaders do, when called.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Optional

TINY_SEED = 0
# Bump when make_tiny_checkpoint's output changes, so stale cached copies are rebuilt.
TINY_FORMAT = "1"
_MARKER = ".avsearch-tiny"


def tiny_checkpoint_dir(seed: int = TINY_SEED) -> Path:
    from avsearch.models.describe import cache_dir

    return cache_dir() / f"tiny-wave-seed{seed}"


def ensure_tiny_checkpoint(seed: int = TINY_SEED) -> Path:
    """The cached tiny checkpoint, made on first use.

    Made in a temporary directory beside the target and renamed into place, so two processes
    starting at once never see a half-written checkpoint: the loser of the rename race discards
    its copy and uses the winner's.
    """
    target = tiny_checkpoint_dir(seed)
    if _is_current(target):
        return target
    from avsearch.models.registry import GENERATING_TINY, announce
    from avsearch.models.wave.tiny import make_tiny_checkpoint

    announce(GENERATING_TINY)  # seconds of silence otherwise, on first use only
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        make_tiny_checkpoint(work, seed=seed)
        (work / _MARKER).write_text(TINY_FORMAT)
        if target.exists() and not _is_current(target):  # an older format: move it out of the way
            stale = target.with_name(f".{target.name}-stale-{os.getpid()}")
            try:
                target.rename(stale)
                shutil.rmtree(stale, ignore_errors=True)
            except OSError:
                pass
        try:
            work.rename(target)
        except OSError:
            if not _is_current(target):
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def _is_current(directory: Path) -> bool:
    marker = directory / _MARKER
    return marker.is_file() and marker.read_text().strip() == TINY_FORMAT


def load_tiny(device: Optional[str] = None, **kwargs):
    from avsearch.models.wave.loader import load_wave_embedder

    return load_wave_embedder(str(ensure_tiny_checkpoint()), device=device, source="tiny", **kwargs)


def load_default(device: Optional[str] = None, **kwargs):
    from avsearch.models.registry import DEFAULT_MODEL
    from avsearch.models.wave.loader import load_wave_embedder

    return load_wave_embedder(DEFAULT_MODEL, device=device, **kwargs)


def register_builtins(register: Callable) -> None:
    register("tiny", load_tiny)
    register("wave", load_default)
