"""MSR-VTT 1k-A test split (Yu et al., 2018, "JSFusion"): text→video.

Metadata: `MSRVTT_JSFUSION_test.csv` (key,vid_key,video_id,sentence), the 1,000 test videos with
one sentence each, as CLIP4Clip and most text-video papers use it. Media under --data:
`<video_id>.mp4` in ./, videos/, videos/all/ or TestVideo/. The gallery is read as silent video
(`--view av` reads it with its sound).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from avsearch.evaluation.benchmarks.base import BenchData, find_media, metadata_file, missing, read_csv
from avsearch.evaluation.benchmarks.paper import figure
from avsearch.evaluation.judgements import EvalQuery, Target
from avsearch.evaluation.runner import Direction
from avsearch.types import View

FOLDERS = ("", "videos", "videos/all", "TestVideo")
PROTOCOL = ("MSRVTT_JSFUSION_test.csv (1k-A), 1,000 videos x 1 sentence; text→video: each sentence a query, "
            "its video the one relevant item, gallery all videos; the whole video (10-30 s) one embedding")


def read(data_dir: Path, view: Optional[str] = None) -> BenchData:
    media_view = View.parse(view or "video")
    rows = read_csv(metadata_file(data_dir, ["MSRVTT_JSFUSION_test.csv"], "msrvtt"))
    queries, media, problems = [], [], []
    for row in rows:
        path = find_media(data_dir, [row["video_id"]], FOLDERS)
        if path is None:
            problems.append(missing(row["video_id"], data_dir, [row["video_id"]], FOLDERS))
            continue
        media.append(path)
        queries.append(EvalQuery(text=row["sentence"], targets=[Target(path)]))
    name = f"text→{media_view.value}"
    return BenchData("msrvtt", list(dict.fromkeys(media)), [Direction("text", media_view.value, queries,
                                                                      paper=figure("msrvtt", name))],
                     problems, clip_s=30.0, views=(media_view.value,), protocol=PROTOCOL, items=len(rows))
