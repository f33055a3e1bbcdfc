"""The retriever: answer text, audio, video and audio+video queries against the index."""

from avsearch.retriever.merge import cap_per_file, merge_adjacent
from avsearch.retriever.search import SearchOptions, SearchResult, search

__all__ = ["SearchOptions", "SearchResult", "cap_per_file", "merge_adjacent", "search"]
