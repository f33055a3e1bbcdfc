"""Kaldi-compatible log-mel filterbank for BEATs, in torch (torchaudio is not a dependency).

Reproduces `torchaudio.compliance.kaldi.fbank` with the settings BEATs uses (spec §1 "BEATs
input"): 25 ms povey window, 10 ms shift, snip_edges, dither 0, DC offset removed, pre-emphasis
0.97, FFT padded to 512, power spectrum, 128 triangular mel bins from 20 Hz to Nyquist, natural
log floored at float32 epsilon. The reference computes it in float64 (B:141), and so do we.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch

FRAME_LENGTH = 400  # 25 ms at 16 kHz
FRAME_SHIFT = 160  # 10 ms
FFT_SIZE = 512  # frame length rounded up to a power of two
PREEMPHASIS = 0.97
LOW_FREQ = 20.0
FLOAT32_EPS = torch.finfo(torch.float32).eps  # Kaldi floors energies at float epsilon
BEATS_FBANK_MEAN = 15.41663
BEATS_FBANK_STD = 6.55582


def fbank_frames(n_samples: int) -> int:
    """Frames with snip_edges: 1 + (n - 400) // 160, or 0 for inputs shorter than one window."""
    return 0 if n_samples < FRAME_LENGTH else 1 + (n_samples - FRAME_LENGTH) // FRAME_SHIFT


def _mel(freq: torch.Tensor | float):
    # log(1 + f/700) rather than log1p: torchaudio's formula, kept for bit-level parity
    if isinstance(freq, torch.Tensor):
        return 1127.0 * (1.0 + freq / 700.0).log()
    return 1127.0 * math.log(1.0 + freq / 700.0)


@lru_cache(maxsize=4)
def mel_banks(num_bins: int = 128, sample_rate: int = 16_000) -> torch.Tensor:
    """(num_bins, FFT_SIZE//2 + 1) triangular filters on the mel scale, Kaldi style.

    Built in float32 like torchaudio's get_mel_banks (then cast to the waveform's dtype), so the
    float64 path differs from torchaudio only by float64 rounding elsewhere.
    """
    n_fft_bins = FFT_SIZE // 2
    nyquist = 0.5 * sample_rate
    mel_low, mel_high = _mel(LOW_FREQ), _mel(nyquist)
    delta = (mel_high - mel_low) / (num_bins + 1)
    bins = torch.arange(num_bins).unsqueeze(1)
    left = mel_low + bins * delta
    center = mel_low + (bins + 1.0) * delta
    right = mel_low + (bins + 2.0) * delta
    mel = _mel(sample_rate / FFT_SIZE * torch.arange(n_fft_bins)).unsqueeze(0)
    up = (mel - left) / (center - left)
    down = (right - mel) / (right - center)
    banks = torch.clamp(torch.minimum(up, down), min=0.0)
    return torch.nn.functional.pad(banks, (0, 1))  # the Nyquist bin gets no weight


def kaldi_fbank(waveform: torch.Tensor, num_bins: int = 128, sample_rate: int = 16_000) -> torch.Tensor:
    """(frames, num_bins) log-mel energies of a 1-D waveform (any scale; BEATs passes samples * 2^15)."""
    if waveform.dim() != 1:
        raise ValueError(f"kaldi_fbank takes a 1-D waveform, got shape {tuple(waveform.shape)}")
    wave = waveform.to(torch.float64)
    n = fbank_frames(wave.numel())
    if n == 0:
        return wave.new_zeros((0, num_bins))
    frames = wave.unfold(0, FRAME_LENGTH, FRAME_SHIFT)  # (n, 400) windows, snip_edges
    frames = frames - frames.mean(dim=1, keepdim=True)
    previous = torch.cat([frames[:, :1], frames[:, :-1]], dim=1)  # replicate-padded shift by one
    frames = frames - PREEMPHASIS * previous
    window = torch.hann_window(FRAME_LENGTH, periodic=False, dtype=torch.float64, device=wave.device).pow(0.85)  # povey
    frames = torch.nn.functional.pad(frames * window, (0, FFT_SIZE - FRAME_LENGTH))
    power = torch.fft.rfft(frames).abs().pow(2)
    energies = power @ mel_banks(num_bins, sample_rate).to(wave.device, torch.float64).T
    return energies.clamp(min=FLOAT32_EPS).log()


def beats_fbank(waveform: torch.Tensor) -> torch.Tensor:
    """BEATs' input for one mono 16 kHz waveform in [-1, 1]: scaled by 2^15, fbank, normalised."""
    fbank = kaldi_fbank(waveform.to(torch.float64) * 2**15)
    return (fbank - BEATS_FBANK_MEAN) / (2 * BEATS_FBANK_STD)
