"""Backends register a loader by name; `load_embedder` turns a model spec into an Embedder.

A spec is a registered name ("tiny", "wave"), a Hugging Face hub id ("tsinghua-ee/WAVE-7B") or
a local checkpoint directory. Names are tried first, then directories, then hub ids (all WAVE).
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Callable, Iterator, Optional

from avsearch.models.base import Embedder

Loader = Callable[..., Embedder]
_LOADERS: dict[str, Loader] = {}

DEFAULT_MODEL = "tsinghua-ee/WAVE-7B"


def register(name: str, loader: Loader) -> None:
    if name in _LOADERS:
        raise ValueError(f"an embedder named {name!r} is already registered")
    _LOADERS[name] = loader


def unregister(name: str) -> None:
    _LOADERS.pop(name, None)


def registered() -> list[str]:
    _ensure_builtins()
    return sorted(_LOADERS)


def load_embedder(spec: Optional[str] = None, *, device: Optional[str] = None) -> Embedder:
    """Load the embedder named by `spec` (default: the published WAVE-7B checkpoint)."""
    _ensure_builtins()
    spec = spec or DEFAULT_MODEL
    if spec in _LOADERS:
        return _LOADERS[spec](device=device)
    from avsearch.models.wave import load_wave_embedder

    return load_wave_embedder(spec, device=device)


# Steps of loading a model that a user waits for and should hear about, announced by loaders
# through `announce` to whoever listens (an indexing run's progress), without the models package
# knowing who that is.
GENERATING_TINY = "generating tiny model"
_listener: ContextVar[Optional[Callable[[str], None]]] = ContextVar("avsearch_model_steps", default=None)


@contextmanager
def model_steps(listener: Callable[[str], None]) -> Iterator[None]:
    """Within the block, `listener(step)` hears the steps loaders `announce` in this thread."""
    token = _listener.set(listener)
    try:
        yield
    finally:
        _listener.reset(token)


def announce(step: str) -> None:
    """Tell the current listener (if any) that loading now takes `step` (e.g. GENERATING_TINY)."""
    listener = _listener.get()
    if listener is not None:
        listener(step)


_builtins_loaded = False


def _ensure_builtins() -> None:
    # Built-ins register lazily so importing avsearch never imports torch.
    global _builtins_loaded
    if _builtins_loaded:
        return
    _builtins_loaded = True
    from avsearch.models.wave import register_builtins

    register_builtins(register)
