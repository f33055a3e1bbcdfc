"""The indexer: crawl folders, plan incremental work, decode, embed and commit clips."""

from avsearch.indexer.pipeline import PipelineOptions
from avsearch.indexer.plan import Plan
from avsearch.indexer.report import PHASES, IndexReport, Progress
from avsearch.indexer.run import plan_run, run_index

__all__ = ["IndexReport", "PHASES", "PipelineOptions", "Plan", "Progress", "plan_run", "run_index"]
