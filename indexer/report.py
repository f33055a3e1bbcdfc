"""What an indexing run tells its caller: progress events while it runs, a report at the end."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Optional

from avsearch.models.registry import GENERATING_TINY

# The steps of a run, in the order they come. "loading model" comes only once probing found work
# (on a new index: anything to record, since the index records its model's id and dimension when
# it is created), and never when there is none. GENERATING_TINY happens inside "loading model", once.
SCANNING = "scanning"
FINGERPRINTING = "fingerprinting"
PROBING = "probing"
LOADING_MODEL = "loading model"
EMBEDDING = "embedding"
COMMITTING = "committing"
BUILDING_ANN = "building ANN index"
PHASES = (SCANNING, FINGERPRINTING, PROBING, LOADING_MODEL, GENERATING_TINY, EMBEDDING, COMMITTING, BUILDING_ANN)


@dataclass
class Progress:
    """One progress event. files_*/clips_*/media_* are about the files this run embeds (as
    before phases existed); `phase` says what the run is doing now, with that step's own count
    in phase_done/phase_total (files found, fingerprinted or probed, clips embedded)."""

    files_total: int = 0
    files_done: int = 0
    clips_done: int = 0
    media_s_total: float = 0.0
    media_s_done: float = 0.0
    current: Optional[str] = None
    phase: str = EMBEDDING  # one of PHASES
    phase_done: int = 0
    phase_total: Optional[int] = None  # None: not known (scanning counts what it finds)
    clips_total: int = 0  # clips x views this run expects to embed (a clip lacking a stream gets fewer)
    clips_decoded: int = 0  # clips decoded so far (each is embedded once per view it has)
    phase_started: float = field(default_factory=time.monotonic)

    @property
    def elapsed_s(self) -> float:
        """Seconds since this phase began."""
        return time.monotonic() - self.phase_started

    @property
    def clips_per_s(self) -> Optional[float]:
        """Embedding speed over the phase so far; None before the first batch."""
        if self.phase != EMBEDDING or self.clips_done == 0:
            return None
        return self.clips_done / max(self.elapsed_s, 1e-6)

    @property
    def eta_s(self) -> Optional[float]:
        """Seconds of embedding left at the speed so far; None while unknown."""
        rate = self.clips_per_s
        if rate is None or not self.clips_total:
            return None
        return max(self.clips_total - self.clips_done, 0) / rate


ProgressCallback = Callable[[Progress], None]


class PhaseReporter:
    """Sends the events of the steps before embedding (scanning, fingerprinting, probing, model
    loading, committing, ANN building) to a ProgressCallback. A phase change is always sent; ticks
    within a phase at most every `min_interval_s` (a scan finds thousands of files a second), and
    `tick(..., force=True)` always (a phase's final count; a probe, slow enough to show each)."""

    def __init__(self, callback: Optional[ProgressCallback], min_interval_s: float = 0.1):
        self._callback = callback
        self._min_interval_s = min_interval_s
        self._last_sent = 0.0
        self.state = Progress()

    def phase(self, name: str, total: Optional[int] = None, current: Optional[str] = None) -> None:
        if name not in PHASES:
            raise ValueError(f"unknown progress phase {name!r}; one of {', '.join(PHASES)}")
        s = self.state
        s.phase, s.phase_done, s.phase_total, s.current, s.phase_started = name, 0, total, current, time.monotonic()
        self.send()

    def tick(self, done: int, current: Optional[str] = None, *, total: Optional[int] = None,
             force: bool = False) -> None:
        s = self.state
        s.phase_done, s.current = done, current
        if total is not None:
            s.phase_total = total
        if force or time.monotonic() - self._last_sent >= self._min_interval_s:
            self.send()

    def send(self, state: Optional[Progress] = None) -> None:
        """Pass `state` (default: this reporter's own) to the callback now."""
        self._last_sent = time.monotonic()
        if self._callback is not None:
            self._callback(state or self.state)


@dataclass
class IndexReport:
    plan_counts: dict[str, int] = field(default_factory=dict)
    indexed: list[str] = field(default_factory=list)
    moved: list[tuple[str, str]] = field(default_factory=list)
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (path, path holding its content's clips)
    deleted: list[str] = field(default_factory=list)
    unchanged: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    partly: list[tuple[str, str]] = field(default_factory=list)  # (path, damaged stretches): indexed, in `indexed` too
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason): left alone, not recorded
    clips_added: int = 0
    media_s: float = 0.0
    seconds: float = 0.0
    recovered_orphans: int = 0
    dry_run: bool = False

    def to_dict(self) -> dict:
        return {
            "plan": self.plan_counts,
            "indexed": len(self.indexed),
            "moved": [list(m) for m in self.moved],
            "duplicates": [{"path": p, "same_as": c} for p, c in self.duplicates],
            "deleted": self.deleted,
            "unchanged": self.unchanged,
            "failed": [{"path": p, "reason": r} for p, r in self.failed],
            "partly_indexed": [{"path": p, "reason": r} for p, r in self.partly],
            "skipped": [{"path": p, "reason": r} for p, r in self.skipped],
            "clips_added": self.clips_added,
            "media_seconds": round(self.media_s, 3),
            "seconds": round(self.seconds, 3),
            "dry_run": self.dry_run,
        }
