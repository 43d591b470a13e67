"""The probes as a plain ASGI app (``app.health.asgi()``), for an app served inside a web server
(``FastAPI(lifespan=app.lifespan)``): ``api.mount("/health", app.health.asgi())`` answers
``/health/livez``, ``/health/readyz`` and ``/health/metrics`` on the server's own port.

It answers from the server's event loop, the app's: a loop that is stuck does not answer at
all, which an HTTP probe counts as a failure (``run --health`` answers from a thread instead,
and says who holds the loop).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from aiostream_kafka.probes.server import ProbeSource, answer

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def probes_asgi(source: ProbeSource) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":  # served on its own: nothing to set up
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]
        }
        if scope["method"] not in ("GET", "HEAD"):
            status, body, content_type = 405, b"only GET\n", "text/plain"
        else:
            status, body, content_type = answer(source, _route_path(scope), headers.get("accept"))
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", content_type.encode()),
                    (b"content-length", str(len(body)).encode()),
                    (b"cache-control", b"no-store"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})

    return asgi


def _route_path(scope: Scope) -> str:
    """The path below where it is mounted (Starlette keeps the full path, and the mount's in
    ``root_path``)."""
    path, root = str(scope["path"]), str(scope.get("root_path", ""))
    return path[len(root) :] if root and path.startswith(root) else path
