"""Shared CLI plumbing: options used by several commands, error reporting, formatting."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from typer.core import TyperCommand

from avsearch import preflight
from avsearch.locations import resolve_index_path

console = Console(stderr=False)
err_console = Console(stderr=True)

INDEX_HELP = ("Index directory, or an object store URI (s3://BUCKET/PREFIX, gs://..., az://...). Default: "
              "$AVSEARCH_INDEX or ./avsearch-index.")
IndexOption = typer.Option(None, "--index", "-i", help=INDEX_HELP, envvar="AVSEARCH_INDEX", show_default=False)


class HelpCommand(TyperCommand):
    """A command whose --help names values the way people write them (PATHS..., FILE, N) instead
    of Typer's type labels (<list[Path]>, <bool>): every command is registered with `cls=HelpCommand`.
    It only fills in `metavar` (Typer's public way to name a value) where the option gave none."""

    def get_params(self, ctx):
        params = super().get_params(ctx)
        for param in params:
            if param.metavar is None:
                param.metavar = _plain_metavar(param, ctx)
        return params


_TYPE_NAMES = {"str": "TEXT", "int": "N", "float": "NUMBER", "path": "PATH", "int range": "N", "float range": "NUMBER"}


def _plain_metavar(param, ctx) -> str:
    if getattr(param, "is_flag", False):
        return ""  # a switch takes no value: nothing to name
    if param.param_type_name == "argument":
        return param.name.upper() + ("..." if param.nargs != 1 else "")
    label = param.display_type(ctx).strip("<>")
    return _TYPE_NAMES.get(label, label.upper())


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
    if "://" in path:  # an object-store index: a URI, never relative to the working folder
        return path
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return rel if not rel.startswith("../..") else path


def no_tty() -> bool:
    return not sys.stdout.isatty()


def device_option() -> Optional[str]:
    return None
