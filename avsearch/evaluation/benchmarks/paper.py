"""The WAVE paper's published figures, with where each comes from.

Source: WAVE (tsinghua-ee/WAVE-7B), the audio and audio-visual results table, as recorded in
shared/WAVE_SPEC.md §9: AudioCaps A-RET 44.2 (reference WavCaps 42.2), Clotho A-RET 25.6 (WavCaps
21.5), VGGSound AV-RET 25.0 (encoder-only 10.3), MusicCaps AV-RET 20.4 (encoder-only 8.6). The
paper's evaluation code (eval/eval_mc/eval_embed_t2v.py, eval_embed_v2t.py) scores Recall@1:
every test pair a row, the gallery all rows, cosine of L2-normalised vectors. Its direct_test.sh
scores ret_v2a.json (video `pos_image` embeddings as the queries) with t2v.py, so AV-RET is
video→audio R@1. That A-RET is text→audio R@1 is UNVERIFIED from the code (the reference values
match WavCaps' text→audio R@1), as is how the multi-caption sets' duplicate audios were handled;
that MusicCaps' AV-RET has VGGSound's direction is UNVERIFIED too. MSR-VTT has no figure in those
tables: the paper's MMEB-v2 RET (54.7) averages several video retrieval tasks and is not one.
"""

from __future__ import annotations

from typing import Optional

SOURCE = "WAVE paper, audio & audio-visual table (shared/WAVE_SPEC.md §9)"
NOT_PUBLISHED = "not published in the WAVE paper's tables"

FIGURES = {
    # (benchmark, direction): (metric, value, note)
    ("audiocaps", "text→audio"): ("R@1", 44.2, "A-RET; text→audio is UNVERIFIED"),
    ("clotho", "text→audio"): ("R@1", 25.6, "A-RET; text→audio is UNVERIFIED"),
    ("vggsound", "video→audio"): ("R@1", 25.0, "AV-RET = video→audio R@1 per the eval code"),
    ("musiccaps", "video→audio"): ("R@1", 20.4, "AV-RET; VGGSound's direction assumed, UNVERIFIED"),
}


def figure(benchmark: str, direction: str) -> dict:
    """{"metric", "value", "source"} for a direction (value None where the paper has none)."""
    found: Optional[tuple] = FIGURES.get((benchmark, direction))
    if found is None:
        note = NOT_PUBLISHED
        if benchmark == "msrvtt":
            note += " (MMEB-v2 RET 54.7 averages several tasks; it is no MSR-VTT figure)"
        return {"metric": "R@1", "value": None, "source": note}
    metric, value, note = found
    return {"metric": metric, "value": value, "source": f"{SOURCE}: {benchmark} {note}"}
