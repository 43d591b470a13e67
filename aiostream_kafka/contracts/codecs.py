"""The contract of payload formats and decoders, wherever they are given (a route, the app's
producers)."""

from __future__ import annotations

from aiostream_kafka.errors import ConfigError

#: What payloads can be encoded as and decoded from (``codecs`` implements each).
FORMATS = ("json", "msgpack")


def check_format(format: object, what: str) -> None:
    """``what`` names the setting in the error (``route for topic 'orders': format``)."""
    if format not in FORMATS:
        raise ConfigError(f"{what} must be one of {', '.join(FORMATS)}, not {format!r}")


def check_decoder(decoder: object, where: str) -> None:
    if decoder is not None and not callable(decoder):
        raise ConfigError(f"{where}: decoder must be callable (bytes -> payload)")
