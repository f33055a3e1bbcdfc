"""Clotho v2 evaluation split (Drossos et al., 2020): text→audio and audio→text.

Metadata: Clotho's own `clotho_captions_evaluation.csv` (file_name,caption_1..caption_5), five
captions per 15-30 s recording (1,045). Media under --data: `<file_name>` in ./, evaluation/ or
clotho_audio_evaluation/ (the release's folder names).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from avsearch.evaluation.benchmarks.base import (BenchData, Item, caption_directions, find_media, metadata_file,
                                                 missing, read_csv)
from avsearch.types import View

FOLDERS = ("", "evaluation", "clotho_audio_evaluation", "clotho_audio_evaluation/evaluation")
PROTOCOL = ("clotho_captions_evaluation.csv, 1,045 recordings x 5 captions; text→audio: each caption a query, "
            "gallery all recordings; audio→text: each recording a query, any of its 5 captions counts; the whole "
            "recording (up to 30 s) one embedding")


def read(data_dir: Path, view: Optional[str] = None) -> BenchData:
    rows = read_csv(metadata_file(data_dir, ["clotho_captions_evaluation.csv"], "clotho"))
    items, problems = [], []
    for row in rows:
        path = find_media(data_dir, [row["file_name"]], FOLDERS)
        if path is None:
            problems.append(missing(row["file_name"], data_dir, [row["file_name"]], FOLDERS))
            continue
        captions = [row[f"caption_{i}"] for i in range(1, 6) if row.get(f"caption_{i}")]
        items.append(Item(row["file_name"], path, captions))
    return BenchData("clotho", [it.path for it in items], caption_directions("clotho", items, View.AUDIO),
                     problems, clip_s=30.0, views=("audio",), protocol=PROTOCOL, items=len(rows))
