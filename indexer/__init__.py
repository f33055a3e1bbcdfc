"""The indexer: crawl folders, plan incremental work, decode, embed and commit clips."""

# Names are imported on first use (PEP 562): a Ray decode worker imports
# avsearch.indexer.distributed.work, and must not pay for the store (LanceDB) that
# pipeline/run bring, which it never uses.
_EXPORTS = {
    "IndexReport": "avsearch.indexer.report", "Progress": "avsearch.indexer.report",
    "PHASES": "avsearch.indexer.report",
    "PipelineOptions": "avsearch.indexer.pipeline", "Plan": "avsearch.indexer.plan",
    "plan_run": "avsearch.indexer.run", "run_index": "avsearch.indexer.run",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
