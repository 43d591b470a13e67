"""Asking a probe server: the ``health`` command, and a ``--processes`` parent asking its workers."""

from __future__ import annotations

import http.client
import socket


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


def fetch(
    address: tuple[str, int] | str, path: str, *, timeout: float, accept: str | None = None
) -> tuple[int, bytes, str]:
    """GET ``path`` from ``(host, port)`` or a Unix socket's path: status, body, content type.
    Raises ``OSError`` (refused, timed out) when nothing answers."""
    connection = (
        _UnixConnection(address, timeout)
        if isinstance(address, str)
        else http.client.HTTPConnection(address[0], address[1], timeout=timeout)
    )
    try:
        connection.request("GET", path, headers={"Accept": accept} if accept else {})
        response = connection.getresponse()
        return response.status, response.read(), response.getheader("Content-Type", "")
    except http.client.HTTPException as error:
        raise OSError(f"not an HTTP answer: {error}") from error
    finally:
        connection.close()
