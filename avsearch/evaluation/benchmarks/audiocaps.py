"""AudioCaps test split (Kim et al., 2019): text→audio and audio→text.

Metadata: AudioCaps' own `test.csv` (audiocap_id,youtube_id,start_time,caption), five caption
rows per 10 s clip (975 clips). Media under --data, found as `<youtube_id>_<start_time>.<ext>`,
`Y<youtube_id>.<ext>`, `<youtube_id>.<ext>` or `<audiocap_id>.<ext>` in ./, audio/ or test/
(ext: wav, flac, mp3, m4a, ogg, mp4 ...): the cut 10 s clip, as the usual downloads store it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from avsearch.evaluation.benchmarks.base import (BenchData, Item, caption_directions, find_media, metadata_file,
                                                 missing, read_csv)
from avsearch.types import View

FOLDERS = ("", "audio", "test", "audio/test")
PROTOCOL = ("test.csv, 975 clips x 5 captions; text→audio: each caption a query, its clip the one relevant "
            "item, gallery all clips; audio→text: each clip a query, gallery all captions, any of its own 5 "
            "counts; cosine, whole 10 s clip one embedding")


def read(data_dir: Path, view: Optional[str] = None) -> BenchData:
    rows = read_csv(metadata_file(data_dir, ["test.csv"], "audiocaps"))
    items: dict[tuple, Item] = {}
    problems = []
    for row in rows:
        key = (row["youtube_id"], row["start_time"])
        if key not in items:
            start = row["start_time"].split(".")[0]
            stems = [f"{row['youtube_id']}_{row['start_time']}", f"{row['youtube_id']}_{start}",
                     f"Y{row['youtube_id']}", row["youtube_id"], row["audiocap_id"]]
            items[key] = Item(f"{row['youtube_id']}@{row['start_time']}", find_media(data_dir, stems, FOLDERS) or "")
            if not items[key].path:
                problems.append(missing(items[key].key, data_dir, stems, FOLDERS))
        items[key].captions.append(row["caption"])
    found = [it for it in items.values() if it.path]
    return BenchData("audiocaps", [it.path for it in found], caption_directions("audiocaps", found, View.AUDIO),
                     problems, clip_s=10.0, views=("audio",), protocol=PROTOCOL, items=len(items))
