"""Pictures of hits: spectrogram tiles for sound-only files, captions that fit (issue #18)."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from avsearch.cli.render import _frame, caption_font, fit_text, has_glyph, time_range
from avsearch.media.spectrogram import spectrogram_tile
from avsearch.types import SAMPLE_RATE, Hit, View


def _tone(hz: float, seconds: float = 2.0) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def _loudest_row(image: Image.Image) -> int:
    grey = np.asarray(image.convert("L"), dtype=float)
    return int(grey.mean(axis=1).argmax())


def test_a_spectrogram_tile_draws_pitch_as_height():
    low, high = spectrogram_tile(_tone(300.0)), spectrogram_tile(_tone(3000.0))
    assert low.size == high.size == (320, 180)
    assert np.asarray(low.convert("L")).std() > 20  # not a flat tile
    assert _loudest_row(high) < _loudest_row(low) - 20  # the higher tone is drawn higher up


def test_an_audio_only_hit_gets_its_sound_drawn_not_a_grey_tile(library):
    hit = Hit(path=str(library / "speech.wav"), start_s=0.0, end_s=5.0, view=View.AUDIO, score=0.5, clip_id="x")
    tile = np.asarray(_frame(hit).convert("L"), dtype=float)
    assert tile.std() > 20
    missing = Hit(path=str(library / "gone.wav"), start_s=0.0, end_s=5.0, view=View.AUDIO, score=0.5, clip_id="y")
    assert np.asarray(_frame(missing).convert("L")).std() == 0  # unreadable: the plain tile, no crash


def test_long_names_end_in_an_ellipsis_and_fit():
    font = caption_font()
    draw = ImageDraw.Draw(Image.new("RGB", (10, 10)))
    name = "a very long file name of a field recording made in the garden at dawn.wav"
    cut = fit_text(draw, name, 200, font)
    assert cut != name and cut.endswith(("…", "...")) and draw.textlength(cut, font=font) <= 200
    assert name.startswith(cut.rstrip("….").rstrip())
    assert fit_text(draw, "short.wav", 200, font) == "short.wav"


def test_the_time_range_dash_is_one_the_font_can_draw():
    hit = Hit(path="x.wav", start_s=0.0, end_s=5.0, view=View.AUDIO, score=0.5, clip_id="x")
    pillow_own = ImageFont.load_default(size=12)  # has no en dash: drawn as a box before
    assert not has_glyph(pillow_own, "–") and has_glyph(pillow_own, "-")
    assert time_range(hit, pillow_own) == "0:00:00-0:00:05"
    font = caption_font()
    assert time_range(hit, font) == ("0:00:00–0:00:05" if has_glyph(font, "–") else "0:00:00-0:00:05")
