"""The service's settings, fixed at start."""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from avsearch.errors import AvsearchError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
DEFAULT_MAX_UPLOAD_MB = 200


class ServeConfigError(AvsearchError, ValueError):
    exit_code = 2


@dataclass(frozen=True)
class ServeConfig:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    token: Optional[str] = None  # None: no token asked (loopback only; see `make`)
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_MB * 1_000_000
    roots: tuple[Path, ...] = field(default_factory=tuple)  # folders POST /api/jobs may index
    batch_wait_s: float = 0.004  # how long a text query waits for others to share its batch

    @classmethod
    def make(cls, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, token: Optional[str] = None,
             no_token: bool = False, max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB, roots=(), **rest) -> "ServeConfig":
        """Safe defaults: a random token unless `no_token`, which only a loopback host may use."""
        if no_token and token:
            raise ServeConfigError("give --token or --no-token, not both")
        if no_token and not is_loopback(host):
            raise ServeConfigError(f"--host {host} is reachable from other machines: it needs a token "
                                   "(drop --no-token; one is generated, or give --token)")
        if max_upload_mb <= 0:
            raise ServeConfigError("--max-upload-mb must be above 0")
        bad = [str(r) for r in roots if not Path(r).is_dir()]
        if bad:
            raise ServeConfigError(f"--root must be an existing folder: {', '.join(bad)}")
        return cls(host=host, port=port, token=None if no_token else (token or secrets.token_urlsafe(24)),
                   max_upload_bytes=int(max_upload_mb * 1_000_000),
                   roots=tuple(Path(r).expanduser().resolve() for r in roots), **rest)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
