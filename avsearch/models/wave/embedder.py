"""WaveEmbedder: the avsearch Embedder protocol on top of a loaded WAVE model.

Per call: plan every row from shapes alone (prompt pieces, token ids, positions), group rows under
the token budget, and for each group prepare the media (Whisper mel, BEATs waveforms, pixel
patches), run the encoders, scatter, run the LLM, read the vector. Planning is also what
`token_cost` returns, so the indexer batches by the same numbers the model will see.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from typing import Optional, Sequence

import numpy as np
import torch

from avsearch.models.wave.audio import WhisperMel, prepare_audio
from avsearch.models.wave.batching import group_by_budget, left_pad
from avsearch.models.wave.config import TokenIds, WaveConfig, WaveOptions
from avsearch.models.wave.layout import SAMPLE_RATE, plan_audio, plan_video
from avsearch.models.wave.model import WaveModel
from avsearch.models.wave.positions import row_positions
from avsearch.models.wave.prompts import Piece, media_row, piece_ids, text_row
from avsearch.models.wave.vision import prepare_video
from avsearch.types import Clip, View

DEFAULT_BATCH_TOKENS = {"cuda": 32_768, "cpu": 8_192}
# Media preparation (PIL resize, mel, fbank) runs in threads: PIL and numpy release the GIL, and
# done serially it took 0.29 s per 720p clip, as long as WAVE-7B's GPU work on an H100.
PREPARE_THREADS = min(8, os.cpu_count() or 1)


@dataclass
class _Row:
    pieces: tuple[Piece, ...]
    ids: list[int]
    positions: torch.Tensor  # (3, L)


class WaveEmbedder:
    """Embeds texts and clips into the WAVE space (float32, L2-normalised, shape (n, dim))."""

    def __init__(self, model: WaveModel, tokenizer, config: WaveConfig, token_ids: TokenIds,
                 options: WaveOptions, *, model_id: str, source: str, directory: Optional[str] = None) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.config = config
        self.token_ids = token_ids
        self.options = options
        self.model_id = model_id
        self.source = source
        self.directory = directory
        self.dim = config.hidden_size
        self.device = model.device
        self.max_batch_tokens = options.max_batch_tokens or DEFAULT_BATCH_TOKENS.get(model.device.type, 8_192)
        self._mel = WhisperMel(config.num_mel_bins)
        self._tokenize = lru_cache(maxsize=4096)(self._tokenize_uncached)
        self._prepare_pool: Optional[ThreadPoolExecutor] = None
        self._prefetch_pool: Optional[ThreadPoolExecutor] = None

    def __repr__(self) -> str:
        return f"WaveEmbedder(model_id={self.model_id!r}, source={self.source!r}, dim={self.dim}, device={self.device})"

    # -- planning (cheap) ----------------------------------------------------------------------

    def _tokenize_uncached(self, text: str) -> tuple[int, ...]:
        return tuple(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _row(self, pieces: tuple[Piece, ...]) -> _Row:
        chunks = [piece_ids(p, self.token_ids, self._tokenize) for p in pieces]
        positions = row_positions(list(zip(pieces, map(len, chunks))), av_mode=self.options.av_position_mode,
                                  position_id_per_seconds=self.config.position_id_per_seconds)
        return _Row(pieces, [i for c in chunks for i in c], positions)

    def plan_clip(self, clip: Clip, view: View | str, instruction: Optional[str] = None) -> tuple[Piece, ...]:
        """The prompt pieces of a clip in a view (token counts from the shapes alone)."""
        view = View.parse(view)
        _check_streams(clip, view)
        grid = audio = None
        if view in (View.VIDEO, View.AV):
            t, h, w = clip.frames.shape[:3]
            grid = plan_video(t, h, w, clip.duration_s, clip.fps, max_frames=self.options.max_frames,
                              min_pixels=self.options.min_pixels, max_pixels=self.options.max_pixels)
        if view in (View.AUDIO, View.AV):
            audio = plan_audio(len(clip.audio))
        return media_row(view.value, grid=grid, audio=audio,
                         tokens_per_whisper_token=self.config.audio_tokens_per_whisper_token,
                         instruction=instruction, placement=self.options.instruction_placement,
                         position_id_per_seconds=self.config.position_id_per_seconds,
                         describe=self.options.audio_prompt if view == View.AUDIO else self.options.video_prompt)

    def token_cost(self, clip: Clip, view: View | str, instruction: Optional[str] = None) -> int:
        """Sequence length the model will see for this clip and view, with the instruction's
        tokens when one is given (no model run)."""
        pieces = self.plan_clip(clip, view, instruction)
        return sum(len(piece_ids(p, self.token_ids, self._tokenize)) for p in pieces)

    # -- embedding -----------------------------------------------------------------------------

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Queries or captions: `TEXT<|im_end|>`, final normed last-token state, no head (spec §6)."""
        rows = [self._row(text_row(str(t))) for t in texts]
        return self._run(rows, use_head=False)

    def embed_clips(self, clips: Sequence[Clip], view: View | str, instruction: Optional[str] = None) -> np.ndarray:
        """Clips as `view`, through the all-layer head; with `instruction`, prompt-aware."""
        view = View.parse(view)
        rows = [self._row(self.plan_clip(c, view, instruction)) for c in clips]
        return self._run(rows, clips=list(clips), view=view, use_head=True)

    @torch.inference_mode()
    def _run(self, rows: list[_Row], *, clips: Optional[list[Clip]] = None, view: Optional[View] = None,
             use_head: bool) -> np.ndarray:
        out = np.zeros((len(rows), self.dim), dtype=np.float32)
        groups = group_by_budget([len(r.ids) for r in rows], self.max_batch_tokens)

        def prepare(group):
            return self._prepare([clips[i] for i in group], view) if clips else ((), ())

        # While the GPU runs one group, the next group's media is prepared on the CPU.
        pending = None
        for n, group in enumerate(groups):
            prepared = pending.result() if pending is not None else prepare(group)
            pending = self._prefetch().submit(prepare, groups[n + 1]) if n + 1 < len(groups) and clips else None
            ids, mask, positions = left_pad([rows[i].ids for i in group], [rows[i].positions for i in group],
                                            self.token_ids.pad)
            audio_rows, video_rows = self._encode(*prepared)
            vectors = self.model.forward(ids, mask, positions, self.token_ids, audio_rows=audio_rows,
                                         video_rows=video_rows, use_head=use_head)
            out[group] = vectors.cpu().numpy()
        return out

    def _prefetch(self) -> ThreadPoolExecutor:
        if self._prefetch_pool is None:
            self._prefetch_pool = ThreadPoolExecutor(1, thread_name_prefix="wave-prefetch")
        return self._prefetch_pool

    def _map(self, fn, items: list) -> list:
        if len(items) < 2 or PREPARE_THREADS < 2:
            return [fn(x) for x in items]
        if self._prepare_pool is None:
            self._prepare_pool = ThreadPoolExecutor(PREPARE_THREADS, thread_name_prefix="wave-prepare")
        return list(self._prepare_pool.map(fn, items))

    def _prepare(self, clips: list[Clip], view: View):
        """CPU side: (prepared audio, prepared video) per clip for the towers `view` uses."""
        o = self.options
        with_whisper = self.config.audio_mode != "beats_only"
        audio, video = [], []
        if view in (View.AUDIO, View.AV):
            audio = self._map(lambda c: prepare_audio(c.audio, self._mel, with_whisper=with_whisper), clips)
        if view in (View.VIDEO, View.AV):
            video = self._map(lambda c: prepare_video(c.frames, c.fps, c.duration_s, max_frames=o.max_frames,
                                                      min_pixels=o.min_pixels, max_pixels=o.max_pixels), clips)
        return audio, video

    def _encode(self, audio, video):
        """Device side: the rows written at the <|AUDIO|> and <|VIDEO|> placeholders."""
        dtype = self.model.dtype
        return (self.model.audio.encode(list(audio), dtype) if audio else [],
                self.model.vision.encode(list(video), dtype) if video else [])


def _check_streams(clip: Clip, view: View) -> None:
    where = f"clip {clip.path!r} [{clip.start_s:g}, {clip.end_s:g}) s"
    if view in (View.VIDEO, View.AV):
        if not clip.has_video:
            raise ValueError(f"{where} has no frames; view {view.value!r} needs video")
        if np.ndim(clip.frames) != 4 or np.shape(clip.frames)[-1] != 3:
            raise ValueError(f"{where}: frames must be (T, H, W, 3) RGB, got shape {np.shape(clip.frames)}")
        if clip.fps <= 0:
            raise ValueError(f"{where}: fps must be positive, got {clip.fps}")
    if view in (View.AUDIO, View.AV):
        if not clip.has_audio:
            raise ValueError(f"{where} has no audio; view {view.value!r} needs audio")
        if clip.sample_rate != SAMPLE_RATE:
            raise ValueError(f"{where}: audio is {clip.sample_rate} Hz; WAVE needs {SAMPLE_RATE} Hz mono "
                             "(spec §2: the reference never resamples)")
        if np.ndim(clip.audio) != 1:
            raise ValueError(f"{where}: audio must be a 1-D mono array, got shape {np.shape(clip.audio)}")
