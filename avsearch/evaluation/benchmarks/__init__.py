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
