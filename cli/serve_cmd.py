"""`avsearch serve`: keep the index and its model warm and answer over HTTP (page, API, jobs)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from avsearch.cli.common import HelpCommand, IndexOption, err_console, open_index


def register(app: typer.Typer) -> None:
    app.command("serve", cls=HelpCommand)(serve)


def serve(
    index_dir: Optional[Path] = IndexOption,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on. Anything but loopback needs the token."),
    port: int = typer.Option(8765, "--port", help="Port to listen on (0: any free port)."),
    token: Optional[str] = typer.Option(None, "--token", envvar="AVSEARCH_TOKEN",
                                        help="The token every request must carry. Default: a random one, printed.", show_default=False),
    no_token: bool = typer.Option(False, "--no-token", help="Ask no token (loopback hosts only)."),
    root: list[Path] = typer.Option([], "--root", help="A folder the page and POST /api/jobs may index under (repeatable).", show_default=False),
    max_upload_mb: float = typer.Option(200, "--max-upload-mb", help="Largest query upload, in MB (larger: HTTP 413)."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Must match the index's model. Default: the index's model."),
    device: Optional[str] = typer.Option(None, "--device", help="cuda, cuda:1 or cpu. Default: cuda if present."),
) -> None:
    """Serve the index: a web page to search and play hits, a JSON API (docs at /docs), indexing
    jobs; `avsearch query` uses it while it runs.

    Examples:

      avsearch serve                                   (then open the printed link)

      avsearch serve --root ~/Videos --port 9000       (the page may index folders under ~/Videos)
    """
    from avsearch import preflight
    from avsearch.locations import resolve_index_path

    # No index, or a --model it was not built with: say so before the service's imports and the model.
    preflight.require_index(resolve_index_path(index_dir))
    preflight.check_model_spec(resolve_index_path(index_dir), model)
    from avsearch.server.config import ServeConfig
    from avsearch.server.runner import Service

    config = ServeConfig.make(host=host, port=port, token=token, no_token=no_token,
                              max_upload_mb=max_upload_mb, roots=root)
    idx = open_index(index_dir, model=model, device=device)
    err_console.print(f"loading the model and the index at {idx.path} ...")
    service = Service(idx, config, log_level="warning")

    def ready() -> None:
        err_console.print(f"avsearch serves {idx.path}\n  page: [bold]{service.page_url}[/]\n"
                          f"  API:  {service.url}/docs\n  `avsearch query` uses it while it runs; Ctrl-C stops it.",
                          highlight=False)

    service.run(on_ready=ready)
