"""Throughput of the WAVE embedder at full WAVE-7B size, with random weights, on one CUDA GPU.

Builds the thinker (28-layer Qwen2.5-7B LLM, 32-layer Whisper tower, 32-block ViT), BEATs iter3+
and the all-layer head at the sizes of spec §1 with random init in bf16 (BEATs fp16) -- nothing is
downloaded -- and embeds 10-second audio+video clips sampled at 2 fps from 720p frames (308x560
after smart_resize), end to end through `WaveEmbedder.embed_clips`. Reports clips/s, LLM tokens/s
and model FLOP utilisation (MFU) against the GPU's dense bf16 peak.

    python benchmarks/wave_throughput.py                    # on a CUDA machine
    python benchmarks/wave_throughput.py --dry-run          # anywhere: config and FLOPs per clip

FLOP convention: 2 FLOPs per multiply-accumulate of every matmul/conv (LLM, ViT, Whisper, BEATs,
projections, head); attention scores and weighted sums counted as 4*n^2*d per layer, halved for
the causal LLM; norms, activations, softmax and RoPE not counted. The LM head is not run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional, Sequence

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
sys.path.insert(0, str(ROOT.parent))  # runs from a source tree without installing (the GPU machine)
H100_SXM_BF16_DENSE_TFLOPS = 989.0

SPEC_TEXT = dict(vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                 num_attention_heads=28, num_key_value_heads=4, rms_norm_eps=1e-6, rope_theta=1e6,
                 max_position_embeddings=32768, hidden_act="silu", use_sliding_window=False,
                 tie_word_embeddings=False,
                 rope_scaling={"mrope_section": [16, 24, 24], "rope_type": "default", "type": "default"})
SPEC_VISION = dict(depth=32, hidden_size=1280, hidden_act="silu", intermediate_size=3420, num_heads=16,
                   in_channels=3, patch_size=14, spatial_merge_size=2, temporal_patch_size=2, window_size=112,
                   out_hidden_size=3584, fullatt_block_indexes=[7, 15, 23, 31])
SPEC_AUDIO = dict(num_mel_bins=128, encoder_layers=32, encoder_attention_heads=20, encoder_ffn_dim=5120,
                  d_model=1280, output_dim=3584, n_window=100, max_source_positions=1500,
                  beats_path="BEATs_iter3_plus.pt", beats_only=False)


# -- workload ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    seconds: float = 10.0
    fps: float = 2.0
    height: int = 720
    width: int = 1280
    prompt_tokens: int = 6  # "Please describe the video." + <|im_end|> with the Qwen tokenizer (approx.)


def clip_shapes(w: Workload):
    """Token facts of one clip of the workload (pure: layout arithmetic only)."""
    from avsearch.models.wave.layout import av_block_length, av_chunks, plan_audio, plan_video

    grid = plan_video(int(round(w.seconds * w.fps)), w.height, w.width, w.seconds, w.fps)
    audio = plan_audio(int(w.seconds * 16000))
    return grid, audio, av_block_length(grid, audio) + w.prompt_tokens, av_chunks(grid, audio.whisper_tokens)


# -- FLOPs -------------------------------------------------------------------------------------


def llm_flops(tokens: int, t: dict = SPEC_TEXT) -> float:
    d, layers, ffn = t["hidden_size"], t["num_hidden_layers"], t["intermediate_size"]
    kv = d // t["num_attention_heads"] * t["num_key_value_heads"]
    linear = 2 * tokens * (2 * d * d + 2 * d * kv + 3 * d * ffn)
    attention = 4 * tokens * tokens * d / 2  # causal: half of the n^2 score and value products
    return layers * (linear + attention)


def head_flops(t: dict = SPEC_TEXT) -> float:
    d = t["hidden_size"]
    return 2 * (d * t["num_hidden_layers"] * d + d * d)


def _window_sizes(h_merged: int, w_merged: int, window_merged: int) -> list[int]:
    rows = [min(window_merged, h_merged - i) for i in range(0, h_merged, window_merged)]
    cols = [min(window_merged, w_merged - j) for j in range(0, w_merged, window_merged)]
    return [r * c * 4 for r in rows for c in cols]  # 2x2 patches per merged unit


def vit_flops(grid_t: int, grid_h: int, grid_w: int, v: dict = SPEC_VISION) -> float:
    d, layers, ffn = v["hidden_size"], v["depth"], v["intermediate_size"]
    per_slice = grid_h * grid_w
    patches = grid_t * per_slice
    patch_in = v["in_channels"] * v["temporal_patch_size"] * v["patch_size"] ** 2
    flops = 2 * patches * patch_in * d
    flops += layers * 2 * patches * (4 * d * d + 3 * d * ffn)
    windows = _window_sizes(grid_h // 2, grid_w // 2, v["window_size"] // (v["patch_size"] * 2))
    full_blocks = len(v["fullatt_block_indexes"])
    flops += grid_t * full_blocks * 4 * per_slice ** 2 * d
    flops += grid_t * (layers - full_blocks) * sum(4 * n * n * d for n in windows)
    merged, hidden = patches // 4, 4 * d
    flops += 2 * merged * (hidden * hidden + hidden * v["out_hidden_size"])
    return flops


def whisper_flops(mel_frames: int, tokens: int, a: dict = SPEC_AUDIO) -> float:
    d, layers, ffn, mels = a["d_model"], a["encoder_layers"], a["encoder_ffn_dim"], a["num_mel_bins"]
    after_conv = (mel_frames - 1) // 2 + 1
    flops = 2 * mel_frames * mels * 3 * d + 2 * after_conv * d * 3 * d
    flops += layers * 2 * after_conv * (4 * d * d + 2 * d * ffn)
    window = a["n_window"]  # frames after conv2 per attention window
    full, rest = divmod(after_conv, window)
    flops += layers * 4 * d * (full * window * window + rest * rest)
    return flops + 2 * tokens * d * a["output_dim"]


def beats_flops(patches: int, tokens: int, hidden: int = 3584) -> float:
    from avsearch.models.wave.config import BEATS_ITER3_PLUS_CFG as c

    e, d, ffn = c["embed_dim"], c["encoder_embed_dim"], c["encoder_ffn_embed_dim"]
    flops = 2 * patches * c["input_patch_size"] ** 2 * e + 2 * patches * e * d
    flops += 2 * patches * d * (d // c["conv_pos_groups"]) * c["conv_pos"]
    flops += c["encoder_layers"] * (2 * patches * (4 * d * d + 2 * d * ffn) + 4 * patches * patches * d)
    return flops + 2 * tokens * (d * hidden + hidden * hidden)


def flops_per_clip(w: Workload) -> dict:
    from avsearch.models.wave.fbank import fbank_frames
    from avsearch.models.wave.beats import beats_patch_count

    grid, audio, seq_len, _ = clip_shapes(w)
    n = audio.whisper_tokens
    parts = {
        "llm": llm_flops(seq_len),
        "head": head_flops(),
        "vit": vit_flops(grid.t, grid.h, grid.w),
        "whisper": sum(whisper_flops(f, t) for f, t in zip(audio.segment_frames, audio.segment_tokens)),
        "beats": sum(beats_flops(beats_patch_count(fbank_frames(s)), t)
                     for s, t in zip(audio.segment_samples, audio.segment_tokens)),
    }
    parts["total"] = sum(parts.values())
    parts["sequence_tokens"] = seq_len
    parts["audio_tokens"] = 2 * n
    parts["video_tokens"] = grid.tokens
    return parts


def mfu(flops_per_clip_total: float, clips_per_s: float, peak_tflops: float) -> float:
    return flops_per_clip_total * clips_per_s / (peak_tflops * 1e12)


# -- the run (CUDA only) -----------------------------------------------------------------------


def full_size_config(special: dict[str, int]) -> dict:
    from avsearch.models.wave.config import BEATS_ITER3_PLUS_CFG

    return {
        "architectures": ["Qwen2_5OmniThinkerForConditionalGeneration"], "model_type": "qwen2_5_omni_thinker",
        "text_config": dict(SPEC_TEXT), "vision_config": dict(SPEC_VISION), "audio_config": dict(SPEC_AUDIO),
        "audio_token_index": special["<|AUDIO|>"], "image_token_index": special["<|IMAGE|>"],
        "video_token_index": special["<|VIDEO|>"], "audio_start_token_id": special["<|audio_bos|>"],
        "audio_end_token_id": special["<|audio_eos|>"], "vision_start_token_id": special["<|vision_bos|>"],
        "vision_end_token_id": special["<|vision_eos|>"], "position_id_per_seconds": 25, "seconds_per_chunk": 2,
        "train_classify": True, "classify_type": "all_layer", "sim_temperature": 0.01,
        "beats_config": dict(BEATS_ITER3_PLUS_CFG),
    }


def build_random_embedder(device: str, max_batch_tokens: Optional[int], av_position_mode: str):
    """WAVE-7B-sized WaveEmbedder with random weights built directly on the GPU (bf16, BEATs fp16)."""
    import tempfile

    import torch
    from transformers import AutoTokenizer, Qwen2_5OmniThinkerConfig, Qwen2_5OmniThinkerForConditionalGeneration

    from avsearch.models.wave.beats import BEATsConfig
    from avsearch.models.wave.config import WaveConfig, WaveOptions
    from avsearch.models.wave.embedder import WaveEmbedder
    from avsearch.models.wave.extras import WaveExtras
    from avsearch.models.wave.loader import token_ids_of
    from avsearch.models.wave.model import WaveModel
    from avsearch.models.wave.tiny_tokenizer import build_tokenizer

    tok_dir = Path(tempfile.mkdtemp(prefix="wave-bench-tok-"))
    _, special = build_tokenizer(tok_dir)  # a small local tokenizer: the prompt text is ~6 tokens
    tokenizer = AutoTokenizer.from_pretrained(str(tok_dir))
    raw = full_size_config(special)
    config = WaveConfig.from_dict(raw)
    torch_device = torch.device(device)
    with torch.device(torch_device):
        thinker = Qwen2_5OmniThinkerForConditionalGeneration._from_config(
            Qwen2_5OmniThinkerConfig.from_dict(raw), dtype=torch.bfloat16, attn_implementation="sdpa")
        thinker.lm_head = torch.nn.Identity()
        extras = WaveExtras(config, BEATsConfig.from_dict(raw["beats_config"]))
    extras.to(torch.bfloat16)
    extras.beats.to(torch.float16)
    model = WaveModel(thinker.eval(), extras.eval(), config, torch_device, torch.bfloat16, torch.float16)
    options = WaveOptions(av_position_mode=av_position_mode, max_batch_tokens=max_batch_tokens).resolved(config)
    return WaveEmbedder(model, tokenizer, config, token_ids_of(tokenizer, config), options,
                        model_id="wave:random-full-size", source="benchmark")


def make_clips(n: int, w: Workload, seed: int = 0):
    import numpy as np

    from avsearch.types import Clip

    rng = np.random.default_rng(seed)
    frames_n = int(round(w.seconds * w.fps))
    t = np.arange(int(w.seconds * 16000)) / 16000
    base = rng.integers(0, 256, (frames_n, w.height, w.width, 3), dtype=np.uint8)
    clips = []
    for i in range(n):
        audio = (0.3 * np.sin(2 * np.pi * (220 + 20 * i) * t)).astype(np.float32)
        clips.append(Clip(f"bench-{i}.mp4", 0.0, w.seconds, frames=np.roll(base, i, axis=2), fps=w.fps, audio=audio))
    return clips


def preprocess_seconds(embedder, clips) -> float:
    """CPU time of the per-clip preprocessing alone (PIL resize + patching, Whisper mel, BEATs fbank)."""
    from avsearch.models.wave.audio import prepare_audio
    from avsearch.models.wave.vision import prepare_video

    o = embedder.options
    t0 = time.perf_counter()
    for c in clips:
        prepare_audio(c.audio, embedder._mel, with_whisper=True)
        prepare_video(c.frames, c.fps, c.duration_s, max_frames=o.max_frames, min_pixels=o.min_pixels,
                      max_pixels=o.max_pixels)
    return time.perf_counter() - t0


def component_seconds(embedder, clips) -> dict:
    """Where the time of one embed call goes: media preparation, audio towers, ViT, LLM + head."""
    import torch

    from avsearch.models.wave.batching import left_pad

    sync = torch.cuda.synchronize
    view = "av"
    rows = [embedder._row(embedder.plan_clip(c, view)) for c in clips]
    ids, mask, positions = left_pad([r.ids for r in rows], [r.positions for r in rows], embedder.token_ids.pad)
    o, mel = embedder.options, embedder._mel
    from avsearch.models.wave.audio import prepare_audio
    from avsearch.models.wave.vision import prepare_video

    out = {}
    with torch.inference_mode():
        sync(); t0 = time.perf_counter()
        audio = embedder._map(lambda c: prepare_audio(c.audio, mel), clips)
        video = embedder._map(lambda c: prepare_video(c.frames, c.fps, c.duration_s, max_frames=o.max_frames,
                                                      min_pixels=o.min_pixels, max_pixels=o.max_pixels), clips)
        out["prepare_threaded"] = time.perf_counter() - t0
        sync(); t0 = time.perf_counter()
        audio_rows = embedder.model.audio.encode(audio, embedder.model.dtype)
        sync(); out["audio_towers"] = time.perf_counter() - t0; t0 = time.perf_counter()
        video_rows = embedder.model.vision.encode(video, embedder.model.dtype)
        sync(); out["vit"] = time.perf_counter() - t0; t0 = time.perf_counter()
        embedder.model.forward(ids, mask, positions, embedder.token_ids, audio_rows=audio_rows,
                               video_rows=video_rows, use_head=True)
        sync(); out["llm_and_head"] = time.perf_counter() - t0
    return {k: v / len(clips) for k, v in out.items()}


def timed_run(embedder, clips, batch: int) -> dict:
    import numpy as np
    import torch

    embedder.embed_clips(clips[:batch], "av")  # warm-up: kernels, allocator
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    vectors = [embedder.embed_clips(clips[i: i + batch], "av") for i in range(0, len(clips), batch)]
    torch.cuda.synchronize()
    elapsed = time.perf_counter() - t0
    return {"batch_size": batch, "elapsed_s": elapsed, "clips_per_s": len(clips) / elapsed,
            "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30,
            "finite_vectors": bool(np.isfinite(np.concatenate(vectors)).all())}


def run(args) -> dict:
    import torch

    w = Workload(seconds=args.seconds, fps=args.fps, height=args.height, width=args.width)
    flops = flops_per_clip(w)
    t0 = time.perf_counter()
    embedder = build_random_embedder(args.device, args.max_batch_tokens, args.av_position_mode)
    build_s = time.perf_counter() - t0
    clips = make_clips(args.clips, w)
    default_batch = max(1, embedder.max_batch_tokens // flops["sequence_tokens"])
    batches = [int(b) for b in args.batch_sizes.split(",")] if args.batch_sizes else [default_batch]
    pre_s = preprocess_seconds(embedder, clips[:8]) / min(8, len(clips))
    components = component_seconds(embedder, clips[:default_batch])  # warm-up as well
    components = component_seconds(embedder, clips[:default_batch])
    print(json.dumps({"seconds_per_clip_by_component": components}), flush=True)
    runs = []
    for b in batches:
        r = timed_run(embedder, clips, b)
        r["llm_tokens_per_s"] = r["clips_per_s"] * flops["sequence_tokens"]
        r["mfu"] = mfu(flops["total"], r["clips_per_s"], args.peak_tflops)
        runs.append(r)
        print(json.dumps(r), flush=True)
    best = max(runs, key=lambda r: r["clips_per_s"])
    baseline = None
    if args.baseline_upstream_loop:
        # Same run, same clips: the towers back on upstream's one-SDPA-call-per-window loop.
        from avsearch.models.wave.packed_attention import PACKED_ATTENTION

        inner = embedder.model.thinker.model
        for m in [*inner.visual.modules(), *inner.audio_tower.modules()]:
            if getattr(getattr(m, "config", None), "_attn_implementation", None) == PACKED_ATTENTION:
                m.config._attn_implementation = "sdpa"
        baseline = timed_run(embedder, clips, best["batch_size"])
        baseline["what"] = "upstream per-window SDPA loop in the ViT and Whisper towers"
        print(json.dumps({"baseline": baseline}), flush=True)
    return {
        "device": torch.cuda.get_device_name(0), "torch": torch.__version__, "dtype": "bfloat16 (BEATs float16)",
        "clip": asdict(w), "clips": len(clips), "batch_size": best["batch_size"],
        "max_batch_tokens": embedder.max_batch_tokens, "av_position_mode": args.av_position_mode,
        "build_s": build_s, "elapsed_s": best["elapsed_s"], "clips_per_s": best["clips_per_s"],
        "llm_tokens_per_s": best["llm_tokens_per_s"], "flops_per_clip": flops, "peak_tflops": args.peak_tflops,
        "mfu": best["mfu"],
        "mfu_gpu_work_only": mfu(flops["total"], 1 / (gpu_s := components["audio_towers"] + components["vit"]
                                                      + components["llm_and_head"]), args.peak_tflops),
        "gpu_s_per_clip": gpu_s,
        "preprocess_s_per_clip": pre_s, "seconds_per_clip_by_component": components, "peak_memory_gib": best["peak_memory_gib"],
        "finite_vectors": all(r["finite_vectors"] for r in runs), "runs": runs,
        "baseline_upstream_loop": baseline,
        "note": "end to end: media preparation (PIL resize, Whisper mel) included; it runs in 8 threads, and "
                "within one call the next token-budget group is prepared while the GPU runs the current one",
    }


def write_results(result: dict, out_dir: Path = RESULTS) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / "wave_throughput.json", out_dir / "wave_throughput.md"
    json_path.write_text(json.dumps(result, indent=2) + "\n")
    f, clip = result["flops_per_clip"], result["clip"]
    md_path.write_text("\n".join([
        "# WAVE-7B embedding throughput (random weights, full size)", "",
        f"- device: {result['device']}, {result['dtype']}",
        f"- workload: {result['clips']} audio+video clips of {clip['seconds']} s at {clip['fps']} fps, "
        f"{clip['height']}x{clip['width']} frames; {f['sequence_tokens']} tokens per clip",
        f"- batch size {result['batch_size']}, token budget {result['max_batch_tokens']}, "
        f"AV positions {result['av_position_mode']}",
        f"- **{result['clips_per_s']:.2f} clips/s**, {result['llm_tokens_per_s']:.0f} LLM tokens/s",
        f"- {f['total'] / 1e12:.2f} TFLOP per clip -> MFU {100 * result['mfu']:.1f}% "
        f"of {result['peak_tflops']} TFLOP/s",
        f"- media preparation {result['preprocess_s_per_clip'] * 1000:.0f} ms per clip on one thread, "
        f"{result['seconds_per_clip_by_component']['prepare_threaded'] * 1000:.0f} ms threaded; GPU work "
        f"{result['gpu_s_per_clip'] * 1000:.0f} ms per clip "
        + ", ".join(f"({k} {v * 1000:.0f} ms)" for k, v in result["seconds_per_clip_by_component"].items()
                    if k != "prepare_threaded")
        + f" -> MFU of the GPU work alone {100 * result['mfu_gpu_work_only']:.1f}%",
        f"- peak GPU memory {result['peak_memory_gib']:.1f} GiB; vectors finite: {result['finite_vectors']}",
        f"- {result['note']}", "",
        "| batch size | clips/s | LLM tokens/s | MFU | peak GiB |",
        "|---:|---:|---:|---:|---:|",
        *[f"| {r['batch_size']} | {r['clips_per_s']:.2f} | {r['llm_tokens_per_s']:.0f} | {100 * r['mfu']:.1f}% | "
          f"{r['peak_memory_gib']:.1f} |" for r in result["runs"]],
        "",
        *([f"Baseline in the same run ({result['baseline_upstream_loop']['what']}), batch "
           f"{result['baseline_upstream_loop']['batch_size']}: {result['baseline_upstream_loop']['clips_per_s']:.2f} "
           f"clips/s -> packed attention is {result['clips_per_s'] / result['baseline_upstream_loop']['clips_per_s']:.2f}x.",
           ""] if result.get("baseline_upstream_loop") else []),
    ]))
    return json_path, md_path


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clips", type=int, default=64, help="clips embedded in the timed run")
    p.add_argument("--batch-sizes", default=None,
                   help="comma-separated clips per embed call, each timed (default: fill the token budget)")
    p.add_argument("--max-batch-tokens", type=int, default=None, help="padded tokens per LLM forward")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--fps", type=float, default=2.0)
    p.add_argument("--height", type=int, default=720)
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--baseline-upstream-loop", action="store_true",
                   help="also time the upstream per-window attention loop on the same clips")
    p.add_argument("--av-position-mode", choices=("sequential", "training"), default="sequential")
    p.add_argument("--peak-tflops", type=float, default=H100_SXM_BF16_DENSE_TFLOPS,
                   help="dense bf16 peak of the GPU (H100 SXM: 989; H100 PCIe: 756; H200: 989)")
    p.add_argument("--device", default="cuda")
    p.add_argument("--dry-run", action="store_true", help="print the config and FLOPs per clip; build nothing")
    p.add_argument("--out", type=Path, default=RESULTS)
    return p.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    w = Workload(seconds=args.seconds, fps=args.fps, height=args.height, width=args.width)
    if args.dry_run:
        grid, audio, seq, chunks = clip_shapes(w)
        print(json.dumps({"text_config": SPEC_TEXT, "vision_config": SPEC_VISION, "audio_config": SPEC_AUDIO,
                          "grid_thw": [grid.t, grid.h, grid.w], "chunks": chunks,
                          "flops_per_clip": flops_per_clip(w)}, indent=2))
        return 0
    import torch

    if not torch.cuda.is_available():
        print("wave_throughput needs a CUDA GPU (torch sees none): it builds WAVE-7B at full size in bf16. "
              "Run it on a GPU machine, or pass --dry-run for the FLOP arithmetic only.", file=sys.stderr)
        return 2
    result = run(args)
    paths = write_results(result, args.out)
    print(json.dumps(result, indent=2))
    print("wrote", *paths)
    return 0


if __name__ == "__main__":
    sys.exit(main())
