"""``/livez``, ``/readyz`` and ``/metrics`` over HTTP, served from a thread (``run --health HOST:PORT``).

A thread, not the app's event loop, is the point: a liveness probe must be able to say that
the loop is stuck (and who holds it), which a server on that loop could not, since it would
not answer at all. The standard library's threading HTTP server does it: a probe is a few
GETs a minute, and none of it touches Kafka. It listens on a TCP address, or on a Unix
socket (a ``run --processes`` worker, which its parent asks: no port per worker).
"""

from __future__ import annotations

import contextlib
import os
import socket
import socketserver
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Protocol

from aiostream_kafka.probes.health import Health
from aiostream_kafka.probes.metrics import missing
from aiostream_kafka.probes.verdict import Verdict

PATHS = ("/livez", "/readyz", "/metrics")


class ProbeSource(Protocol):
    """Who answers: one app (``AppProbes``) or a ``--processes`` parent for its workers."""

    def liveness(self) -> Verdict: ...

    def readiness(self) -> Verdict: ...

    def metrics(self, accept: str | None) -> tuple[int, bytes, str]:
        """Status, body and content type of ``/metrics``."""
        ...


class AppProbes:
    """The probes of the app running in this process."""

    def __init__(self, health: Health) -> None:
        self._health = health
        self._missing = missing()
        if self._missing is None:
            _ = health.metrics  # counting starts now, before the app does

    def liveness(self) -> Verdict:
        return self._health.liveness()

    def readiness(self) -> Verdict:
        return self._health.readiness()

    def metrics(self, accept: str | None) -> tuple[int, bytes, str]:
        if self._missing is not None:
            return 501, self._missing.encode() + b"\n", "text/plain; charset=utf-8"
        body, content_type = self._health.metrics.exposition(accept)
        return 200, body, content_type


def answer(source: ProbeSource, path: str, accept: str | None) -> tuple[int, bytes, str]:
    """Status, body and content type for a GET of ``path``: what every server here answers."""
    path = path.split("?", 1)[0].rstrip("/") or "/"
    if path == "/livez":
        return _json(source.liveness())
    if path == "/readyz":
        return _json(source.readiness())
    if path == "/metrics":
        return source.metrics(accept)
    return 404, f"not found: {path}; this server answers {', '.join(PATHS)}\n".encode(), "text/plain"


def _json(verdict: Verdict) -> tuple[int, bytes, str]:
    return verdict.status, verdict.body(), "application/json"


class ProbeServer:
    """Serves ``source`` at ``address``: ``(host, port)`` or a Unix socket's path; ``start`` binds
    at once (an address in use fails there), then a daemon thread answers."""

    def __init__(self, source: ProbeSource, address: tuple[str, int] | str) -> None:
        self._source = source
        self.address = address
        self._server: socketserver.BaseServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        handler = _handler(self._source)
        server: socketserver.BaseServer
        if isinstance(self.address, str):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.address)  # a worker's socket left by its previous run
            server = _UnixServer(self.address, handler)
        else:
            server = (_ThreadingHTTPServer6 if ":" in self.address[0] else ThreadingHTTPServer)(
                self.address, handler
            )
            self.address = server.server_address[:2]  # type: ignore[assignment]  # port 0: the one bound
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, name="aiostream-kafka probes", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if isinstance(self.address, str):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.address)

    def __enter__(self) -> ProbeServer:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


class _ThreadingHTTPServer6(ThreadingHTTPServer):
    address_family = socket.AF_INET6  # --health [::]:8081


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def _handler(source: ProbeSource) -> Callable[..., BaseHTTPRequestHandler]:
    class ProbeHandler(BaseHTTPRequestHandler):
        server_version = "aiostream-kafka"

        def do_GET(self) -> None:
            status, body, content_type = answer(source, self.path, self.headers.get("Accept"))
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """A probe every few seconds is no news: nothing is logged per request."""

        def address_string(self) -> str:  # a Unix socket's peer has no address
            return str(self.client_address[0]) if self.client_address else "unix"

    return ProbeHandler
