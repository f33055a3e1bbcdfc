"""Indexing on Ray: the local pipeline's stages as Ray work, for every GPU of a machine or a cluster.

Ray is an optional extra (`pip install "avsearch[ray]"`), imported only when a run asks for it.
The planner, fingerprints, clip ids, commits and table layout are the local pipeline's; see engine.py.
Names are imported on first use: Ray's workers import work.py, which needs none of the driver's.
"""

__all__ = ["RAY_INSTALL", "RayMissingError", "RayOptions", "run_pipeline_ray"]


def __getattr__(name: str):
    if name in __all__:
        from avsearch.indexer.distributed import engine

        return getattr(engine, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
