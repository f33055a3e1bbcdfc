"""Readers of the public benchmarks the WAVE paper reports, each from the data set's own
published metadata format and a local folder of its media (nothing is downloaded)."""

from __future__ import annotations

from avsearch.evaluation.benchmarks import audiocaps, clotho, msrvtt, musiccaps, vggsound

READERS = {
    "audiocaps": audiocaps.read,
    "clotho": clotho.read,
    "msrvtt": msrvtt.read,
    "vggsound": vggsound.read,
    "musiccaps": musiccaps.read,
}

# What --view changes, where it changes anything: audiocaps and clotho are audio-only both ways.
VIEW_MEANING = {
    "msrvtt": "the gallery's view (video, the paper's; av reads the videos with their sound)",
    "vggsound": "the query's view (video, the paper's; av asks with the sound too)",
    "musiccaps": "the video→audio query's view (video, the paper's; av asks with the sound too)",
}
