"""benchmarks/wave_throughput.py: argument parsing, FLOP arithmetic and the refusal without CUDA."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "wave_throughput.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("wave_throughput", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file runs
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def test_llm_flops_are_two_per_weight_per_token_plus_causal_attention(bench):
    d, kv, ffn, layers = 3584, 512, 18944, 28
    weights = 2 * d * d + 2 * d * kv + 3 * d * ffn  # q, o, k, v, gate/up/down per layer
    assert weights * layers == pytest.approx(6.53e9, rel=0.01)  # Qwen2.5-7B without embeddings
    tokens = 2710
    expected = layers * (2 * tokens * weights + 2 * tokens * tokens * d)
    assert bench.llm_flops(tokens) == expected


def test_flops_per_clip_of_the_default_workload(bench):
    flops = bench.flops_per_clip(bench.Workload())
    assert flops["sequence_tokens"] == 2704 + 6 and flops["audio_tokens"] == 500 and flops["video_tokens"] == 2200
    assert flops["total"] == pytest.approx(sum(flops[k] for k in ("llm", "head", "vit", "whisper", "beats")))
    assert flops["head"] == 2 * (100_352 * 3584 + 3584 * 3584)
    assert 30e12 < flops["llm"] < 45e12 and 8e12 < flops["vit"] < 15e12


def test_mfu_is_achieved_over_peak(bench):
    assert bench.mfu(50e12, 4.0, 989.0) == pytest.approx(200e12 / 989e12)


def test_arguments_and_defaults(bench):
    args = bench.parse_args(["--clips", "8", "--peak-tflops", "756", "--av-position-mode", "training"])
    got = (args.clips, args.peak_tflops, args.av_position_mode, args.seconds, args.fps)
    assert got == (8, 756.0, "training", 10.0, 2.0)
    assert bench.parse_args([]).peak_tflops == 989.0


def test_dry_run_prints_config_and_flops_without_a_gpu(bench, capsys):
    assert bench.main(["--dry-run"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["grid_thw"] == [10, 22, 40] and report["text_config"]["num_hidden_layers"] == 28
    assert report["flops_per_clip"]["total"] > 0


def test_it_refuses_to_run_without_cuda(bench, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert bench.main([]) == 2
    assert "needs a CUDA GPU" in capsys.readouterr().err
