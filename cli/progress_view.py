"""How `avsearch index` shows a run's progress (avsearch.indexer.Progress events).

On a terminal: one live Rich line whose description is the phase. Elsewhere (a pipe, a file, a CI
log): plain lines without escape codes or carriage returns -- one when the phase changes (after
the last count of the phase before, if that was not printed yet) and at most one every
`interval_s` within a phase. With --quiet or --json: nothing.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Callable, Optional, TextIO

from rich.progress import BarColumn, Progress as RichProgress, SpinnerColumn, TextColumn, TimeElapsedColumn

from avsearch.cli.common import err_console, hms

PLAIN_INTERVAL_S = 5.0


def phase_label(p) -> str:
    if p.phase == "generating tiny model":
        return "generating tiny model (first use only)"
    return p.phase


def phase_detail(p) -> str:
    """The counts of the event's phase, e.g. "3 of 5 files · 20 decoded · 40 of 52 embedded · 12.3 clips/s ·
    ETA 0:00:05" (clips decoded; clips embedded, once per view: an audio+video clip three times)."""
    name = os.path.basename(p.current) if p.current else ""
    if p.phase == "scanning":
        return f"{p.phase_done} {_files(p.phase_done)} found"
    if p.phase in ("fingerprinting", "probing"):
        count = (f"{p.phase_done} of {p.phase_total} {_files(p.phase_total)}" if p.phase_total is not None
                 else f"{p.phase_done} {_files(p.phase_done)}")
        return f"{count} · {name}" if name else count
    if p.phase == "embedding":
        parts = [f"{p.files_done} of {p.files_total} {_files(p.files_total)}", f"{p.clips_decoded} decoded",
                 f"{p.clips_done} of {p.clips_total} embedded"]
        rate, eta = p.clips_per_s, p.eta_s
        if rate is not None:
            parts.append(f"{rate:.1f} clips/s")
        if eta is not None:
            parts.append(f"ETA {hms(eta)}")
        return " · ".join(parts)
    return ""


def _files(n: int) -> str:
    return "file" if n == 1 else "files"


def plain_line(p) -> str:
    detail = phase_detail(p)
    return f"{phase_label(p)}: {detail}" if detail else phase_label(p)


class PlainView:
    """Plain progress lines for logs (see the module docstring)."""

    def __init__(self, stream: Optional[TextIO] = None, interval_s: float = PLAIN_INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic):
        self._stream = stream
        self._interval_s = interval_s
        self._clock = clock
        self._phase: Optional[str] = None
        self._printed_at = 0.0
        self._unprinted: Optional[str] = None  # the latest line of the current phase, if not printed

    def __call__(self, p) -> None:
        line = plain_line(p)
        if p.phase != self._phase:
            self._flush()
            self._phase = p.phase
            self._print(line)
        elif self._clock() - self._printed_at >= self._interval_s:
            self._print(line)
        else:
            self._unprinted = line

    def __enter__(self) -> "PlainView":
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is None:
            self._flush()  # the last count (not after an error: the error is what matters then)

    def _flush(self) -> None:
        if self._unprinted is not None:
            self._print(self._unprinted)

    def _print(self, line: str) -> None:
        stream = self._stream or sys.stderr  # looked up now: a test runner may have swapped it
        print(line, file=stream, flush=True)
        self._printed_at = self._clock()
        self._unprinted = None


class RichView:
    """One live line on the terminal: spinner, phase, bar (when the phase has a total), counts."""

    def __init__(self):
        self._bar = RichProgress(
            SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(),
            TextColumn("{task.fields[detail]}"), TimeElapsedColumn(), console=err_console, transient=True,
        )
        self._task = None
        self._phase: Optional[str] = None

    def __call__(self, p) -> None:
        if p.phase != self._phase:
            # A task per phase: its clock starts with the phase, and a finished one (Rich keeps a
            # task finished once completed reaches total) does not freeze the next.
            if self._task is not None:
                self._bar.remove_task(self._task)
            self._task = self._bar.add_task(phase_label(p), total=None, detail="")
            self._phase = p.phase
        self._bar.update(self._task, total=p.phase_total, completed=p.phase_done, detail=phase_detail(p))

    def __enter__(self) -> "RichView":
        self._bar.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._bar.__exit__(*exc)


class QuietView:
    def __call__(self, p) -> None:
        pass

    def __enter__(self) -> "QuietView":
        return self

    def __exit__(self, *exc) -> None:
        pass


def progress_view(quiet: bool):
    """The view for this process: nothing when quiet, a live line on a terminal, else plain lines."""
    if quiet:
        return QuietView()
    if err_console.is_terminal and not err_console.is_dumb_terminal:
        return RichView()
    return PlainView()
