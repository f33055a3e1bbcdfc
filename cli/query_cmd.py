"""`avsearch query`: search with text, a sound, a silent video or a video with sound."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from avsearch.errors import AvsearchError, QueryError
from avsearch import preflight
from avsearch.locations import resolve_index_path
from avsearch.types import Query, View
from avsearch.cli.common import HelpCommand, IndexOption, console, err_console, hms, open_index, short_path
from avsearch.cli.prompt import PromptSession


def register(app: typer.Typer) -> None:
    app.command("query", cls=HelpCommand)(query)


def query(
    text: Optional[str] = typer.Argument(
        None, help="What to look for, in words. '-' reads one query per line from standard input, with the model "
                   "loaded once (a prompt when typed at a terminal); lines like ':k 5', ':view audio', "
                   "':audio FILE' change settings or query with media (':help' lists them).", show_default=False),
    audio: Optional[Path] = typer.Option(None, "--audio", help="Query with the sound of this file.", show_default=False),
    video: Optional[Path] = typer.Option(None, "--video", help="Query with the pictures of this file (silent).", show_default=False),
    av: Optional[Path] = typer.Option(None, "--av", help="Query with this video and its sound.", show_default=False),
    like: Optional[str] = typer.Option(None, "--like", help="More like this: a clip_id from an earlier --json result.", show_default=False),
    start: Optional[float] = typer.Option(None, "--start", help="Use the query file from this second."),
    end: Optional[float] = typer.Option(None, "--end", help="Use the query file up to this second."),
    view: str = typer.Option("any", "--view", help="Which indexed views to search: av, video, audio or any."),
    k: int = typer.Option(10, "-k", "--top", min=1, help="Number of hits."),
    instruction: Optional[str] = typer.Option(
        None, "--instruction", help="Re-rank the top candidates by re-embedding them with this instruction in the prompt."),
    rerank_top: int = typer.Option(20, "--rerank-top", help="How many candidates --instruction re-embeds."),
    path_prefix: Optional[str] = typer.Option(None, "--path", help="Only files under this folder (whole path components: 2019 never takes 2019-old), or this one file.", show_default=False),
    glob: Optional[str] = typer.Option(None, "--glob", help="Only files whose path matches this glob, e.g. '*/2019/*.mp4'.", show_default=False),
    min_duration: Optional[float] = typer.Option(None, "--min-duration", help="Only files at least this many seconds long."),
    max_duration: Optional[float] = typer.Option(None, "--max-duration", help="Only files at most this many seconds long."),
    indexed_after: Optional[str] = typer.Option(None, "--indexed-after", help="Only clips indexed after this date (YYYY-MM-DD[THH:MM])."),
    per_file: Optional[int] = typer.Option(None, "--per-file", min=1, help="At most this many hits per file."),
    min_score: Optional[float] = typer.Option(None, "--min-score", help="Drop hits scoring below this."),
    merge: bool = typer.Option(True, "--merge/--no-merge", help="Merge adjacent clips of a file into one hit."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per hit (for jq and scripts)."),
    thumbs: Optional[Path] = typer.Option(None, "--thumbs", help="Write one JPEG frame per hit into this folder.", show_default=False),
    contact_sheet: Optional[Path] = typer.Option(None, "--contact-sheet", help="Write a PNG grid of the hits.", show_default=False),
    export: Optional[Path] = typer.Option(None, "--export", help="Cut each hit's time range into its own file in this folder.", show_default=False),
    index_dir: Optional[Path] = IndexOption,
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Must match the index's model. Default: the index's model."),
    device: Optional[str] = typer.Option(None, "--device", help="cuda, cuda:1 or cpu. Default: cuda if present."),
    no_server: bool = typer.Option(False, "--no-server", help="Work in this process even when `avsearch serve` runs for the index."),
) -> None:
    """Search the index. Give TEXT, or one of --audio/--video/--av FILE, or --like CLIP_ID.

    Examples:

      avsearch query "a crowd cheering" -k 5

      avsearch query --audio siren.wav --view video --json | jq .path

      avsearch query "someone speaking" --instruction "Is a woman speaking?" --per-file 1

      avsearch query - --json < questions.txt     (one text query per line; model loaded once)
    """
    sources = [s for s in (text, audio, video, av, like) if s is not None]
    if len(sources) != 1:
        raise QueryError("give exactly one query: TEXT, --audio FILE, --video FILE, --av FILE or --like CLIP_ID")
    target = None if view == "any" else [View.parse(view)]
    # Everything that needs no model or LanceDB is checked first, so a mistake answers at once.
    index_path = resolve_index_path(index_dir)
    preflight.require_index(index_path)
    preflight.check_model_spec(index_path, model)
    media_file = next((p for p in (audio, video, av) if p is not None), None)
    if media_file is not None and not media_file.exists():
        raise QueryError(f"cannot read the query file: {media_file} does not exist; check the path")
    if (start is not None or end is not None) and media_file is None:
        raise QueryError("--start/--end pick a range of a query file; give --audio/--video/--av FILE or drop them")
    fields = dict(
        instruction=instruction, target_views=target, path_prefix=path_prefix, path_glob=glob,
        min_duration_s=min_duration, max_duration_s=max_duration,
        indexed_after=_parse_date(indexed_after) if indexed_after else None,
    )
    search_args = dict(k=k, merge_adjacent=merge, per_file=per_file, min_score=min_score, rerank_top=rerank_top)
    if text == "-":
        if thumbs or contact_sheet or export:
            raise QueryError("--thumbs, --contact-sheet and --export take one query; give it as TEXT instead of '-'")
        idx = open_index(index_path, model=model, device=device)
        failed = _query_lines(idx, PromptSession(dict(fields), dict(search_args)), as_json)
        raise typer.Exit(QueryError.exit_code if failed else 0)
    if text is not None:
        q = Query(text=text, **fields)
    elif like is not None:
        q = Query(clip_id=like, **fields)
    else:
        media, media_view = next((p, v) for p, v in ((audio, View.AUDIO), (video, View.VIDEO), (av, View.AV)) if p)
        q = Query(media=media, view=media_view, start_s=start, end_s=end, **fields)

    # A running `avsearch serve` has the model loaded: ask it, unless told to work here (an explicit
    # --model/--device is a request about this process's model).
    in_process = no_server or model is not None or device is not None
    result = None if in_process else _search_via_service(resolve_index_path(index_dir), q, search_args)
    if result is None:
        idx = open_index(index_path, model=model, device=device)
        result = idx.search_detailed(q, **search_args)
    hits = result.hits
    if as_json:
        for h in hits:
            print(json.dumps(h.to_dict(), ensure_ascii=False))
    elif not hits:
        err_console.print(f"[yellow]{_no_hits(result, min_score)}[/] (searched {resolve_index_path(index_dir)})")
    else:
        _print_table(hits, result)
    if thumbs or contact_sheet or export:
        from avsearch.cli import render

        if thumbs:
            written = render.write_thumbnails(hits, thumbs)
            err_console.print(f"wrote {len(written)} thumbnails to {thumbs}")
        if contact_sheet:
            render.write_contact_sheet(hits, contact_sheet)
            err_console.print(f"wrote contact sheet {contact_sheet}")
        if export:
            written = render.export_hits(hits, export)
            err_console.print(f"exported {len(written)} clips to {export}")
    if not hits and not as_json:
        raise typer.Exit(0)


def _search_via_service(index_dir: Path, q: Query, search_args: dict):
    """The service's answer as a SearchResult, or None when no service runs for the index."""
    from types import SimpleNamespace

    from avsearch.server.client import search_via_service
    from avsearch.types import Hit

    request = {"k": search_args["k"], "merge": search_args["merge_adjacent"], "per_file": search_args["per_file"],
               "min_score": search_args["min_score"], "rerank_top": search_args["rerank_top"],
               "views": [v.value for v in q.target_views] if q.target_views else None,
               "instruction": q.instruction, "path_glob": q.path_glob, "min_duration_s": q.min_duration_s,
               "max_duration_s": q.max_duration_s, "indexed_after": q.indexed_after,
               # the service's working directory is not ours: send the folder as an absolute path
               "path_prefix": str(Path(q.path_prefix).expanduser().absolute()) if q.path_prefix else None}
    if q.media is not None:
        request.update(view=q.view.value if q.view else None, start_s=q.start_s, end_s=q.end_s)
        answer = search_via_service(index_dir, request, media=Path(q.media))
    else:
        answer = search_via_service(index_dir, {**request, "text": q.text, "clip_id": q.clip_id})
    if answer is None:
        return None
    hits = [Hit(h["path"], h["start_s"], h["end_s"], View(h["view"]), h["score"], h["clip_id"],
                tuple(h["merged_clip_ids"]), tuple(h.get("duplicate_paths") or ())) for h in answer["hits"]]
    # Shaped like the retriever's SearchResult (hits, candidates, rerank) without importing it (it loads the store).
    rerank = SimpleNamespace(**answer["rerank"]) if answer.get("rerank") else None
    return SimpleNamespace(hits=hits, candidates=answer["candidates"], rerank=rerank)


def _query_lines(idx, session: PromptSession, as_json: bool) -> int:
    """Answer the queries of standard input, one per line (text, or ':' commands: cli/prompt.py);
    the number of lines that failed.

    At a terminal it prompts and keeps going after a bad query; piped, each JSON hit carries its
    line (`"query": ...`) so the answers can be told apart. Messages go to stderr, never among
    the results."""
    import sys

    interactive = sys.stdin.isatty()
    if interactive:
        try:
            import readline  # noqa: F401 - gives input() line editing and history (up arrow)
        except ImportError:
            pass
        err_console.print("Type a query; ':help' lists commands (:k, :view, :audio FILE ...); Ctrl-D ends.", highlight=False)
    # With results piped on (stdout not a terminal), the prompt goes to stderr, out of the results.
    prompt_on_stdout = sys.stdout.isatty()
    failed = 0
    while True:
        try:
            if interactive and not prompt_on_stdout:
                sys.stderr.write("query> ")
                sys.stderr.flush()
            line = input("query> " if prompt_on_stdout else "") if interactive else sys.stdin.readline()
        except EOFError:  # Ctrl-D at the prompt
            line = ""
        except KeyboardInterrupt:  # Ctrl-C at the prompt drops the line, as shells do
            err_console.print()  # (stderr: stdout may be a file of results)
            continue
        if not line:
            if interactive:
                err_console.print()
            return failed
        line = line.strip()
        if not line:
            continue
        reply = session.handle(line)
        if reply.error or reply.message:
            failed += bool(reply.error)
            if reply.error:
                err_console.print(f"[bold red]error:[/] {escape(reply.error)}")
            else:
                err_console.print(reply.message, markup=False, highlight=False)
            continue
        try:
            result = idx.search_detailed(reply.query, **session.search_args)
        except AvsearchError as err:  # a bad file or clip_id: this line fails, the session goes on
            failed += 1
            err_console.print(f"[bold red]error:[/] {escape(str(err))}")
            continue
        except KeyboardInterrupt:
            if not interactive:
                raise
            err_console.print("[yellow]query interrupted[/]")
            continue
        if as_json:
            for h in result.hits:
                print(json.dumps({"query": line, **h.to_dict()}, ensure_ascii=False), flush=True)
        elif result.hits:
            if not interactive:
                console.print(f"[bold]{line}[/]")
            _print_table(result.hits, result)
        else:
            err_console.print(f"[yellow]{_no_hits(result, session.search_args['min_score'])}[/] for {line!r}")


def _no_hits(result, min_score: Optional[float]) -> str:
    """Why a search listed nothing: all candidates under --min-score, or nothing matched at all."""
    return "no hit scored above --min-score" if min_score is not None and result.candidates else "no matching clips"


def _print_table(hits, result) -> None:
    table = Table(title=None)
    table.add_column("#", justify="right")
    table.add_column("score", justify="right")
    table.add_column("file")
    table.add_column("time")
    table.add_column("view")
    for rank, h in enumerate(hits, 1):
        table.add_row(str(rank), f"{h.score:.3f}", short_path(h.path), f"{hms(h.start_s)}–{hms(h.end_s)}", h.view.value)
        if h.duplicate_paths:  # one hit per content: its copies and links under it
            table.add_row("", "", also_at(h.duplicate_paths), "", "")
    console.print(table)
    if result.rerank is not None:
        r = result.rerank
        err_console.print(f"re-ranked with the instruction: {r.embedded} re-embedded, {r.cached} from cache"
                          + (f", {r.failed} unreadable" if r.failed else ""))


def also_at(paths, shown: int = 3) -> str:
    more = f" (+{len(paths) - shown} more)" if len(paths) > shown else ""
    return "[dim]also at: " + escape(", ".join(short_path(p) for p in paths[:shown])) + more + "[/]"


def _parse_date(value: str) -> float:
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        raise QueryError(f"--indexed-after {value!r} is not a date; use YYYY-MM-DD or YYYY-MM-DDTHH:MM") from None
