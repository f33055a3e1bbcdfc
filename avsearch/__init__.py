"""avsearch: any-to-any multimodal search for local video and audio.

    from avsearch import Index
    index = Index.open("./avsearch-index", model="tiny", create=True)
    index.add(["~/Videos"])
    hits = index.search("a crowd cheering", k=5)
"""

from avsearch.errors import AvsearchError
from avsearch.types import Clip, Hit, MediaFile, Query, View

__version__ = "0.1.0"
__all__ = ["AvsearchError", "Clip", "Hit", "Index", "MediaFile", "Query", "View", "__version__"]


def __getattr__(name: str):
    # Index pulls in LanceDB and FAISS; import it on first use so `import avsearch` stays light.
    if name == "Index":
        from avsearch.index import Index

        return Index
    raise AttributeError(f"module 'avsearch' has no attribute {name!r}")
