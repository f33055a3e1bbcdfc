"""Audio path (spec §2): segments, Whisper and BEATs features, token-by-token interleaving.

Preparation (numpy, no model): pad to 1 s, cut 300 s segments (each padded to 1 s), Whisper
log-mel per segment restricted to its valid frames. Encoding (torch): the thinker's Whisper tower
over all segment rows at once; BEATs per segment, forced to 2*N_s patches and pair-averaged to
N_s rows, then LayerNorm + projection; finally W0, B0, W1, B1, ... (2N rows).
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from avsearch.models.wave.layout import SAMPLE_RATE, SEGMENT_SECONDS, AudioPlan, audio_segments, plan_audio

# Zeros appended before the Whisper STFT so every frame that touches the signal sees zeros after
# it (window reach 200 + reflect padding 200 + margin), exactly as in the reference, which pads
# every segment to 300 s. Computing 300 s of mel for a 10 s clip would be 30x the work.
_WHISPER_TAIL = 800


@dataclass
class PreparedAudio:
    plan: AudioPlan
    segments: list[np.ndarray]  # float32 waveforms, each already padded to >= 1 s
    whisper_features: list[np.ndarray]  # (mel_bins, L_s) valid frames per segment


def split_segments(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> list[np.ndarray]:
    """The 300 s segments of a clip, zero-padded to 1 s where shorter (spec §2 steps 1-2)."""
    audio = np.asarray(audio, dtype=np.float32)
    out = []
    for start, end, padded in audio_segments(len(audio), sample_rate):
        piece = audio[start:end]
        if len(piece) < padded:
            piece = np.concatenate([piece, np.zeros(padded - len(piece), dtype=np.float32)])
        out.append(piece)
    return out


class WhisperMel:
    """Qwen2.5-Omni's WhisperFeatureExtractor (128 mel, n_fft 400, hop 160, 300 s chunks), built
    locally: nothing is downloaded."""

    def __init__(self, mel_bins: int = 128) -> None:
        from transformers import WhisperFeatureExtractor

        self.extractor = WhisperFeatureExtractor(
            feature_size=mel_bins, sampling_rate=SAMPLE_RATE, hop_length=160, chunk_length=SEGMENT_SECONDS,
            n_fft=400, padding_value=0.0, return_attention_mask=True)

    def __call__(self, segment: np.ndarray, frames: int) -> np.ndarray:
        """(mel_bins, frames) log-mel of one segment: its valid frames only (M:2541-2543)."""
        limit = self.extractor.n_samples
        target = min(len(segment) + _WHISPER_TAIL, limit)
        padded = np.zeros(max(target, len(segment)), dtype=np.float32)
        padded[: len(segment)] = segment
        features = self.extractor(padded, sampling_rate=SAMPLE_RATE, padding="longest", truncation=True,
                                  return_attention_mask=False, return_tensors="np")["input_features"][0]
        return np.ascontiguousarray(features[:, :frames], dtype=np.float32)


def prepare_audio(audio: np.ndarray, mel: WhisperMel, *, with_whisper: bool = True) -> PreparedAudio:
    segments = split_segments(audio)
    plan = plan_audio(len(audio))
    feats = [mel(s, f) for s, f in zip(segments, plan.segment_frames)] if with_whisper else []
    return PreparedAudio(plan, segments, feats)


def force_length(rows: torch.Tensor, length: int) -> torch.Tensor:
    """Cut extra rows or append zero rows so that there are exactly `length` (M:2609-2616)."""
    if rows.shape[0] >= length:
        return rows[:length]
    return torch.cat([rows, rows.new_zeros(length - rows.shape[0], rows.shape[1])])


def pool_pairs(rows: torch.Tensor) -> torch.Tensor:
    """AvgPool1d(2, 2) over rows: row k averages rows 2k and 2k+1."""
    return rows.view(rows.shape[0] // 2, 2, rows.shape[1]).mean(dim=1)


def interleave(whisper: torch.Tensor, beats: torch.Tensor) -> torch.Tensor:
    """(N, h) and (N, h) -> (2N, h) ordered W0, B0, W1, B1, ... (M:2624-2626)."""
    if whisper.shape != beats.shape:
        raise ValueError(f"Whisper {tuple(whisper.shape)} and BEATs {tuple(beats.shape)} rows differ")
    return torch.stack([whisper, beats], dim=1).reshape(-1, whisper.shape[-1])


class AudioEncoder:
    """Turns prepared clips into the rows written at their <|AUDIO|> placeholders."""

    def __init__(self, thinker_model, extras, audio_mode: str, device: torch.device,
                 beats_dtype: torch.dtype) -> None:
        self.thinker_model = thinker_model  # Qwen2_5OmniThinkerModel (holds audio_tower)
        self.extras = extras
        self.audio_mode = audio_mode
        self.device = device
        self.beats_dtype = beats_dtype

    def whisper(self, clips: list[PreparedAudio]) -> list[torch.Tensor]:
        """(N_c, hidden) per clip from the thinker's Whisper tower, one row per 300 s segment."""
        feats = [f for clip in clips for f in clip.whisper_features]
        lengths = [f.shape[1] for f in feats]
        batch = np.zeros((len(feats), feats[0].shape[0], max(lengths)), dtype=np.float32)
        mask = np.zeros((len(feats), max(lengths)), dtype=np.int64)
        for i, f in enumerate(feats):
            batch[i, :, : f.shape[1]] = f
            mask[i, : f.shape[1]] = 1
        out = self.thinker_model.get_audio_features(
            torch.from_numpy(batch).to(self.device), feature_attention_mask=torch.from_numpy(mask).to(self.device),
            return_dict=True).last_hidden_state
        return list(out.split([clip.plan.whisper_tokens for clip in clips]))

    def beats(self, clips: list[PreparedAudio]) -> list[torch.Tensor]:
        """(N_c, hidden) per clip: BEATs patches forced to 2*N_s, pair-averaged, LayerNorm, projection."""
        beats = self.extras.beats
        jobs = [(c, s) for c, clip in enumerate(clips) for s in range(len(clip.segments))]
        pooled: dict[tuple[int, int], torch.Tensor] = {}
        # Equal-length segments run together (no padding, so a segment's features never depend
        # on its batch); most batches are clips of one length.
        by_length: dict[int, list[tuple[int, int]]] = {}
        for job in jobs:
            by_length.setdefault(len(clips[job[0]].segments[job[1]]), []).append(job)
        autocast = (torch.autocast("cuda", dtype=torch.float16)
                    if self.device.type == "cuda" and self.beats_dtype == torch.float16 else nullcontext())
        for group in by_length.values():
            waves = torch.from_numpy(np.stack([clips[c].segments[s] for c, s in group])).to(self.device)
            with autocast:
                patches = beats(waves)
            for (c, s), rows in zip(group, patches):
                n_tokens = clips[c].plan.segment_tokens[s]
                pooled[(c, s)] = pool_pairs(force_length(rows.float(), 2 * n_tokens))
        out = []
        for c, clip in enumerate(clips):
            rows = torch.cat([pooled[(c, s)] for s in range(len(clip.segments))])
            out.append(self.extras.project_beats(rows))
        return out

    def encode(self, clips: list[PreparedAudio], dtype: Optional[torch.dtype] = None) -> list[torch.Tensor]:
        """Placeholder rows per clip: 2N interleaved (default), N Whisper-only or N BEATs-only."""
        if not clips:
            return []
        if self.audio_mode == "beats_only":
            rows = self.beats(clips)
        elif self.audio_mode == "whisper_only":
            rows = self.whisper(clips)
        else:
            rows = [interleave(w, b.to(w.dtype)) for w, b in zip(self.whisper(clips), self.beats(clips))]
        return [r.to(dtype) if dtype is not None else r for r in rows]
