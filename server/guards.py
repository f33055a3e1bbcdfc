"""Request guards as plain ASGI middleware: the token check and the upload size limit.

Both answer with the API's JSON error shape before any route (or multipart parser) runs.
"""

from __future__ import annotations

import hmac
import json
from http.cookies import SimpleCookie
from typing import Optional
from urllib.parse import parse_qs

from starlette.exceptions import HTTPException

TOKEN_COOKIE = "avsearch_token"


async def send_error(send, status: int, message: str, kind: str, headers: Optional[list] = None) -> None:
    body = json.dumps({"error": message, "kind": kind, "exit_code": 1}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
                + (headers or [])})
    await send({"type": "http.response.body", "body": body})


def request_token(scope) -> Optional[str]:
    """The token a request carries: `Authorization: Bearer T` (CLI, scripts), the cookie the page
    got (images and video cannot send headers), or `?token=T` (the link `avsearch serve` prints)."""
    headers = dict(scope.get("headers") or [])
    auth = headers.get(b"authorization", b"").decode("latin-1")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    cookie = SimpleCookie(headers.get(b"cookie", b"").decode("latin-1"))
    if TOKEN_COOKIE in cookie:
        return cookie[TOKEN_COOKIE].value
    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token")
    return values[0] if values else None


class TokenGuard:
    """Refuses (401) every request without the service's token. A good `?token=` also sets the
    cookie, so the browser's later requests (thumbnails, video ranges) carry it."""

    def __init__(self, app, token: Optional[str]):
        self.app = app
        self.token = token

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not self.token:
            return await self.app(scope, receive, send)
        given = request_token(scope)
        if given is None or not hmac.compare_digest(given.encode(), self.token.encode()):
            return await send_error(send, 401, "this service needs its token: open the link `avsearch serve` printed, "
                                    "or send `Authorization: Bearer TOKEN` (the token is in serve.json in the index directory)",
                                    "Unauthorized")
        if b"token=" not in scope.get("query_string", b""):
            return await self.app(scope, receive, send)

        async def send_with_cookie(message):
            if message["type"] == "http.response.start":
                cookie = f"{TOKEN_COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict"
                message = {**message, "headers": list(message.get("headers", [])) + [(b"set-cookie", cookie.encode())]}
            await send(message)

        return await self.app(scope, receive, send_with_cookie)


LOOPBACK_NAMES = {"127.0.0.1", "localhost", "[::1]", "::1"}


class LoopbackHostGuard:
    """Without a token (`--no-token`, loopback only), answer only requests addressed to a loopback
    name: a web page elsewhere could otherwise point a name of its own at 127.0.0.1 (DNS
    rebinding) and read the index through the visitor's browser."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            host = dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1")
            name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            if name not in LOOPBACK_NAMES:
                return await send_error(send, 421, f"this service answers only to 127.0.0.1 or localhost, not {host!r}",
                                        "MisdirectedRequest")
        return await self.app(scope, receive, send)


class _TooLarge(HTTPException):
    """Raised from inside the body stream. An HTTPException, because FastAPI passes those on from
    body parsing (others become a generic 400), and its JSON error handler answers with ours."""

    def __init__(self, message: str):
        super().__init__(413, message)


class UploadLimit:
    """Refuses (413) a request body over `max_bytes`: at once when Content-Length says so, and
    mid-stream when a chunked body grows past it."""

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            return await send_error(send, 413, self._message(), "PayloadTooLarge")
        seen = 0
        started = False

        async def counted_receive():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise _TooLarge(self._message())
            return message

        async def tracked_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except _TooLarge:
            if not started:
                await send_error(send, 413, self._message(), "PayloadTooLarge")

    def _message(self) -> str:
        return (f"the upload is over the service's limit of {self.max_bytes / 1e6:.0f} MB; send a shorter excerpt, "
                "or restart `avsearch serve` with a larger --max-upload-mb")
