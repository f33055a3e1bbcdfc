"""How many old LanceDB versions an index keeps after a write run, and which ones may go.

Every commit makes a new table version, and old versions keep their data files: without cleanup,
an index grows with each run, and the paths and vectors `remove` dropped stay on disk in the
versions before it. After each write run the store therefore removes all but the last
`keep_versions` versions of `files` and `clips` (the latest is never removed: it is the one the
saved ANN index covers).

A query in another process reads the table version that was current when it began. Queries
announce themselves with a shared lock (`readers.py`); a writer cleans up by count only while it
holds that lock exclusively, i.e. when no query is running and none can start. When a query is
running, it also keeps every version that stopped being current less than `reader_grace_s` ago,
so the running query's version survives, and the next run removes them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional, Sequence

KEEP_VERSIONS_ENV = "AVSEARCH_KEEP_VERSIONS"


@dataclass(frozen=True)
class Retention:
    keep_versions: int = 3  # per table, the latest included
    reader_grace_s: float = 600.0  # while a query runs: how long a superseded version stays

    def __post_init__(self) -> None:
        if self.keep_versions < 1:
            raise ValueError(f"keep_versions must be at least 1 (the latest version), not {self.keep_versions}")

    @classmethod
    def from_env(cls) -> "Retention":
        """$AVSEARCH_KEEP_VERSIONS, else the default."""
        value = os.environ.get(KEEP_VERSIONS_ENV)
        if not value:
            return cls()
        try:
            return cls(keep_versions=int(value))
        except ValueError:
            from avsearch.errors import AvsearchError

            raise AvsearchError(f"${KEEP_VERSIONS_ENV}={value!r} is not a whole number >= 1; set it to e.g. 3") from None


def removable_before(timestamps: Sequence[float], retention: Retention, *, now: float, readers_active: bool,
                     protect: Sequence[int] = ()) -> Optional[float]:
    """The time before which versions may be deleted, or None when none may.

    timestamps: commit time (seconds since the epoch) of each version, oldest first.
    protect: indexes into `timestamps` of versions that must stay whatever their age.
    A version is kept when it is among the last `keep_versions`, is protected, or (with
    `readers_active`) stopped being current, i.e. its successor was committed, within the grace.
    """
    n = len(timestamps)
    first_kept = max(0, n - retention.keep_versions)
    if readers_active:
        superseded_recently = [i for i in range(n - 1) if timestamps[i + 1] > now - retention.reader_grace_s]
        first_kept = min([first_kept, *superseded_recently])
    first_kept = min([first_kept, *[i for i in protect if 0 <= i < n]])
    if first_kept == 0:
        return None
    return timestamps[first_kept]
