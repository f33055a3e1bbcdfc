"""VGGSound test split (Chen et al., 2020): video→audio, the paper's AV-RET.

Metadata: VGGSound's own `vggsound.csv`, no header: youtube_id,start_seconds,label,split; the
rows whose split is "test" (~15k clips of 10 s). Media under --data: the cut clip as
`<youtube_id>_<start_seconds as 6 digits>.mp4` (the release's naming, e.g. `abc_000030.mp4`),
`<youtube_id>_<start_seconds>.<ext>` or `<youtube_id>.<ext>` in ./, video/ or test/.
Each clip's silent video is a query; the gallery is every clip's sound; its own sound is the
one relevant item (`--view av` makes the query video with its sound: an upper bound, not the
paper's task).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from avsearch.evaluation.benchmarks.base import BenchData, find_media, metadata_file, missing, read_csv
from avsearch.evaluation.benchmarks.paper import figure
from avsearch.evaluation.judgements import EvalQuery, Target
from avsearch.evaluation.runner import Direction
from avsearch.types import View

FOLDERS = ("", "video", "test")
PROTOCOL = ("vggsound.csv split=test; video→audio: each clip's silent video a query, gallery every clip's "
            "audio, its own audio relevant (the eval code's ret_v2a); whole 10 s clip one embedding")


def read(data_dir: Path, view: Optional[str] = None) -> BenchData:
    query_view = View.parse(view or "video")
    rows = read_csv(metadata_file(data_dir, ["vggsound.csv"], "vggsound"),
                    fieldnames=["youtube_id", "start_seconds", "label", "split"])
    rows = [r for r in rows if r["split"] == "test"]
    queries, media, problems = [], [], []
    for row in rows:
        start = int(float(row["start_seconds"]))
        stems = [f"{row['youtube_id']}_{start:06d}", f"{row['youtube_id']}_{row['start_seconds']}", row["youtube_id"]]
        path = find_media(data_dir, stems, FOLDERS)
        if path is None:
            problems.append(missing(f"{row['youtube_id']}@{start}", data_dir, stems, FOLDERS))
            continue
        media.append(path)
        queries.append(EvalQuery(media=path, view=query_view, targets=[Target(path)]))
    name = f"{query_view.value}→audio"
    return BenchData("vggsound", media, [Direction(query_view.value, "audio", queries,
                                                   paper=figure("vggsound", name))],
                     problems, clip_s=10.0, views=("audio",), protocol=PROTOCOL, items=len(rows))
