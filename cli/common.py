"""Shared CLI plumbing: options used by several commands, error reporting, formatting."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from avsearch import preflight
from avsearch.locations import resolve_index_path

console = Console(stderr=False)
err_console = Console(stderr=True)

INDEX_HELP = "Index directory. Default: $AVSEARCH_INDEX or ./avsearch-index."
IndexOption = typer.Option(None, "--index", "-i", help=INDEX_HELP, envvar="AVSEARCH_INDEX", show_default=False)


class State:
    verbose: bool = False


state = State()


def open_index(index_dir: Optional[Path], *, model: Optional[str] = None, device: Optional[str] = None):
    """`avsearch.Index.open` for commands that read an existing index, after the checks that need
    neither LanceDB nor a model (no index there, a --model the index was not built with): those
    answer at once instead of after the imports and the model load."""
    import avsearch

    path = resolve_index_path(index_dir)
    preflight.require_index(path)
    preflight.check_model_spec(path, model)
    return avsearch.Index.open(path, model=model, device=device)


def fail(message: str, code: int = 1) -> "typer.Exit":
    err_console.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


def hms(seconds: float) -> str:
    seconds = max(0.0, float(seconds))
    h, rem = divmod(int(seconds), 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}"


def short_path(path: str) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return rel if not rel.startswith("../..") else path


def no_tty() -> bool:
    return not sys.stdout.isatty()


def device_option() -> Optional[str]:
    return None
