"""Who may look: anyone on this machine by default, a token holder otherwise.

The UI is read-only, but what it shows (payloads, errors, topology) is not public. It binds
to loopback by default; bound to any other address it refuses to start without a token,
and then every request must carry it (``Authorization: Bearer``, or ``?token=`` once, which
sets a cookie for the browser). Missing or wrong: 401.
"""

from __future__ import annotations

import hmac
import ipaddress
from urllib.parse import parse_qsl, urlencode

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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
            location = scope.get("root_path", "") + scope["path"] + (f"?{rest}" if rest else "")
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


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


async def _refuse(send: Send) -> None:
    body = b"401: this Web UI needs its token (Authorization: Bearer <token>, or ?token=<token>)\n"
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"www-authenticate", b"Bearer")],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _redirect(send: Send, location: str, token: str) -> None:
    headers = MutableHeaders()
    headers["location"] = location or "/"
    headers["set-cookie"] = f"{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/"
    start: Message = {"type": "http.response.start", "status": 303, "headers": headers.raw}
    await send(start)
    await send({"type": "http.response.body", "body": b""})
