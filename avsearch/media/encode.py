"""Feeding float samples to any PyAV audio encoder, whatever sample format it wants."""

from __future__ import annotations

import av
import numpy as np

_DTYPES = {"s16": (np.int16, 32767), "s32": (np.int32, 2147483647), "flt": (np.float32, None),
           "dbl": (np.float64, None), "u8": (np.uint8, None)}


def audio_frame(samples: np.ndarray, fmt: str, layout: str, rate: int, pts: int) -> av.AudioFrame:
    """samples: float (channels, n) in [-1, 1]."""
    planar = fmt.endswith("p")
    dtype, scale = _DTYPES[fmt.rstrip("p")]
    data = np.clip(samples, -1.0, 1.0)
    data = (data * scale).astype(dtype) if scale else data.astype(dtype)
    if not planar:
        data = data.T.reshape(1, -1)
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(data), format=fmt, layout=layout)
    frame.sample_rate = rate
    frame.pts = pts
    return frame


def encode_audio(out, stream, samples: np.ndarray, rate: int, layout: str) -> None:
    """Encode float samples (channels, n) into `stream` and mux them into `out`."""
    fmt = stream.codec_context.format.name
    step = stream.codec_context.frame_size or 1024
    for i in range(0, samples.shape[1], step):
        chunk = samples[:, i : i + step]
        if chunk.shape[1] < step and stream.codec_context.frame_size:
            chunk = np.pad(chunk, ((0, 0), (0, step - chunk.shape[1])))
        for packet in stream.encode(audio_frame(chunk, fmt, layout, rate, i)):
            out.mux(packet)
    for packet in stream.encode(None):
        out.mux(packet)
