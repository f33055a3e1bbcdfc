"""The `avsearch` command. Every command is a thin shell over `avsearch.Index`."""

from __future__ import annotations

import signal
import sys
import threading
import traceback
from typing import Optional

import typer

from avsearch.errors import AvsearchError
from avsearch.cli.common import err_console, state
from avsearch.cli import eval_cmd, index_cmd, manage_cmd, model_cmd, query_cmd, serve_cmd

app = typer.Typer(
    name="avsearch",
    help=(
        "Any-to-any search over local video and audio with WAVE embeddings.\n\n"
        "Index a folder, then ask with words, a sound, a silent video or a video with sound:\n\n"
        "  avsearch index ~/Videos --model tiny\n\n"
        "  avsearch query \"a dog barking in the rain\" -k 5\n\n"
        "  avsearch query --audio bark.wav --view video\n\n"
        "The index lives in ./avsearch-index unless --index or $AVSEARCH_INDEX says otherwise."
    ),
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root(verbose: bool = typer.Option(False, "--verbose", "-v", help="Show full tracebacks for errors.")) -> None:
    state.verbose = verbose


index_cmd.register(app)
query_cmd.register(app)
manage_cmd.register(app)
serve_cmd.register(app)
app.add_typer(model_cmd.app, name="model")
app.add_typer(eval_cmd.app, name="eval")


INTERRUPTED = 130  # the shell's code for Ctrl-C, and what Typer turns a KeyboardInterrupt into
TERMINATED = 128 + signal.SIGTERM  # 143: the shell's code for SIGTERM, kept after a clean stop

_stop_signal: Optional[int] = None


def _stop_like_ctrl_c(signum: int, frame) -> None:
    """SIGTERM (systemd, docker stop, kill) takes the Ctrl-C path: the KeyboardInterrupt unwinds
    the main thread, so the decode workers stop, the write lock is released and cleared, and the
    files committed so far stay. Later SIGTERMs are ignored so they cannot cut that clean-up short
    (SIGKILL still works, and the index survives it too)."""
    global _stop_signal
    _stop_signal = signum
    signal.signal(signum, signal.SIG_IGN)
    raise KeyboardInterrupt


def main() -> None:
    global _stop_signal
    _stop_signal = None
    in_main_thread = threading.current_thread() is threading.main_thread()  # where handlers may be set
    previous = signal.signal(signal.SIGTERM, _stop_like_ctrl_c) if in_main_thread else None
    try:
        _run()
    finally:
        if in_main_thread:  # main() called in-process (tests, embedding apps) leaves no handler behind
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def _run() -> None:
    try:
        code = app(standalone_mode=False)
        # Without standalone mode click returns the code of a typer.Exit instead of raising it,
        # Ctrl-C's included: Typer catches KeyboardInterrupt itself and returns 130, silently.
        if code == INTERRUPTED:
            _interrupted()
        if isinstance(code, int) and code:
            sys.exit(code)
    except AvsearchError as err:
        if state.verbose:
            traceback.print_exc()
        err_console.print(f"[bold red]error:[/] {err}")
        sys.exit(err.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err_console.print("aborted")
        sys.exit(INTERRUPTED)
    except KeyboardInterrupt:
        _interrupted()
    except Exception as err:  # click usage errors and the truly unexpected
        if _is_click(err, "ClickException"):  # a mistyped option or value: usage and the fix, exit 2
            err.show()
            sys.exit(err.exit_code)
        if _is_click(err, "Exit"):
            sys.exit(err.exit_code)
        if state.verbose:
            raise
        err_console.print(f"[bold red]unexpected error:[/] {type(err).__name__}: {err}\n(run with --verbose for the traceback)")
        sys.exit(1)


def _interrupted() -> None:
    command = next((arg for arg in sys.argv[1:] if not arg.startswith("-")), "")
    why = ": files committed so far are kept; re-run to finish" if command == "index" else ""
    if _stop_signal is not None:
        err_console.print(f"stopped by {signal.Signals(_stop_signal).name}{why}")
        sys.exit(TERMINATED)
    err_console.print(f"interrupted{why}")
    sys.exit(INTERRUPTED)


def _is_click(err: BaseException, name: str) -> bool:
    # By class name: Typer >= 0.26 raises the exceptions of its own vendored copy of click, which
    # are not the `click` package's classes (isinstance on those missed every usage error).
    return any(cls.__name__ == name and cls.__module__.endswith("click.exceptions") for cls in type(err).__mro__)


if __name__ == "__main__":
    main()
