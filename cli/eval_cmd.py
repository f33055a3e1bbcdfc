"""`avsearch eval custom | audiocaps | clotho | msrvtt | vggsound | musiccaps`: measure search
quality. A thin shell over avsearch.evaluation."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import List, Optional

import typer

from avsearch.cli.common import HelpCommand, IndexOption, console, err_console, open_index

app = typer.Typer(
    help=("Measure search quality: your own relevance judgements against an index, or the public "
          "benchmarks the WAVE paper reports.\n\n"
          "  avsearch eval custom judgements.csv --index ./avsearch-index\n\n"
          "  avsearch eval audiocaps --data ~/data/audiocaps --model tsinghua-ee/WAVE-7B"),
    no_args_is_help=True,
)

OutOption = typer.Option(Path("avsearch-eval"), "--out", help="Folder for the JSON and markdown results.")
JsonOption = typer.Option(False, "--json", help="Print the whole result as JSON on stdout (the files are written too).")
DepthOption = typer.Option(100, "--depth", min=10, help="Results scored per query (MRR counts a first hit up to here).")
AnnOption = typer.Option(True, "--ann/--no-ann", help="Also score an IVF (ANN) index built over the same clips.")
SeedOption = typer.Option(0, "--seed", help="Seed of the bootstrap confidence intervals.")


@app.command("custom", cls=HelpCommand)
def custom(judgements: Path = typer.Argument(..., help="CSV of relevance judgements (see below)."),
           index_dir: Optional[Path] = IndexOption,
           target_views: Optional[List[str]] = typer.Option(None, "--target-view", help="Gallery view(s) to score: av, video, audio. Default: every view the index holds."),
           depth: int = DepthOption, ann: bool = AnnOption, seed: int = SeedOption,
           out: Path = OutOption, as_json: bool = JsonOption) -> None:
    """Score your own relevance judgements against an existing index: recall@1/5/10, MRR and
    nDCG@10 per query view → target view, with 95% bootstrap intervals.

    The CSV has a header; each row is one (query, relevant file) pair:

      query,query_file,query_start,query_end,query_view,file,start,end,grade

      a dog barking,,,,,dogs/park.mp4,12,20,2

      ,bark.wav,0,3,audio,dogs/park.mp4,,,1

    `query` is text, or `query_file` a media file (a range of it, read as a view). A hit counts
    when its time range overlaps the judged `start`-`end` (the whole `file` when empty). Bad
    rows are reported one error each; the rest is evaluated.

    Example:  avsearch eval custom judgements.csv --index ./avsearch-index --json
    """
    from avsearch.evaluation.custom import evaluate_custom
    from avsearch.evaluation.report import build_report, provenance

    with open_index(index_dir) as index:
        started = time.perf_counter()
        result = evaluate_custom(index, judgements, target_views=target_views, depth=depth, ann=ann, seed=seed,
                                 progress=lambda name: err_console.print(f"scoring {name}"))
        record = provenance(index, {"judgements": str(judgements.expanduser().absolute()), "depth": depth, "ann": ann,
                                    "bootstrap": {"resamples": 1000, "seed": seed},
                                    "target_views": target_views or list(index.settings.views)})
        report = build_report("custom", result, record, {"evaluate": round(time.perf_counter() - started, 3)})
    _show(report, out, as_json)


def _bench_command(name: str, doc: str):
    def command(data: Path = typer.Option(..., "--data", help="Folder with the data set's metadata file and media."),
                model: Optional[str] = typer.Option(None, "--model", "-m", help="Model spec. Default: WAVE-7B."),
                index_dir: Optional[Path] = typer.Option(None, "--index", "-i", help="Build the index here and keep it (a re-run embeds only new files). Default: a temporary one."),
                clip_seconds: Optional[float] = typer.Option(None, "--clip-seconds", min=0.1, help="Clip length. Default: the data set's longest item (one clip per item)."),
                fps: Optional[float] = typer.Option(None, "--fps", min=0.1, help="Frames sampled per second of video. Default: 2."),
                frames: Optional[str] = typer.Option(None, "--frames", help="Which decoded frames may be sampled: bidir, nonref, none, keyframes."),
                resize: Optional[str] = typer.Option(None, "--resize", help="Frame resize path: torch, pil (WAVE's reference), swscale."),
                view: Optional[str] = typer.Option(None, "--view", help="video (the paper's) or av. msrvtt: the gallery's view; vggsound, musiccaps: the query's view (e.g. --view av). Refused for audiocaps and clotho."),
                device: Optional[str] = typer.Option(None, "--device", help="cuda, cuda:1, cpu. Default: the best available."),
                depth: int = DepthOption, ann: bool = AnnOption, seed: int = SeedOption,
                out: Path = OutOption, as_json: bool = JsonOption) -> None:
        from avsearch.evaluation.bench import Knobs, run_benchmark

        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        knobs = Knobs(clip_s=clip_seconds, fps=fps, frames=frames, resize=resize, view=view)
        with Progress(TextColumn(f"[bold]indexing {name}"), BarColumn(), MofNCompleteColumn(), TextColumn("files"),
                      TimeElapsedColumn(), console=err_console, transient=True) as bar:
            task = bar.add_task("index", total=None)
            report = run_benchmark(name, data, model=model, index_dir=index_dir, knobs=knobs, depth=depth, ann=ann,
                                   seed=seed, device=device,
                                   progress=lambda p: bar.update(task, total=p.files_total, completed=p.files_done))
        _show(report, out, as_json)

    command.__doc__ = doc
    return command


def _bench_doc(name: str) -> str:
    from avsearch.evaluation import benchmarks

    # One line per paragraph: the help renderer keeps a docstring's line breaks.
    module_doc = "\n\n".join(" ".join(p.split()) for p in getattr(benchmarks, name).__doc__.strip().split("\n\n"))
    return (f"{module_doc}\n\nIndexes the test media (a temporary index unless --index), scores exact search and "
            "an IVF (ANN) index, and prints our figures beside the WAVE paper's.\n\n"
            f"Example:  avsearch eval {name} --data ~/data/{name} --model tsinghua-ee/WAVE-7B --resize pil")


for _name in ("audiocaps", "clotho", "msrvtt", "vggsound", "musiccaps"):
    app.command(_name, cls=HelpCommand)(_bench_command(_name, _bench_doc(_name)))


def _show(report: dict, out: Path, as_json: bool) -> None:
    from avsearch.evaluation.report import to_markdown, write_report

    json_path, md_path = write_report(report, out)
    if as_json:
        console.print_json(json.dumps(report))
    else:
        console.print(to_markdown(report), markup=False, highlight=False, soft_wrap=True)
    err_console.print(f"results: {json_path} and {md_path}", soft_wrap=True)
