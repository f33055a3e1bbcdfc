"""The file by which a running service announces itself in its index directory.

`avsearch serve` writes `serve.json` (address, token, pid) with mode 0600, so only the index's
owner can read the token; `avsearch query` reads it to find the service. An index on an object
store has it in its local cache folder: the service is found on the machine it runs on.
Standard library only (and avsearch.locations).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

from avsearch.locations import local_dir

SERVICE_FILE = "serve.json"


@dataclass(frozen=True)
class ServiceInfo:
    url: str  # e.g. http://127.0.0.1:8765
    token: str
    pid: int


def write_service_file(index_dir: Path, info: ServiceInfo) -> Path:
    path = local_dir(index_dir) / SERVICE_FILE
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    # Created 0600 from the start (not chmod-ed after), so the token is never readable by others.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(asdict(info), f)
    os.replace(tmp, path)
    return path


def read_service_file(index_dir: Path) -> Optional[ServiceInfo]:
    try:
        data = json.loads((local_dir(index_dir) / SERVICE_FILE).read_text())
        return ServiceInfo(str(data["url"]), str(data["token"]), int(data["pid"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def remove_service_file(index_dir: Path, info: ServiceInfo) -> None:
    """Remove the file if it is still ours (a newer service may have replaced it)."""
    if read_service_file(index_dir) == info:
        try:
            (local_dir(index_dir) / SERVICE_FILE).unlink()
        except FileNotFoundError:
            pass
