"""`avsearch index`: add folders and files to an index (incremental, resumable)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional

import typer
from rich.markup import escape
from rich.table import Table

import avsearch  # avsearch.Index loads LanceDB/FAISS on first use: --help and usage errors stay instant
from avsearch import preflight
from avsearch.locations import resolve_index_path
from avsearch.types import FRAME_CHOICES, RESIZE_CHOICES, check_choice
from avsearch.cli.common import HelpCommand, IndexOption, console, err_console, fail, short_path
from avsearch.cli.manage_cmd import reason_without_path
from avsearch.cli.progress_view import progress_view

if TYPE_CHECKING:
    from avsearch.index import Index
    from avsearch.store import IndexSettings


def register(app: typer.Typer) -> None:
    app.command("index", cls=HelpCommand)(index)


def index(
    ctx: typer.Context,
    paths: List[Path] = typer.Argument(..., help="Folders and files to index.", show_default=False),
    index_dir: Optional[Path] = IndexOption,
    model: Optional[str] = typer.Option(
        None, "--model", "-m",
        help="Model: 'tiny' (offline test model), a checkpoint directory, or a Hugging Face id. "
             "Default: the index's own model; for a new index tsinghua-ee/WAVE-7B.",
    ),
    device: Optional[str] = typer.Option(None, "--device", help="cuda, cuda:1 or cpu. Default: cuda if present."),
    clip_s: float = typer.Option(10.0, "--clip-seconds", help="Clip length for a NEW index."),
    fps: float = typer.Option(2.0, "--fps", help="Frames sampled per second for a NEW index."),
    views: str = typer.Option("av,video,audio", "--views", help="Views embedded per clip, for a NEW index."),
    frames: str = typer.Option(
        FRAME_CHOICES[0], "--frames",
        help="Which decoded frames a sample may use, for a NEW index: bidir (I/P frames; fast, a sample "
             "at most a few frames from its instant), nonref (also referenced B-frames), none (every frame), "
             "keyframes (one per keyframe interval: a coarse pass several times faster).",
    ),
    resize: str = typer.Option(
        RESIZE_CHOICES[0], "--resize",
        help="How frames are scaled to the model's size, for a NEW index: torch (PIL's bicubic through "
             "torch's fast kernel: at most 2 levels of 255 off, on under 1% of pixels), pil (WAVE's reference "
             "preprocessing, bit for bit; slower), swscale (FFmpeg's bicubic: fastest, visibly different pixels).",
    ),
    prune: bool = typer.Option(True, "--prune/--no-prune", help="Drop indexed files under PATHS that are gone."),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Try again files that failed before."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan (new/changed/moved/duplicate/deleted/unchanged); change nothing."),
    workers: Optional[int] = typer.Option(
        None, "--workers", min=1, show_default="half the CPUs, 2 to 4",
        help="Decode threads: each takes a file; one with no file left takes half of a long file another is "
             "decoding (both parts >= 30 s). More than 4 measured slower, even on 16 cores."),
    as_json: bool = typer.Option(False, "--json", help="Print the final report as JSON."),
    quiet: bool = typer.Option(
        False, "--quiet", "-q",
        help="No progress and no table: only errors, warnings and one summary line at the end. "
             "(Without it, a terminal shows one live progress line; a pipe or log gets plain lines, "
             "one per phase and at most one every 5 s.)"),
    follow_symlinks: bool = typer.Option(
        True, "--follow-symlinks/--no-follow-symlinks",
        help="Follow symlinked folders (each real folder once: no loops) and take symlinked files; a content "
             "under several paths (copies, hard links, symlinks) is embedded once and its hits list the other "
             "paths. --no-follow-symlinks skips symlinks (and prunes the ones indexed before); it holds for this run only."),
    include: Optional[List[str]] = typer.Option(
        None, "--include", show_default=False, metavar="GLOB",
        help="Index only files matching this glob, on the path relative to PATH or the file name; repeatable. "
             "Stored with the index for the folders given: later runs without --include reuse it there (other folders "
             "are not filtered by it); --include '' clears it. "
             "Example: --include '*.mp4' --include 'interviews/*'"),
    exclude: Optional[List[str]] = typer.Option(
        None, "--exclude", show_default=False, metavar="GLOB",
        help="Skip files (and folders) matching this glob, on the relative path or the name; repeatable; wins "
             "over --include; indexed files it matches are pruned. Stored like --include; --exclude '' clears the stored "
             "excludes. "
             "Example: --exclude 'drafts/*' --exclude '*.part'"),
    # A flag plus a separate address option, not `--ray [ADDRESS]`: an option with an optional value
    # would read `avsearch index --ray ~/Videos` as the address ~/Videos.
    ray: bool = typer.Option(
        False, "--ray",
        help='Decode and embed on Ray: a local Ray instance using every GPU and CPU of this machine (one embed '
             'actor per GPU). Needs pip install "avsearch[ray]". Example: avsearch index ~/Videos --ray'),
    ray_address: Optional[str] = typer.Option(
        None, "--ray-address", metavar="ADDRESS",
        help="Join a running Ray cluster instead (implies --ray): auto (the cluster this machine belongs to) or "
             "ray://HEAD:10001. Every node needs avsearch installed and the media at the same paths. "
             "Example: avsearch index /mnt/archive --ray-address auto"),
) -> None:
    """Index video and audio under PATHS.

    Re-running is cheap: unchanged files are skipped, moved files are re-pointed without
    re-embedding, changed files are re-embedded, and a killed run resumes where it stopped.
    Broken files are recorded (see `avsearch failures`) and never stop the run.
    Ctrl-C or SIGTERM stop it cleanly (exit code 130 or 143): files committed so far are kept.

    Progress names each phase as it comes: scanning, fingerprinting, probing, loading model
    (generating the tiny model on its first use), embedding (files, clips, clips/s, ETA),
    committing, building ANN index.

    Copies, hard links and symlinks of one file are embedded once (see --follow-symlinks).

    Example:  avsearch index ~/Videos /mnt/archive/tapes --model tiny
    Example:  avsearch index ~/Videos -q          # for cron: one summary line
    Example:  avsearch index ~/Videos --exclude 'drafts/*' --exclude '*.part'
    Example:  avsearch index ~/Videos --index s3://my-bucket/avsearch   # credentials: AWS_* (README)
    """
    # Everything that needs no model or LanceDB is checked first, so a mistake answers at once.
    index_path = resolve_index_path(index_dir)
    preflight.check_paths_exist(paths)
    preflight.check_location(index_path)
    preflight.check_model_spec(index_path, model)
    try:
        check_choice("frames", frames, FRAME_CHOICES)
        check_choice("resize", resize, RESIZE_CHOICES)
    except ValueError as err:
        raise fail(f"--{err}", 2) from None
    from avsearch.store import IndexSettings  # LanceDB with it: loaded only once the checks pass

    try:
        settings = IndexSettings(clip_s=clip_s, fps=fps, views=tuple(v.strip() for v in views.split(",") if v.strip()),
                                 frames=frames, resize=resize)
    except ValueError as err:
        raise fail(f"--{err}", 2) from None
    idx = avsearch.Index.open(index_path, model=model, device=device, create=True, settings=settings)
    _warn_ignored_settings(ctx, settings, idx.settings)
    if dry_run:
        _print_plan(idx.plan(paths, prune=prune, retry_failed=retry_failed, follow_symlinks=follow_symlinks,
                             include=include, exclude=exclude), as_json)
        return
    with progress_view(quiet or as_json) as view:
        report = idx.add(paths, prune=prune, retry_failed=retry_failed, progress=view, decode_workers=workers,
                         follow_symlinks=follow_symlinks, include=include, exclude=exclude,
                         engine="ray" if ray or ray_address else "local", ray_address=ray_address)
    if as_json:
        console.print_json(json.dumps(report.to_dict()))
        return
    if quiet:
        console.print(summary_line(report), highlight=False, soft_wrap=True)
        return
    if not idx.exists:  # a new index with nothing to record is not made (Index.add)
        _print_nothing_found(paths, idx)
        return
    _print_report(report, idx)


def _print_nothing_found(paths: List[Path], idx: Index) -> None:
    from avsearch.media.container import SUPPORTED_EXTENSIONS

    where = ", ".join(short_path(str(p)) for p in paths)
    console.print(f"No media found in {escape(where)}: nothing to index, so no index was made at "
                  f"{escape(short_path(str(idx.path)))}.\navsearch reads files ending in "
                  f"{', '.join('.' + e for e in sorted(SUPPORTED_EXTENSIONS))} "
                  "(and those --include/--exclude let through).", highlight=False)


def summary_line(report) -> str:
    """--quiet's one line: what the run did, and where to look when something failed."""
    parts = [f"indexed {_count(len(report.indexed), 'file')} ({_count(report.clips_added, 'clip')})",
             f"{report.unchanged} unchanged"]
    parts += [f"{n} {what}" for n, what in ((len(report.moved), "moved"), (len(report.deleted), "deleted")) if n]
    if report.duplicates:
        n = len(report.duplicates)
        parts.append(f"{n} {'copy' if n == 1 else 'copies'} of indexed content")
    if report.failed:
        parts.append(f"{len(report.failed)} failed (see `avsearch failures`)")
    return ", ".join(parts) + f" in {report.seconds:.1f} s"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _print_plan(plan, as_json: bool) -> None:
    counts = plan.counts()
    from avsearch.indexer.plan import WORK_REASONS

    work = {reason: [w.path for w in plan.work if w.reason == reason] for reason in WORK_REASONS}
    if as_json:
        console.print_json(json.dumps({
            "counts": counts,
            **work,
            "moved": [[m.old_path, m.new_path] for m in plan.moved],
            "duplicate": [[d.path, d.canonical] for d in plan.duplicates],
            "deleted": plan.deleted,
            "unreadable": [[p.path, p.reason] for p in plan.problems],
        }))
        return
    table = Table(title="Plan (dry run: nothing changed)")
    table.add_column("action")
    table.add_column("files", justify="right")
    table.add_column("examples")
    examples = {
        **work,
        "moved": [f"{m.old_path} → {m.new_path}" for m in plan.moved],
        "duplicate": [f"{d.path} = {d.canonical}" for d in plan.duplicates],
        "deleted": plan.deleted,
        "unchanged": plan.unchanged,
        "unreadable": [f"{p.path} ({p.reason})" for p in plan.problems],
    }
    for action, n in counts.items():
        shown = examples.get(action, [])[:3]
        more = f" … +{n - len(shown)}" if n > len(shown) else ""
        table.add_row(action, str(n), ", ".join(short_path(s) for s in shown) + more)
    console.print(table)


def _print_report(report, idx: Index) -> None:
    table = Table(title=f"Indexed into {short_path(str(idx.path))}", show_header=False)
    table.add_column("what")
    table.add_column("n", justify="right")
    table.add_row("files indexed", str(len(report.indexed)))
    table.add_row("clips added", str(report.clips_added))
    table.add_row("unchanged (skipped)", str(report.unchanged))
    table.add_row("moved (re-pointed)", str(len(report.moved)))
    if report.duplicates:
        table.add_row("duplicates (same content, not embedded again)", str(len(report.duplicates)))
    table.add_row("deleted (pruned)", str(len(report.deleted)))
    table.add_row("failed", str(len(report.failed)))
    if report.partly:
        table.add_row("partly indexed (damage skipped)", str(len(report.partly)))
    table.add_row("media time", f"{report.media_s / 60:.1f} min")
    table.add_row("wall time", f"{report.seconds:.1f} s")
    console.print(table)
    if report.failed:
        fails = Table(title="Failed files (recorded; see `avsearch failures`)")
        fails.add_column("file", overflow="fold", ratio=2)
        fails.add_column("reason", ratio=3)
        for path, reason in report.failed[:20]:
            fails.add_row(escape(short_path(path)), escape(reason_without_path(reason, path)))
        if len(report.failed) > 20:
            fails.add_row(f"… {len(report.failed) - 20} more", "")
        console.print(fails)


# Options that shape a new index, by CLI parameter name -> IndexSettings field and flag.
_NEW_INDEX_OPTIONS = {"clip_s": "--clip-seconds", "fps": "--fps", "views": "--views", "frames": "--frames",
                      "resize": "--resize"}


def _warn_ignored_settings(ctx: typer.Context, asked: IndexSettings, kept: IndexSettings) -> None:
    """An existing index keeps the settings it was made with (its clips must stay comparable): say
    so when the command line asked for something else, instead of ignoring it silently."""
    for name, flag in _NEW_INDEX_OPTIONS.items():
        # By name: Typer may carry its own copy of click, whose ParameterSource is another enum.
        if getattr(ctx.get_parameter_source(name), "name", None) != "COMMANDLINE":
            continue
        if getattr(asked, name) != getattr(kept, name):
            value = getattr(kept, name)
            shown = ",".join(value) if isinstance(value, tuple) else value
            err_console.print(f"[yellow]{flag} ignored: this index was made with {flag} {shown}, which it keeps "
                              "so its clips stay comparable. Index into a new --index folder to change it.[/]")
