"""MusicCaps evaluation split (Agostinelli et al., 2023): video→audio (the paper's AV-RET) and
text→audio, audio→text.

Metadata: Google's `musiccaps-public.csv` (ytid,start_s,end_s,audioset_positive_labels,
aspect_list,caption,author_id,is_balanced_subset,is_audioset_eval), the rows with
is_audioset_eval True (2,858 clips of 10 s), one caption each. Media under --data: the cut clip
as `<ytid>_<start_s>.<ext>`, `<ytid>.<ext>` or `[<ytid>]-[<start_s>-<end_s>].<ext>` in ./,
audio/ or video/. video→audio needs video files; audio-only downloads give the caption
directions only (each missing video is reported).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from avsearch.evaluation.benchmarks.base import (BenchData, Item, caption_directions, find_media, metadata_file,
                                                 missing, read_csv)
from avsearch.evaluation.benchmarks.paper import figure
from avsearch.evaluation.judgements import EvalQuery, Target
from avsearch.evaluation.runner import Direction
from avsearch.types import View

FOLDERS = ("", "audio", "video")
PROTOCOL = ("musiccaps-public.csv is_audioset_eval=True, 2,858 clips x 1 caption; video→audio: each clip's "
            "silent video a query, gallery every clip's audio; text→audio / audio→text as AudioCaps")


def read(data_dir: Path, view: Optional[str] = None) -> BenchData:
    query_view = View.parse(view or "video")
    rows = read_csv(metadata_file(data_dir, ["musiccaps-public.csv"], "musiccaps"))
    rows = [r for r in rows if r["is_audioset_eval"].lower() == "true"]
    items, problems = [], []
    for row in rows:
        start, end = int(float(row["start_s"])), int(float(row["end_s"]))
        stems = [f"{row['ytid']}_{row['start_s']}", f"{row['ytid']}_{start}", row["ytid"], f"[{row['ytid']}]-[{start}-{end}]"]
        path = find_media(data_dir, stems, FOLDERS)
        if path is None:
            problems.append(missing(row["ytid"], data_dir, stems, FOLDERS))
            continue
        items.append(Item(row["ytid"], path, [row["caption"]]))
    v2a = [EvalQuery(media=it.path, view=query_view, targets=[Target(it.path)]) for it in items]
    directions = [Direction(query_view.value, "audio", v2a, paper=figure("musiccaps", f"{query_view.value}→audio"))]
    directions += caption_directions("musiccaps", items, View.AUDIO)
    return BenchData("musiccaps", [it.path for it in items], directions, problems, clip_s=10.0, views=("audio",),
                     protocol=PROTOCOL, items=len(rows))
