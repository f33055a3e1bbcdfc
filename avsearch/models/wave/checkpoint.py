"""Finding and reading a WAVE checkpoint: hub id or directory, thinker, extra tensors, BEATs file.

Layout (spec §7): config.json (qwen2_5_omni_thinker + WAVE keys), weight shards with the legacy
thinker names (`audio_tower.*`, `visual.*`, `model.*`, `lm_head.weight`, optionally prefixed by
`thinker.`) plus `beats.*`, `beats_ln.*`, `beats_proj.*`, `classify_linear.*`, and tokenizer files.
transformers 5.x maps the thinker names itself and drops the WAVE extras, which are read here
straight from the shards. Pickled files are only ever opened with weights_only=True.
"""

from __future__ import annotations

import json
import os
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import torch

from avsearch.errors import CheckpointError, ModelNotFoundError
from avsearch.models.registry import DEFAULT_MODEL
from avsearch.models.wave.beats import BEATsConfig, normalize_beats_state_dict
from avsearch.models.wave.config import BEATS_ITER3_PLUS_CFG, WaveConfig
from avsearch.models.wave.extras import is_extra_key

HUB_PATTERNS = ["*.json", "*.txt", "*.safetensors", "*.bin", "*.pt", "*.jinja", "*.model", "*.tiktoken"]
BEATS_ENV = "AVSEARCH_BEATS"
BEATS_CFG_FILE = "beats_cfg.json"
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")

NOT_REACHABLE_HELP = ("Pass a local checkpoint directory with --model PATH, or make a tiny offline one with "
                      "`avsearch model make-tiny DIR`.")


# -- where the files are -----------------------------------------------------------------------


def resolve_checkpoint(spec: Optional[str]) -> tuple[Path, str]:
    """(directory, source) for a hub id or a local directory. "wave" and None mean WAVE-7B."""
    spec = DEFAULT_MODEL if spec in (None, "", "wave") else str(spec)
    path = Path(spec).expanduser()
    if path.is_dir():
        return path.resolve(), str(path.resolve())
    if path.exists():
        raise CheckpointError(f"{path} is a file; pass the checkpoint directory that holds config.json")
    if spec.startswith((".", "/", "~")) or "\\" in spec or spec.count("/") > 1 or not _REPO_ID.match(spec):
        raise ModelNotFoundError(f"no checkpoint directory at {path}. {NOT_REACHABLE_HELP}")
    return download_from_hub(spec), spec


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def download_from_hub(repo_id: str) -> Path:
    """The snapshot directory of `repo_id`, fetched with huggingface_hub (or found in its cache).

    HF_HUB_OFFLINE and HF_HUB_CACHE are read at call time (huggingface_hub reads them at import),
    so a caller or a test can switch them per call.
    """
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError

    offline = _env_flag("HF_HUB_OFFLINE")
    try:
        return Path(snapshot_download(repo_id, allow_patterns=HUB_PATTERNS, local_files_only=offline,
                                      cache_dir=os.environ.get("HF_HUB_CACHE") or None))
    except GatedRepoError:
        raise ModelNotFoundError(f"the Hugging Face hub refused access to {repo_id} (gated repository); log in "
                                 f"with `hf auth login` after accepting its terms. {NOT_REACHABLE_HELP}") from None
    except (RepositoryNotFoundError, RevisionNotFoundError):
        raise ModelNotFoundError(f"the Hugging Face hub has no model {repo_id!r} and there is no local directory "
                                 f"of that name. {NOT_REACHABLE_HELP}") from None
    except Exception as err:  # offline mode, no network, timeouts, proxy errors: all "not reachable"
        why = "offline mode is on (HF_HUB_OFFLINE)" if offline else f"{type(err).__name__}: {err}"
        raise ModelNotFoundError(
            f"{repo_id!r} is not a local directory, and the Hugging Face hub could not be reached to fetch it "
            f"(it is not in the local cache either; {why}). {NOT_REACHABLE_HELP}") from None


def weight_files(directory: Path) -> list[Path]:
    """The weight shards: from an index file if there is one, else every *.safetensors, else *.bin."""
    for index_name in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        index = directory / index_name
        if index.is_file():
            try:
                names = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            except (OSError, ValueError, KeyError) as err:
                raise CheckpointError(f"cannot read {index}: {err}") from None
            missing = [n for n in names if not (directory / n).is_file()]
            if missing:
                raise CheckpointError(f"{index} names shards that are not there: {', '.join(missing)}; "
                                      "the download is incomplete, fetch the checkpoint again")
            return [directory / n for n in names]
    shards = sorted(directory.glob("*.safetensors"))
    if not shards:
        shards = sorted(p for p in directory.glob("*.bin") if p.name.startswith("pytorch_model"))
    if not shards:
        raise CheckpointError(f"{directory} has no weights (model*.safetensors or pytorch_model*.bin). "
                              "Is the download complete?")
    return shards


def legacy_name(key: str) -> str:
    """transformers 5.x parameter name -> the checkpoint's legacy thinker name (for messages)."""
    for new, old in (("model.language_model.", "model."), ("model.audio_tower.", "audio_tower."),
                     ("model.visual.", "visual.")):
        if key.startswith(new):
            return old + key[len(new):]
    return key


# -- reading tensors ---------------------------------------------------------------------------


def _load_pickle(path: Path) -> dict:
    try:
        try:
            return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as err:  # old (non-zip) serialisation cannot be memory-mapped
            if "mmap" not in str(err):
                raise
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(f"cannot read {path} as plain tensors ({type(err).__name__}: {err}). avsearch only "
                              "loads pickles with weights_only=True and never runs code stored in them.") from None


def read_extra_tensors(files: list[Path]) -> dict[str, torch.Tensor]:
    """`beats*` and `classify_linear*` tensors from the shards (a `thinker.` prefix is dropped)."""
    out: dict[str, torch.Tensor] = {}
    for path in files:
        if path.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as f:
                for key in f.keys():
                    name = key.removeprefix("thinker.")
                    if is_extra_key(name):
                        out[name] = f.get_tensor(key)
        else:
            for key, value in _load_pickle(path).items():
                name = key.removeprefix("thinker.")
                if is_extra_key(name):
                    out[name] = value
    return out


# -- BEATs -------------------------------------------------------------------------------------


def find_beats_file(directory: Path, config: WaveConfig, beats_path: Optional[str]) -> Optional[Path]:
    """The BEATs .pt to load over the checkpoint's beats.* (spec §7): the `beats_path` argument,
    else $AVSEARCH_BEATS, else the file config.json's audio_config.beats_path names if it exists
    (as given, or beside the checkpoint)."""
    explicit = beats_path or os.environ.get(BEATS_ENV)
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            origin = "beats_path" if beats_path else f"${BEATS_ENV}"
            raise CheckpointError(f"the BEATs file {path} (from {origin}) does not exist")
        return path
    hint = config.beats_path_hint
    if hint:
        named = Path(hint).expanduser()
        # an absolute path from the authors' machine rarely exists here; the file's name beside the
        # checkpoint is where a user would drop it. Relative hints are never read from the CWD.
        for candidate in ([named] if named.is_absolute() else []) + [directory / named.name]:
            if candidate.is_file():
                return candidate
    return None


def load_beats_file(path: Path) -> tuple[dict, dict]:
    """(cfg, state dict) of a BEATs .pt ({'cfg': dict, 'model': state dict}), weights_only."""
    data = _load_pickle(path)
    if not isinstance(data, dict) or not isinstance(data.get("cfg"), dict) or not isinstance(data.get("model"), dict):
        raise CheckpointError(f"{path} is not a BEATs checkpoint: expected a dict with 'cfg' and 'model'")
    return data["cfg"], data["model"]


def beats_config_of(directory: Path, config: WaveConfig) -> tuple[dict, str]:
    """(cfg, where it came from) when BEATs weights come from the checkpoint itself."""
    if config.beats_config:
        return dict(config.beats_config), "config.json beats_config"
    path = directory / BEATS_CFG_FILE
    if path.is_file():
        return json.loads(path.read_text()), str(path)
    return dict(BEATS_ITER3_PLUS_CFG), "the default BEATs iter3+ cfg (UNVERIFIED)"


def beats_from(directory: Path, config: WaveConfig, beats_path: Optional[str],
               extra: dict[str, torch.Tensor]) -> tuple[Optional[BEATsConfig], dict, Optional[Path]]:
    """(BEATs cfg, beats.* tensors, the .pt used or None), with the .pt's weights replacing the
    checkpoint's (the reference loads the file over model.beats, T:184-191)."""
    if not config.uses_beats:
        return None, {}, None
    path = find_beats_file(directory, config, beats_path)
    if path is not None:
        cfg, state = load_beats_file(path)
        return BEATsConfig.from_dict(cfg), {f"beats.{k}": v for k, v in normalize_beats_state_dict(state).items()}, path
    cfg, _ = beats_config_of(directory, config)
    inner = {k[len("beats."):]: v for k, v in extra.items() if k.startswith("beats.")}
    return BEATsConfig.from_dict(cfg), {f"beats.{k}": v for k, v in normalize_beats_state_dict(inner).items()}, None


# -- the thinker -------------------------------------------------------------------------------


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """No load report or progress bar while loading: missing keys are checked and raised here."""
    from transformers.utils import logging as hf_logging

    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def thinker_config(directory: Path):
    """The thinker config, with a 4.x-era `rope_scaling.type: "mrope"` read as the default rope.

    transformers 4.x rewrote "mrope" to "default" when loading Qwen2.5-VL/Omni configs; 5.x has no
    rope init function named "mrope" and would fail. The mrope_section is kept either way.
    """
    from transformers import Qwen2_5OmniThinkerConfig

    config = Qwen2_5OmniThinkerConfig.from_pretrained(str(directory))
    rope = config.text_config.rope_parameters or {}
    if rope.get("rope_type") == "mrope" or rope.get("type") == "mrope":
        rope["rope_type"] = "default"
        rope.pop("type", None)
    return config


def load_thinker(directory: Path, *, dtype: torch.dtype, device: torch.device,
                 attn_implementation: Optional[str] = None):
    """The upstream Qwen2_5OmniThinkerForConditionalGeneration with every weight present, lm_head dropped."""
    from transformers import Qwen2_5OmniThinkerForConditionalGeneration

    device_map = {"": device} if device.type != "cpu" else None
    try:
        with quiet_transformers():
            thinker, info = Qwen2_5OmniThinkerForConditionalGeneration.from_pretrained(
                str(directory), config=thinker_config(directory), dtype=dtype,
                attn_implementation=attn_implementation or "sdpa",
                device_map=device_map, output_loading_info=True, ignore_mismatched_sizes=True)
    except (OSError, ValueError, RuntimeError, KeyError) as err:
        raise CheckpointError(f"cannot load the Qwen2.5-Omni thinker from {directory}: {err}") from None
    missing = sorted(legacy_name(k) for k in info.get("missing_keys", ()) if not k.startswith("lm_head."))
    if missing:
        raise CheckpointError(
            f"the checkpoint in {directory} lacks {len(missing)} thinker weight(s): {_names(missing)}. "
            "The download may be incomplete, or this is not a WAVE/Qwen2.5-Omni thinker checkpoint.")
    mismatched = info.get("mismatched_keys") or ()
    if mismatched:
        shown = [legacy_name(m[0] if isinstance(m, tuple) else m) for m in mismatched]
        raise CheckpointError(f"weights in {directory} do not fit config.json: {_names(sorted(shown))} have "
                              "other shapes. config.json and the shards belong to different models.")
    # lm_head (3584 x 152064, ~1 GB in bf16) is never used for embeddings (spec §1)
    thinker.lm_head = torch.nn.Identity()
    return thinker.eval()


def _names(keys: list[str], limit: int = 8) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def load_extras_state(extras: torch.nn.Module, state: dict[str, torch.Tensor], directory: Path,
                      config: WaveConfig, beats_file: Optional[Path]) -> None:
    """Strict load of the WAVE extras with errors that say which tensors and what to do."""
    expected = extras.state_dict()
    missing = sorted(k for k in expected if k not in state)
    if missing:
        beats_missing = [k for k in missing if k.startswith("beats.")]
        other = [k for k in missing if not k.startswith("beats.")]
        parts = []
        if other:
            parts.append(f"the WAVE head/projection tensors {_names(other)} are missing from {directory}; "
                         "is this a plain Qwen2.5-Omni thinker rather than a WAVE checkpoint?")
        if beats_missing:
            source = str(beats_file) if beats_file else f"the checkpoint in {directory}"
            named = config.beats_path_hint if not beats_file else None
            hint = f" (config.json names {named!r})" if named else ""
            parts.append(f"BEATs weights {_names(beats_missing)} are missing from {source}{hint}. Pass the BEATs "
                         f"file (BEATs_iter3_plus.pt) with beats_path=... or set {BEATS_ENV}=/path/to/BEATs.pt")
        raise CheckpointError("; ".join(parts))
    unexpected = sorted(k for k in state if k not in expected)
    if unexpected:
        raise CheckpointError(f"unexpected WAVE tensors {_names(unexpected)} in {directory}: the BEATs cfg or "
                              "config.json does not match these weights")
    wrong = [f"{k} {tuple(state[k].shape)} (expected {tuple(v.shape)})" for k, v in expected.items()
             if tuple(state[k].shape) != tuple(v.shape)]
    if wrong:
        raise CheckpointError(f"WAVE tensors with the wrong shape in {directory}: {_names(wrong)}. The BEATs cfg, "
                              "classify_type or config.json does not match these weights.")
    extras.load_state_dict(state, strict=True, assign=True)
