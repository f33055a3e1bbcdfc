"""Ask a running service instead of loading the model: what `avsearch query` does first.

Standard library only (http.client), so a query through the service starts in a fraction of a
second. `search_via_service` returns None when no service answers for the index; the caller then
works in-process. An error the service reports (a bad clip id, an unreadable file) is raised here
with the service's message and exit code, exactly as the in-process search would raise it.
"""

from __future__ import annotations

import http.client
import json
import uuid
from pathlib import Path
from typing import Optional
from urllib.parse import urlsplit

from avsearch.errors import AvsearchError
from avsearch.server.discovery import read_service_file

CONNECT_TIMEOUT_S = 1.0  # a service that does not accept within this is treated as absent
ANSWER_TIMEOUT_S = 3600.0  # a re-rank on a CPU may take long; the service is working meanwhile


class ServiceError(AvsearchError):
    """An error the service answered with; carries the service's exit code."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


def search_via_service(index_dir: Path, request: dict, media: Optional[Path] = None) -> Optional[dict]:
    """POST a search to the index's service: a SearchRequest dict, or with `media` the options of
    a media search (the file is uploaded). The SearchResponse dict, or None if no service answers."""
    info = read_service_file(index_dir)
    if info is None:
        return None
    url = urlsplit(info.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=CONNECT_TIMEOUT_S)
    try:
        conn.connect()
    except OSError:  # a stale serve.json: the service is gone
        return None
    try:
        conn.sock.settimeout(ANSWER_TIMEOUT_S)
        headers = {"Authorization": f"Bearer {info.token}"} if info.token else {}
        if media is None:
            body = json.dumps(request).encode()
            headers["Content-Type"] = "application/json"
            conn.request("POST", "/api/search", body=body, headers=headers)
        else:
            body, content_type = _multipart(media, json.dumps(request))
            headers["Content-Type"] = content_type
            conn.request("POST", "/api/search/media", body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
    except (OSError, http.client.HTTPException):  # it went away mid-request: work in-process
        return None
    finally:
        conn.close()
    try:
        answer = json.loads(data)
    except ValueError:
        return None  # not an avsearch service on that port
    if response.status != 200:
        raise ServiceError(answer.get("error") or f"the service answered {response.status}",
                           int(answer.get("exit_code") or 1))
    return answer


def _multipart(path: Path, request_json: str) -> tuple[bytes, str]:
    try:
        content = Path(path).expanduser().read_bytes()
    except OSError as err:
        raise ServiceError(f"cannot read the query file {path}: {err.strerror}", 8) from None
    boundary = uuid.uuid4().hex
    name = Path(path).name.replace('"', "_")
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="request"\r\n\r\n{request_json}\r\n'.encode(),
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n".encode() + content + b"\r\n",
        f"--{boundary}--\r\n".encode(),
    ]
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"
