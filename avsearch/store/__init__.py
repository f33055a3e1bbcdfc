"""Storage: the only package that knows LanceDB and FAISS."""

# Names are imported on first use (PEP 562): a Ray embed actor imports avsearch.store.fragments
# (Lance alone) to write its clips, and must not pay for LanceDB and FAISS, which it never uses.
_EXPORTS = {
    "AnnConfig": "avsearch.store.ann", "AnnIndex": "avsearch.store.ann", "FileCommit": "avsearch.store.tables",
    "IndexMeta": "avsearch.store.meta", "IndexSettings": "avsearch.store.meta",
    "Retention": "avsearch.store.retention", "SearchState": "avsearch.store.ann", "Store": "avsearch.store.store",
    "WriteLock": "avsearch.store.lock",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
