"""Tiny copies of the public benchmarks, each in its data set's exact metadata format, with a few
seconds of generated media per item (different tone and picture per item)."""

from __future__ import annotations

import csv
from pathlib import Path

from avsearch.media.synth import write_audio, write_video

AUDIO_S = 1.5
VIDEO_S = 1.5


def _csv(path: Path, header, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        if header:
            w.writerow(header)
        w.writerows(rows)


def _audio(path: Path, i: int) -> None:
    write_audio(path, duration_s=AUDIO_S, tone_hz=200.0 + 170.0 * i, seed=10 + i)


def _video(path: Path, i: int, audio: bool = True) -> None:
    write_video(path, duration_s=VIDEO_S, audio=audio, tone_hz=250.0 + 150.0 * i, seed=20 + i)


def audiocaps(root: Path) -> Path:
    """test.csv: audiocap_id,youtube_id,start_time,caption; 5 captions per clip; media
    <youtube_id>_<start_time>.wav in audio/. Item 'zzz' has no media."""
    rows, n = [], 0
    for i, ytid in enumerate(["aaaaaaaaaaa", "bbbbbbbbbbb", "ccccccccccc", "zzzzzzzzzzz"]):
        for c in range(5):
            n += 1
            rows.append([str(100 + n), ytid, "30", f"sound {i} caption {c}"])
        if ytid != "zzzzzzzzzzz":
            _audio(root / "audio" / f"{ytid}_30.wav", i)
    _csv(root / "test.csv", ["audiocap_id", "youtube_id", "start_time", "caption"], rows)
    return root


def clotho(root: Path) -> Path:
    """clotho_captions_evaluation.csv: file_name,caption_1..caption_5; media in evaluation/."""
    rows = []
    for i, name in enumerate(["Forest birds.wav", "rain_on_roof.wav", "street 2.wav"]):
        rows.append([name] + [f"recording {i} caption {c}" for c in range(5)])
        _audio(root / "evaluation" / name, i)
    _csv(root / "clotho_captions_evaluation.csv", ["file_name"] + [f"caption_{c}" for c in range(1, 6)], rows)
    return root


def msrvtt(root: Path) -> Path:
    """MSRVTT_JSFUSION_test.csv: key,vid_key,video_id,sentence; media videos/all/<video_id>.mp4."""
    rows = []
    for i, vid in enumerate(["video7010", "video7020", "video7030"]):
        rows.append([f"ret{i}", f"msr{vid[5:]}", vid, f"a clip number {i}"])
        _video(root / "videos" / "all" / f"{vid}.mp4", i, audio=False)
    _csv(root / "MSRVTT_JSFUSION_test.csv", ["key", "vid_key", "video_id", "sentence"], rows)
    return root


def vggsound(root: Path) -> Path:
    """vggsound.csv without a header: youtube_id,start_seconds,label,split; test clips as
    <youtube_id>_<start:06d>.mp4. One train row (never read) and a test row with no media."""
    rows = [["trainonly__", "5", "dog barking", "train"]]
    for i, ytid in enumerate(["-abcdefghij", "klmnopqrstu", "vwxyz012345"]):
        rows.append([ytid, str(10 * i), f"label {i}", "test"])
        _video(root / "video" / f"{ytid}_{10 * i:06d}.mp4", i)
    rows.append(["missing____", "0", "label x", "test"])
    _csv(root / "vggsound.csv", None, rows)
    return root


def musiccaps(root: Path) -> Path:
    """musiccaps-public.csv with its published columns; media <ytid>.mp4 in video/ for the
    eval rows; one non-eval row (never read)."""
    header = ["ytid", "start_s", "end_s", "audioset_positive_labels", "aspect_list", "caption", "author_id",
              "is_balanced_subset", "is_audioset_eval"]
    rows = [["notevalxxxx", "0", "10", "/m/04rlf", "['x']", "not in the split", "1", "False", "False"]]
    for i, ytid in enumerate(["musicaaaaaa", "musicbbbbbb", "musicccccc_"]):
        rows.append([ytid, "30", "40", "/m/04rlf", "['piano']", f"a song number {i}", "4", "True", "True"])
        _video(root / "video" / f"{ytid}.mp4", i)
    _csv(root / "musiccaps-public.csv", header, rows)
    return root


BUILDERS = {"audiocaps": audiocaps, "clotho": clotho, "msrvtt": msrvtt, "vggsound": vggsound, "musiccaps": musiccaps}
