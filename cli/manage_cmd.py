"""`avsearch status | failures | remove | reindex | doctor | relocate | sample-media`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer
from rich.markup import escape
from rich.table import Table

from avsearch.cli.common import HelpCommand, IndexOption, console, err_console, open_index, short_path


def register(app: typer.Typer) -> None:
    app.command("status", cls=HelpCommand)(status)
    app.command("failures", cls=HelpCommand)(failures)
    app.command("remove", cls=HelpCommand)(remove)
    app.command("reindex", cls=HelpCommand)(reindex)
    app.command("doctor", cls=HelpCommand)(doctor)
    app.command("relocate", cls=HelpCommand)(relocate)
    app.command("sample-media", cls=HelpCommand)(sample_media)


def status(index_dir: Optional[Path] = IndexOption,
           as_json: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """Show what an index holds: files, clips, hours per view, failures, model, ANN state, size.

    Example:  avsearch status --index /mnt/archive/avsearch-index
    """
    stats = open_index(index_dir).stats()
    if as_json:
        console.print_json(json.dumps(stats))
        return
    if stats.get("damaged"):
        _print_damaged(stats)
        return
    t = Table(title=f"avsearch index {short_path(stats['index'])}", show_header=False)
    t.add_column("what")
    t.add_column("value")
    t.add_row("model", f"{stats['model_id']}  (from {stats['model_source']})")
    t.add_row("dimension", str(stats["dim"]))
    t.add_row("files indexed", str(stats["files_ok"]))
    if stats.get("files_partial"):
        t.add_row("files part done", f"{stats['files_partial']}  (long files an interrupted run left; "
                  "`avsearch index` again finishes them)")
    if stats.get("files_damaged"):
        t.add_row("files partly indexed", f"{stats['files_damaged']}  (damaged stretches skipped; see `avsearch failures`)")
    if stats.get("files_duplicate"):
        t.add_row("duplicates", f"{stats['files_duplicate']}  (copies and links of indexed files: embedded once)")
    t.add_row("files failed", str(stats["files_failed"]) + ("  (see `avsearch failures`)" if stats["files_failed"] else ""))
    t.add_row("clips", str(stats["clips"]))
    for view, n in sorted(stats["clips_by_view"].items()):
        t.add_row(f"  {view}", f"{n} clips, {stats['hours_by_view'][view]:.2f} h")
    ann = stats["ann"]
    ann_text = "not built yet" if ann["kind"] is None else (
        f"{ann['kind']}, {ann['vectors']} vectors, " + ("up to date" if ann["fresh"] else "stale (rebuilt on next query or `avsearch reindex`)"))
    t.add_row("ANN index", ann_text)
    t.add_row("settings", f"{stats['settings']['clip_s']:g} s clips, {stats['settings']['fps']:g} fps, views {','.join(stats['settings']['views'])}")
    globs = stats.get("patterns") or {}
    if globs.get("include") or globs.get("exclude"):
        t.add_row("patterns", escape("  ".join(f"--{kind} {g}" for kind in ("include", "exclude")
                                               for g in globs.get(kind, []))
                                     + "  (stored: later runs under the same folders apply them; "
                                       "--include '' / --exclude '' clears that kind)"))
    t.add_row("disk", f"{stats['disk_bytes'] / 1e6:.1f} MB")
    console.print(t)


def _print_damaged(stats: dict) -> None:
    console.print(f"avsearch index {short_path(stats['index'])}: model {stats['model_id']}, "
                  f"dimension {stats['dim']}")
    console.print("[bold red]the index is damaged:[/]")
    for p in stats["problems"]:
        console.print(f"  {p['part']}: {escape(p['problem'])}")
    console.print("run `avsearch doctor --repair` to fix it")


def doctor(index_dir: Optional[Path] = IndexOption,
           repair: bool = typer.Option(False, "--repair", help="Fix what can be fixed (takes the write lock)."),
           as_json: bool = typer.Option(False, "--json", help="Print the report as JSON.")) -> None:
    """Check an index: tables and their versions, orphan clips, files with missing clips, ANN
    coverage, metadata. With --repair: restore each damaged table to its newest readable version
    (Lance keeps versions), drop orphan clips, mark files with missing clips for re-embedding, and
    rebuild the ANN index. Media is never touched; re-run `avsearch index` afterwards to redo what
    the repair handed back.

    Example:  avsearch doctor --repair --index ./avsearch-index
    """
    report = open_index(index_dir).doctor(repair=repair)
    if as_json:
        console.print_json(json.dumps(report.as_dict()))
    else:
        for f in report.findings:
            console.print(f"[bold]{f.part}[/]: {escape(f.problem)}" + ("" if repair else f"  [dim](--repair: {escape(f.repair)})[/]"))
        for line in report.repaired:
            console.print(f"repaired: {escape(line)}")
        for f in report.remaining:
            console.print(f"[bold red]still wrong[/] {f.part}: {escape(f.problem)}")
        if report.ok:
            console.print("no problems found")
    if report.remaining or (report.findings and not repair):
        raise typer.Exit(1)


def failures(index_dir: Optional[Path] = IndexOption,
             as_json: bool = typer.Option(False, "--json", help="One JSON object per failed file.")) -> None:
    """List files that could not be indexed, with the reason, and files indexed only in part
    (damaged stretches the decoder skipped).

    Fix or replace them and run `avsearch index` again (changed files are retried), or
    `avsearch index PATH --retry-failed` to retry unchanged ones.

    Example:  avsearch failures --json | jq -r .path
    """
    rows = open_index(index_dir).failures()
    if as_json:
        for r in rows:
            print(json.dumps(r, ensure_ascii=False))
        return
    if not rows:
        console.print("no failed files")
        return
    failed = sum(r["status"] == "failed" for r in rows)
    partly = len(rows) - failed
    t = Table(title=f"{failed} failed file{'' if failed == 1 else 's'}" + (f", {partly} partly indexed" if partly else ""))
    t.add_column("file", overflow="fold", ratio=2)
    t.add_column("status", no_wrap=True)
    t.add_column("reason", ratio=3)
    for r in rows:
        t.add_row(escape(short_path(r["path"])), r["status"], escape(reason_without_path(r["error"] or "", r["path"])))
    console.print(t)


def reason_without_path(reason: str, path: str) -> str:
    """The reason a file failed, without the file's own path (the table's first column names it):
    repeating a long absolute path in every row pushed both columns off an 80-column terminal."""
    return reason.replace(f"{path}: ", "").replace(path, "the file").strip()


def remove(paths: List[Path] = typer.Argument(..., help="Files or folders to forget.", show_default=False),
           index_dir: Optional[Path] = IndexOption) -> None:
    """Remove files (or everything under folders) from the index. Media on disk is not touched.

    Example:  avsearch remove ~/Videos/old-tapes
    """
    n = open_index(index_dir).remove(paths)
    console.print(f"removed {n} file{'s' if n != 1 else ''} from the index")


def reindex(index_dir: Optional[Path] = IndexOption) -> None:
    """Rebuild the ANN (FAISS) index from the stored vectors. Nothing is re-embedded.

    Example:  avsearch reindex --index ./avsearch-index
    """
    state = open_index(index_dir).reindex()
    console.print(f"ANN index rebuilt: {state['kind']}, {state['vectors']} vectors")


def relocate(old_prefix: Path = typer.Argument(..., help="The folder the files were indexed under.", show_default=False),
             new_prefix: Path = typer.Argument(..., help="The folder they are under now.", show_default=False),
             verify: int = typer.Option(8, "--verify", min=1, help="How many files, picked at random, must have "
                                        "the same content fingerprint at the new place (a large number checks all)."),
             index_dir: Optional[Path] = IndexOption) -> None:
    """Re-point the index after moving an archive (another mount point, a renamed folder).

    Nothing is re-embedded. A sample of the files is checked at the new place first; if one is
    missing or differs, nothing changes.

    Example:  avsearch relocate /media/old-disk/tapes /mnt/archive/tapes
    """
    done = open_index(index_dir).relocate(old_prefix, new_prefix, verify=verify)
    console.print(f"relocated {done['files']} file{'s' if done['files'] != 1 else ''} to {short_path(str(new_prefix))} "
                  f"({len(done['verified'])} checked by content)")


def sample_media(directory: Path = typer.Argument(Path("demo-media"), help="Folder to write into.")) -> None:
    """Write a few tiny generated video and audio files, for trying avsearch offline.

    Example:  avsearch sample-media demo-media && avsearch index demo-media --model tiny
    """
    from avsearch.media.synth import make_demo_folder

    files = make_demo_folder(directory)
    err_console.print(f"wrote {len(files)} files to {directory}")
