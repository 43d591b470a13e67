"""Keeping the app's secrets out of logs written by aiokafka.

At DEBUG, aiokafka logs every request it sends, and a SASL PLAIN login carries the password
in clear inside one of them. While an app runs, a filter on those loggers replaces any of
its secrets (SASL passwords, TLS key passwords) with ``***``. Logger filters run only for
records that pass the level check, so with DEBUG off this costs nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

#: Loggers that may write a secret: aiokafka's connection (requests), and ours.
LOGGERS = ("aiokafka.conn", "aiokafka", "aiostream_kafka")
MASK = "***"


class RedactSecrets(logging.Filter):
    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(secret in message for secret in self._secrets):
            record.msg, record.args = mask(message, self._secrets), None
        return True


def mask(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every one of ``secrets`` replaced by ``***`` (longest first)."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def redact_secrets(secrets: Iterable[str]) -> Callable[[], None]:
    """Mask ``secrets`` in what those loggers write; returns how to stop."""
    redaction = RedactSecrets(secrets)
    loggers = [logging.getLogger(name) for name in LOGGERS]
    for logger in loggers:
        logger.addFilter(redaction)

    def remove() -> None:
        for logger in loggers:
            logger.removeFilter(redaction)

    return remove
