"""Who may look: anyone on this machine by default, a token holder otherwise.

The UI is read-only, but what it shows (payloads, errors, topology) is not public. It binds
to loopback by default; bound to any other address it refuses to start without a token,
and then every request must carry it (``Authorization: Bearer``, or ``?token=`` once, which
sets a cookie for the browser). Missing or wrong: 401. The token is a secret like a
password: masked in every log line (uvicorn's access log shows ``?token=***``).

Without a token, loopback is the only protection, and a web page elsewhere can get past it
by DNS rebinding (its own name resolving to 127.0.0.1): the browser then sends that name as
``Host``. ``HostGuard`` answers only requests addressed to the loopback address and port
the UI is bound to.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Collection
from urllib.parse import parse_qsl, quote, urlencode

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aiostream_kafka.instrumentation.redaction import remember

COOKIE = "aiostream_kafka_token"
TOKEN_ENV = "AIOSTREAM_KAFKA_WEB_TOKEN"


class BindError(ValueError):
    """Serving beyond loopback without a token."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def check_bind(host: str, token: str | None) -> None:
    if not is_loopback(host) and not token:
        raise BindError(
            f"serving the Web UI on {host} makes it reachable from other machines: give a token "
            f"(--token or {TOKEN_ENV}), or bind to 127.0.0.1"
        )


class TokenGuard:
    """ASGI middleware: every HTTP request carries the token, or gets 401."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._token = token.encode()
        remember(self, [token])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        given = query.get("token")
        if given is not None:
            if not self._matches(given):
                await _refuse(send)
                return
            # Take the token out of the address (history, referrers), keep it in a cookie.
            rest = urlencode([(k, v) for k, v in query.items() if k != "token"])
            location = same_origin(_full_path(scope)) + (f"?{rest}" if rest else "")
            await _redirect(send, location, self._token.decode())
            return
        bearer = headers.get("authorization", "")
        cookie = _cookie(headers.get("cookie", ""), COOKIE)
        if (bearer.startswith("Bearer ") and self._matches(bearer[7:])) or (cookie and self._matches(cookie)):
            await self.app(scope, receive, send)
            return
        await _refuse(send)

    def _matches(self, given: str) -> bool:
        return hmac.compare_digest(given.encode(), self._token)


def same_origin(path: str) -> str:
    """``path`` as a redirect that stays on this server: percent-encoded (no tab or backslash
    a browser would drop or read as ``/``) and with one leading slash, never ``//host``."""
    return "/" + quote(path).lstrip("/")


def _full_path(scope: Scope) -> str:
    """The address the browser asked for: Starlette's Mount (and ASGI servers since) keep the
    mount prefix (``root_path``) in ``path``; older ones gave only what follows it."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path if not root or path == root or path.startswith(root + "/") else root + path


def loopback_hosts(host: str, port: int) -> frozenset[str]:
    """The ``Host`` values a UI bound to loopback ``host``:``port`` answers: that address and
    the loopback names, with the port (and without it on port 80, as browsers send it)."""
    bound = f"[{host.strip('[]')}]" if ":" in host else host
    names = {bound.lower(), "127.0.0.1", "localhost", "[::1]"}
    return frozenset({f"{name}:{port}" for name in names} | (names if port == 80 else set()))


class HostGuard:
    """ASGI middleware: a request for any other ``Host`` than ``hosts`` gets 421."""

    def __init__(self, app: ASGIApp, hosts: Collection[str]) -> None:
        self.app = app
        self._hosts = frozenset(hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = dict(scope["headers"]).get(b"host", b"").decode("latin-1").lower()
        if host in self._hosts:
            await self.app(scope, receive, send)
            return
        allowed = ", ".join(sorted(self._hosts))
        body = (
            f"421: this Web UI answers only requests for {allowed}, not Host {host!r}; to serve "
            f"it under another name, give it a token (--token or {TOKEN_ENV})\n"
        )
        await _plain(send, 421, body.encode(), [])


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


async def _refuse(send: Send) -> None:
    body = b"401: this Web UI needs its token (Authorization: Bearer <token>, or ?token=<token>)\n"
    await _plain(send, 401, body, [(b"www-authenticate", b"Bearer")])


async def _plain(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    content = [(b"content-type", b"text/plain; charset=utf-8"), *headers]
    await send({"type": "http.response.start", "status": status, "headers": content})
    await send({"type": "http.response.body", "body": body})


async def _redirect(send: Send, location: str, token: str) -> None:
    headers = MutableHeaders()
    headers["location"] = location or "/"
    headers["set-cookie"] = f"{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/"
    start: Message = {"type": "http.response.start", "status": 303, "headers": headers.raw}
    await send(start)
    await send({"type": "http.response.body", "body": b""})
