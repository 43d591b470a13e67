"""A msgspec Struct as a FastAPI request body, refused as FastAPI refuses a bad body (422).

FastAPI validates bodies through pydantic, so a msgspec ``Struct`` (the payload type of the
routes and producers) is no body type to it: a service that produces what it receives
would decode by hand. ``struct_body(Order)`` is a dependency that does it::

    from typing import Annotated

    from fastapi import Depends

    from aiostream_kafka.fastapi import struct_body

    @api.post("/orders", status_code=202)
    async def create(order: Annotated[Order, Depends(struct_body(Order))]) -> dict[str, int]:
        delivered = await kafka.producer.produce("orders", order, key=str(order.id))
        ...

A body that is not JSON, or not an ``Order``, is answered with FastAPI's own 422: a
``detail`` list whose ``loc`` is ``["body", <the field's path>]`` and whose ``msg`` is
msgspec's. Only this module imports FastAPI (``pip install fastapi``).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import msgspec

try:
    from fastapi import Request
    from fastapi.exceptions import RequestValidationError
except ImportError as missing:  # pragma: no cover - depends on what is installed
    raise ImportError("aiostream_kafka.fastapi needs FastAPI: pip install fastapi") from missing

T = TypeVar("T")

#: Where msgspec says a value is wrong: "... - at `$.items[0].id`".
_AT = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_STEP = re.compile(r"\.(?P<key>[^.\[]+)|\[(?P<index>\d+)\]")


def struct_body(kind: type[T]) -> Callable[[Request], Awaitable[T]]:
    """A dependency that decodes the request's JSON body into ``kind`` (a Struct, or any type
    msgspec decodes), refusing a bad one with a 422 that names the field."""
    decoder = msgspec.json.Decoder(kind)

    async def body(request: Request) -> T:
        raw = await request.body()
        try:
            return decoder.decode(raw)
        except msgspec.ValidationError as error:
            raise RequestValidationError([_problem("value_error", error, raw)]) from None
        except msgspec.DecodeError as error:
            raise RequestValidationError([_problem("json_invalid", error, raw)]) from None

    body.__name__ = f"{getattr(kind, '__name__', 'body')}_body"
    return body


def _problem(kind: str, error: msgspec.DecodeError, raw: bytes) -> dict[str, Any]:
    """One entry of FastAPI's 422 ``detail``: what is wrong, and where in the body."""
    text = str(error)
    found = _AT.search(text)
    location: list[str | int] = ["body"]
    if found is not None:
        text = text[: found.start()]
        for step in _STEP.finditer(found["path"]):
            location.append(step["key"] if step["key"] is not None else int(step["index"]))
    return {"type": kind, "loc": location, "msg": text, "input": raw.decode(errors="replace")}
