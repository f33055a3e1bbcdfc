"""`avsearch model info`: what a model spec points at and whether its files are here.

Only looks at the disk (and the Hugging Face cache): never downloads, never loads weights.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from avsearch.models.registry import DEFAULT_MODEL


def cache_dir() -> Path:
    return Path(os.environ.get("AVSEARCH_CACHE") or Path.home() / ".cache" / "avsearch")


def describe_model(spec: Optional[str]) -> dict:
    spec = spec or DEFAULT_MODEL
    facts: dict = {"model": spec}
    if spec == "wave":
        spec = DEFAULT_MODEL
    if spec == "tiny":
        path = cache_dir() / "tiny-wave-seed0"
        facts.update(kind="tiny (generated, random weights)", path=str(path),
                     present=(path / "config.json").is_file(),
                     note="made on first use by `--model tiny`; vectors carry no meaning")
    elif Path(spec).expanduser().exists():
        path = Path(spec).expanduser().absolute()
        facts.update(kind="local checkpoint directory", path=str(path), **_checkpoint_files(path))
    else:
        facts.update(kind="Hugging Face hub id", **_hub_cache(spec))
    beats = os.environ.get("AVSEARCH_BEATS")
    facts["beats_weights"] = f"{beats} (AVSEARCH_BEATS)" if beats else "from the checkpoint"
    facts["beats_present"] = Path(beats).is_file() if beats else None
    facts["device"] = _device()
    return facts


def _checkpoint_files(path: Path) -> dict:
    weights = sorted(p.name for p in path.glob("*.safetensors")) + sorted(p.name for p in path.glob("*.bin"))
    has_config = (path / "config.json").is_file()
    has_tok = any((path / n).is_file() for n in ("tokenizer.json", "vocab.json"))
    return {
        "present": has_config and bool(weights) and has_tok,
        "config.json": has_config,
        "weights": ", ".join(weights) or "missing",
        "tokenizer": has_tok,
    }


def _hub_cache(repo_id: str) -> dict:
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(repo_id, "config.json")
    except Exception:
        found = None
    if isinstance(found, str):
        snapshot = Path(found).parent
        return {"path": str(snapshot), **_checkpoint_files(snapshot)}
    return {
        "path": "not in the Hugging Face cache",
        "present": False,
        "note": "downloaded on first use (needs network); offline, pass --model /path/to/checkpoint "
                "or try `avsearch model make-tiny DIR`",
    }


def _device() -> str:
    try:
        import torch

        if torch.cuda.is_available():
            return f"cuda ({torch.cuda.get_device_name(0)})"
    except Exception:
        pass
    return "cpu (no CUDA device)"


def device_description() -> str:
    """The compute device the model runs on by default, in words (for reports)."""
    return _device()
