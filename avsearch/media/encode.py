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


class AudioSink:
    """Feeds float samples (channels, n) to an encoder in whole frames, across any number of writes.

    Codecs with a fixed frame size (AAC: 1024) get exactly that many samples per frame, the last
    one zero-padded; others get `step` samples per frame.
    """

    def __init__(self, out, stream, rate: int, layout: str, step: int = 1024) -> None:
        self.out, self.stream, self.rate, self.layout = out, stream, rate, layout
        self.fmt = stream.codec_context.format.name
        self.fixed = bool(stream.codec_context.frame_size)
        self.step = stream.codec_context.frame_size or step
        self.pending: np.ndarray | None = None
        self.at = 0

    def write(self, samples: np.ndarray) -> None:
        samples = np.asarray(samples, dtype=np.float32)
        self.pending = samples if self.pending is None else np.concatenate([self.pending, samples], axis=1)
        while self.pending.shape[1] >= self.step:
            self._encode(self.pending[:, : self.step])
            self.pending = self.pending[:, self.step:]

    def close(self) -> None:
        if self.pending is not None and self.pending.shape[1]:
            last = self.pending
            if self.fixed:
                last = np.pad(last, ((0, 0), (0, self.step - last.shape[1])))
            self._encode(last)
        for packet in self.stream.encode(None):
            self.out.mux(packet)

    def _encode(self, chunk: np.ndarray) -> None:
        for packet in self.stream.encode(audio_frame(chunk, self.fmt, self.layout, self.rate, self.at)):
            self.out.mux(packet)
        self.at += chunk.shape[1]


def encode_audio(out, stream, samples: np.ndarray, rate: int, layout: str) -> None:
    """Encode float samples (channels, n) into `stream` and mux them into `out`."""
    sink = AudioSink(out, stream, rate, layout)
    sink.write(samples)
    sink.close()
