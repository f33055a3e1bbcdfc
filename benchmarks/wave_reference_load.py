"""Does the WAVE authors' reference code load a checkpoint written by `avsearch model make-tiny`?

Runs the reference's own loading sequence (qwenvl/train/train_qwen.py, the `run_test` branch) on a
checkpoint directory, unchanged: the processor from the directory, the thinker config with the
embedding-head keys, `from_pretrained` (every weight must be used and none missing), then the BEATs
file that config.json's audio_config.beats_path names, loaded strictly over `model.beats` as the
reference does, and one chat-template round as its data code applies it.

It needs an environment of its own, the reference's: transformers 4.51.3 (avsearch needs 5.x),
liger_kernel 0.5.10, and the reference repository (github.com/TCL606/WAVE) on sys.path:

    python3 -m venv /tmp/refvenv && /tmp/refvenv/bin/pip install torch transformers==4.51.3 \\
        liger_kernel==0.5.10 --no-deps  # + torch's own deps; torchaudio only for its fbank
    avsearch model make-tiny /tmp/tiny
    /tmp/refvenv/bin/python benchmarks/wave_reference_load.py /tmp/tiny --reference /path/to/WAVE

torchaudio is imported by the reference's BEATs module for its fbank only; where no torchaudio
build matches the installed torch, `--stub-torchaudio` puts a stand-in module on the path (loading
never calls it). Prints one JSON line; exit 0 when everything loaded.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--reference", type=Path, required=True, help="a checkout of the WAVE reference repository")
    ap.add_argument("--stub-torchaudio", action="store_true")
    args = ap.parse_args()
    sys.path.insert(0, str(args.reference))
    if args.stub_torchaudio:
        sys.path.insert(0, _torchaudio_stub())

    import torch
    import transformers
    from qwenvl.data.processing_qwen2_5_omni import Qwen2_5OmniProcessor
    from qwenvl.model.qwen2_5_omni.configuration_qwen2_5_omni import Qwen2_5OmniThinkerConfig
    from qwenvl.model.qwen2_5_omni.modeling_qwen2_5_omni import Qwen2_5OmniThinkerForConditionalGeneration

    ckpt = str(args.checkpoint)
    out: dict = {"transformers": transformers.__version__, "checkpoint": ckpt}
    processor = Qwen2_5OmniProcessor.from_pretrained(ckpt)
    out["processor"] = type(processor).__name__
    config = Qwen2_5OmniThinkerConfig.from_pretrained(ckpt)
    config.train_classify, config.classify_type, config.sim_temperature = True, "all_layer", 0.01
    beats_path = getattr(config.audio_config, "beats_path", "No")
    out["beats_path"] = beats_path
    model, info = Qwen2_5OmniThinkerForConditionalGeneration.from_pretrained(
        ckpt, config=config, torch_dtype=None, attn_implementation="sdpa", output_loading_info=True)
    out["missing_keys"] = sorted(info["missing_keys"])
    out["unexpected_keys"] = sorted(info["unexpected_keys"])
    if beats_path != "No":
        state = torch.load(beats_path, map_location="cpu")
        model.beats.load_state_dict(state["model"])  # strict, as the reference loads it
        out["beats_loaded"] = True
        # transformers 4.51 renames a checkpoint's weight_g/weight_v to torch's parametrization
        # names on load, so BEATs' weight-normed conv is reported missing for every WAVE
        # checkpoint; the reference's strict load of the BEATs file above fills it.
        filled = {"beats." + k for k in state["model"]}
        out["missing_filled_by_beats_file"] = [k for k in out["missing_keys"] if k in filled]
        out["missing_keys"] = [k for k in out["missing_keys"] if k not in filled]
        renamed = {k.replace("parametrizations.weight.original0", "weight_g")
                   .replace("parametrizations.weight.original1", "weight_v"): k for k in out["unexpected_keys"]}
        out["renamed_by_transformers"] = [k for g, k in renamed.items() if g in filled]
        out["unexpected_keys"] = [k for g, k in renamed.items() if g not in filled]
    # The values, not only the names: every weight the model holds that the files name is theirs.
    from safetensors.torch import load_file

    stored = load_file(str(args.checkpoint / "model.safetensors"))
    if beats_path != "No":
        stored.update({"beats." + k: v for k, v in state["model"].items()})
    held = model.state_dict()
    same = [k for k in held if k in stored and torch.equal(held[k].float(), stored[k].float())]
    out["weights_compared"] = sum(k in stored for k in held)
    out["weights_equal"] = len(same)
    out["weights_held"] = len(held)
    text = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "audio", "audio": "x.wav"}, {"type": "text", "text": "hi"}]}],
        add_generation_prompt=False, tokenize=False)
    text = text[0] if isinstance(text, list) else text
    out["chat_template"] = text.split("<|im_start|>user\n")[-1].strip()
    ok = not out["missing_keys"] and not out["unexpected_keys"] and out["weights_equal"] == out["weights_compared"]
    out["ok"] = ok
    print(json.dumps(out))
    return 0 if ok else 1


def _torchaudio_stub() -> str:
    root = Path(tempfile.mkdtemp(prefix="torchaudio-stub-"))
    pkg = root / "torchaudio" / "compliance"
    pkg.mkdir(parents=True)
    (root / "torchaudio" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "kaldi.py").write_text("def fbank(*a, **k):\n    raise NotImplementedError('stand-in: loading only')\n")
    return str(root)


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())
