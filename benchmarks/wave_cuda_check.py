"""CUDA check of the WAVE embedder on a tiny random checkpoint: bf16 and fp32 on the GPU against fp32 on the CPU.

What it shows (never run in CI, it needs a CUDA GPU):
- the same checkpoint loads on CUDA through the normal loader (bf16 by default, BEATs fp16);
- every view (text, audio, video, av, prompt-aware av) gives unit vectors that agree with the
  CPU fp32 vectors: cosine near 1 for CUDA fp32, bf16 within bf16 tolerance;
- batch invariance on CUDA: a clip's vector embedded alone equals its vector inside a padded batch
  of clips of other lengths (left padding, true last token pooled).

    python benchmarks/wave_cuda_check.py [--out DIR]

Only the tiny model: tolerances of the 7B model in bf16 are not measured here.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))  # run from a source tree without installing (the GPU machine)


def make_clip(seconds: float, seed: int, *, audio: bool = True, video: bool = True, size=(56, 84)):
    from avsearch.types import Clip

    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (max(1, int(round(seconds * 2))), *size, 3), dtype=np.uint8) if video else None
    t = np.arange(int(seconds * 16000)) / 16000
    tone = (0.3 * np.sin(2 * np.pi * (300 + 40 * seed) * t)).astype(np.float32) if audio else None
    return Clip(f"synthetic-{seed}.mp4", 0.0, seconds, frames=frames, fps=2.0, audio=tone)


def cosines(a: np.ndarray, b: np.ndarray) -> list[float]:
    return [float(x) for x in np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))]


def embed_all(embedder) -> dict[str, np.ndarray]:
    clips = [make_clip(s, i) for i, s in enumerate((2.0, 3.5, 5.0))]
    silent = [make_clip(s, 10 + i, audio=False) for i, s in enumerate((2.0, 4.0))]
    sounds = [make_clip(s, 20 + i, video=False) for i, s in enumerate((1.5, 6.0))]
    return {
        "text": embedder.embed_texts(["a dog barks in the street", "rain on a tin roof", "x"]),
        "audio": embedder.embed_clips(sounds, "audio"),
        "video": embedder.embed_clips(silent, "video"),
        "av": embedder.embed_clips(clips, "av"),
        "av+instruction": embedder.embed_clips(clips, "av", instruction="Is someone speaking?"),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=ROOT / "results")
    args = p.parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        print("wave_cuda_check needs a CUDA GPU", file=sys.stderr)
        return 2
    from avsearch.models.wave import WaveOptions, load_wave_embedder, make_tiny_checkpoint

    ckpt = make_tiny_checkpoint(Path(tempfile.mkdtemp()) / "tiny", seed=0)
    t0 = time.perf_counter()
    cpu = load_wave_embedder(str(ckpt), device="cpu")
    gpu_bf16 = load_wave_embedder(str(ckpt), device="cuda")
    gpu_fp32 = load_wave_embedder(str(ckpt), device="cuda", options=WaveOptions(dtype="float32"))
    load_s = time.perf_counter() - t0
    ref = embed_all(cpu)
    res = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "load_s": load_s,
           "gpu_dtype_default": str(gpu_bf16.model.dtype), "views": {}}
    ok = True
    for name, emb in (("cuda_bf16", gpu_bf16), ("cuda_fp32", gpu_fp32)):
        got = embed_all(emb)
        for view, vec in got.items():
            cos = cosines(vec, ref[view])
            norms = np.linalg.norm(vec, axis=1)
            entry = res["views"].setdefault(view, {"dim": int(vec.shape[1])})
            entry[name] = {"min_cos_vs_cpu_fp32": min(cos), "max_norm_err": float(np.abs(norms - 1).max()),
                           "finite": bool(np.isfinite(vec).all())}
            floor = 0.99 if name == "cuda_bf16" else 0.9999
            ok &= min(cos) >= floor and entry[name]["finite"] and entry[name]["max_norm_err"] < 1e-3
    # Batch invariance on the GPU: alone vs in a padded batch of other lengths.
    clips = [make_clip(s, 30 + i) for i, s in enumerate((1.0, 7.0, 3.0, 9.5))]
    for name, emb in (("cuda_bf16", gpu_bf16), ("cuda_fp32", gpu_fp32)):
        together = emb.embed_clips(clips, "av")
        alone = np.concatenate([emb.embed_clips([c], "av") for c in clips])
        cos = cosines(together, alone)
        res.setdefault("batch_invariance", {})[name] = {"min_cos_alone_vs_batched": min(cos)}
        ok &= min(cos) >= (0.995 if name == "cuda_bf16" else 0.99999)
    # The instruction must move the vector on the GPU too.
    res["instruction_moves_vector_bf16"] = max(
        1 - c for c in cosines(embed_all(gpu_bf16)["av+instruction"], embed_all(gpu_bf16)["av"]))
    res["passed"] = bool(ok)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "wave_cuda_check.json").write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
