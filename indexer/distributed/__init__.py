"""Indexing on Ray: the local pipeline's stages as Ray work, for every GPU of a machine or a cluster.

Ray is an optional extra (`pip install "avsearch[ray]"`), imported only when a run asks for it.
The planner, fingerprints, clip ids, commits and table layout are the local pipeline's; see engine.py.
"""

from avsearch.indexer.distributed.engine import RAY_INSTALL, RayMissingError, RayOptions, run_pipeline_ray

__all__ = ["RAY_INSTALL", "RayMissingError", "RayOptions", "run_pipeline_ray"]
