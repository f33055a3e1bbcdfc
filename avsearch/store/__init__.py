"""Storage: the only package that knows LanceDB and FAISS."""

from avsearch.store.ann import AnnConfig, AnnIndex, SearchState
from avsearch.store.lock import WriteLock
from avsearch.store.meta import IndexMeta, IndexSettings
from avsearch.store.retention import Retention
from avsearch.store.store import Store
from avsearch.store.tables import FileCommit

__all__ = ["AnnConfig", "AnnIndex", "FileCommit", "IndexMeta", "IndexSettings", "Retention", "SearchState", "Store",
           "WriteLock"]
