"""`avsearch model make-tiny | info`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from avsearch import preflight
from avsearch.cli.common import HelpCommand, IndexOption, console
from avsearch.locations import resolve_index_path

app = typer.Typer(help="Inspect the configured model, or make a tiny offline one.", no_args_is_help=True)


@app.command("make-tiny", cls=HelpCommand)
def make_tiny(directory: Path = typer.Argument(..., help="Where to write the checkpoint."),
              seed: int = typer.Option(0, "--seed", help="Seed of the random weights.")) -> None:
    """Write a tiny random WAVE-architecture checkpoint (no download), for offline smoke runs.

    Its vectors mean nothing; it exercises the real WAVE loading and embedding code.

    Example:  avsearch model make-tiny ./tiny-ckpt && avsearch index demo-media --model ./tiny-ckpt
    """
    from avsearch.models.wave import make_tiny_checkpoint

    path = make_tiny_checkpoint(directory, seed=seed)
    console.print(f"wrote a tiny WAVE checkpoint to {path}")


@app.command("info", cls=HelpCommand)
def info(model: Optional[str] = typer.Option(None, "--model", "-m", help="Model spec to describe. Default: the index's model, else WAVE-7B."),
         index_dir: Optional[Path] = IndexOption,
         as_json: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """Which model is configured, where its files are, and whether they are present.

    Example:  avsearch model info --model tsinghua-ee/WAVE-7B
    """
    from avsearch.models.describe import describe_model

    index_model = None
    path = resolve_index_path(index_dir)
    recorded = preflight.recorded_model(path) if model is None else None
    if recorded is not None:
        index_model = recorded[1]
    facts = describe_model(model or index_model)
    if index_model:
        facts["configured_by"] = f"index {path}"
    if as_json:
        console.print_json(json.dumps(facts))
        return
    t = Table(show_header=False, title="model")
    t.add_column("what")
    t.add_column("value")
    for key, value in facts.items():
        t.add_row(key, shown_fact(key, value, facts))
    console.print(t)


def shown_fact(key: str, value, facts: dict) -> str:
    """A fact as a person reads it: yes/no, and where the files come from ("yes (from ...)")."""
    if key == "beats_present":  # None: no separate BEATs file, it is part of the checkpoint
        if value is None:
            return "yes (from the checkpoint)" if facts.get("present") else "no (the checkpoint is not present)"
        return "yes (from AVSEARCH_BEATS)" if value else "no (AVSEARCH_BEATS names a missing file)"
    if key == "present" and value:
        return f"yes (from {facts['path']})" if facts.get("path") else "yes (in the Hugging Face cache)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "-" if value is None else str(value)
