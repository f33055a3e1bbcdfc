"""Model backends. The only package that imports torch and transformers."""

from avsearch.models.base import Embedder
from avsearch.models.registry import DEFAULT_MODEL, load_embedder, register, registered, unregister

__all__ = ["Embedder", "DEFAULT_MODEL", "load_embedder", "register", "registered", "unregister"]
