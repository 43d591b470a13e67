"""Payload encoding and decoding with msgspec, built once per route or producer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import msgspec

from aiostream_kafka.contracts.codecs import check_decoder, check_format
from aiostream_kafka.errors import ConfigError, EncodeError

Format = Literal["json", "msgpack"]
Decoder = Callable[[bytes], Any]


def build_decoder(payload: Any, format: str, decoder: Decoder | None, *, where: str) -> Decoder | None:
    """The function that turns a message value into its payload; None keeps raw bytes. A payload
    type msgspec cannot decode into is found only by building its decoder: refused here."""
    check_format(format, f"{where}: format")
    check_decoder(decoder, where)
    if decoder is not None:
        return decoder
    if payload is bytes:
        return None
    try:
        if format == "msgpack":
            return msgspec.msgpack.Decoder(payload).decode
        return msgspec.json.Decoder(payload).decode
    except TypeError as error:
        raise ConfigError(f"{where}: msgspec cannot decode into payload={payload!r}: {error}") from None


class Encoder:
    """Turns what a user produces into bytes: bytes as they are, str as UTF-8, the rest msgspec."""

    def __init__(self, format: str = "json") -> None:
        check_format(format, "producer format")
        self.format = format
        self._encode = msgspec.msgpack.encode if format == "msgpack" else msgspec.json.encode

    def value(self, value: Any) -> bytes | None:
        if value is None or isinstance(value, bytes):
            return value
        if isinstance(value, str):
            return value.encode()
        try:
            return self._encode(value)
        except TypeError as error:
            raise EncodeError(f"cannot encode {type(value).__name__} as {self.format}: {error}") from None

    @staticmethod
    def key(key: Any) -> bytes | None:
        if key is None or isinstance(key, bytes):
            return key
        if isinstance(key, str):
            return key.encode()
        if isinstance(key, int):
            return str(key).encode()
        raise EncodeError(f"a message key must be bytes, str or int, not {type(key).__name__}")

    @staticmethod
    def headers(headers: Any) -> list[tuple[str, bytes | None]] | None:
        if not headers:
            return None
        items = headers.items() if hasattr(headers, "items") else headers
        encoded = []
        for name, value in items:
            if not isinstance(name, str):
                raise EncodeError(f"header names must be str, not {type(name).__name__}")
            if isinstance(value, str):
                value = value.encode()
            elif value is not None and not isinstance(value, bytes):
                raise EncodeError(f"header {name!r} must be str, bytes or None, not {type(value).__name__}")
            encoded.append((name, value))
        return encoded
