"""Start the service: uvicorn on a bound socket, the service file written while it listens."""

from __future__ import annotations

import socket
import threading
from typing import Callable, Optional

import uvicorn

from avsearch.server.app import create_app
from avsearch.server.config import ServeConfig
from avsearch.server.discovery import ServiceInfo, remove_service_file, write_service_file


class Service:
    """A running (or about to run) service over an open Index.

    `run()` blocks until Ctrl-C / SIGTERM (the CLI); `start()` runs it in a thread and returns
    once it accepts connections (tests, benchmarks), `stop()` ends it.
    """

    def __init__(self, index, config: ServeConfig, *, log_level: str = "warning"):
        self.index = index
        self.config = config
        self.app = create_app(index, config)
        if index.exists:  # read the ANN index and tables now, so the first person to ask does not wait
            index.search("warm-up", k=1)
        self.socket = _bind(config.host, config.port)
        self.port = self.socket.getsockname()[1]  # the real one when config.port is 0
        host = f"[{config.host}]" if ":" in config.host else config.host
        self.url = f"http://{host}:{self.port}"
        self.info = ServiceInfo(self.url, config.token or "", _pid())
        self._server = _Server(uvicorn.Config(self.app, log_level=log_level, access_log=False,
                                              timeout_graceful_shutdown=5),
                               on_shutdown=lambda: remove_service_file(self.index.path, self.info))
        self._thread: Optional[threading.Thread] = None

    @property
    def page_url(self) -> str:
        return f"{self.url}/?token={self.config.token}" if self.config.token else f"{self.url}/"

    def run(self, on_ready: Optional[Callable[[], None]] = None) -> None:
        write_service_file(self.index.path, self.info)
        try:
            if on_ready:
                on_ready()
            self._server.run(sockets=[self.socket])
        finally:
            remove_service_file(self.index.path, self.info)

    def start(self, timeout_s: float = 30.0) -> "Service":
        self._thread = threading.Thread(target=self.run, name="avsearch-serve", daemon=True)
        self._thread.start()
        for _ in range(int(timeout_s / 0.02)):
            if self._server.started:
                return self
            if not self._thread.is_alive():
                break
            threading.Event().wait(0.02)
        raise RuntimeError("the service did not start")

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=15)


class _Server(uvicorn.Server):
    """uvicorn's server, removing the service file as it starts to shut down: uvicorn re-raises
    SIGTERM/SIGINT after a graceful exit, so code after `run()` may never get to run."""

    def __init__(self, config, on_shutdown: Callable[[], None]):
        super().__init__(config)
        self._on_shutdown = on_shutdown

    async def shutdown(self, sockets=None) -> None:
        self._on_shutdown()
        await super().shutdown(sockets)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP, not the default 0: asyncio turns Nagle off (TCP_NODELAY) only on sockets
    # that say they are TCP. Without it every response (headers, then body) stalled ~40 ms on the
    # client's delayed ACK (measured: 44 ms vs 0.25 ms for a trivial request on loopback).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        from avsearch.server.config import ServeConfigError

        raise ServeConfigError(f"cannot listen on {host}:{port} ({err.strerror}); pick another --port") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def _pid() -> int:
    import os

    return os.getpid()
