"""What an indexing run tells its caller: progress events while it runs, a report at the end."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional


@dataclass
class Progress:
    files_total: int
    files_done: int = 0
    clips_done: int = 0
    media_s_total: float = 0.0
    media_s_done: float = 0.0
    current: Optional[str] = None


ProgressCallback = Callable[[Progress], None]


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
            "clips_added": self.clips_added,
            "media_seconds": round(self.media_s, 3),
            "seconds": round(self.seconds, 3),
            "dry_run": self.dry_run,
        }
