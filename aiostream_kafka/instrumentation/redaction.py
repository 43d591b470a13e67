"""Keeping the app's secrets out of every log line, tracebacks included.

At DEBUG, aiokafka logs every request it sends, and a SASL PLAIN login carries the password
in clear inside one of them; an exception's text can hold a secret too, and its traceback
repeats it. Secrets are known as soon as settings are parsed (``KafkaSettings.parse``) or
the Web UI gets its token, long before an app starts, and ``aiostream-kafka`` may run no
app at all (``check``, ``topics``, ``web``). So masking is done where every record is made,
by a log record factory: whichever logger writes it, and however logging is configured
(uvicorn's own handlers, the user's ``basicConfig``), the message, its arguments and the
formatted traceback reach handlers with each known secret replaced by ``***``.

A secret stays known while what holds it lives (the settings, the token guard): a
process that declares many apps, a test suite say, does not mask one app's password in
another's logs forever. Records are made only for enabled levels, and with no secret known
the factory does one truth test per record.
"""

from __future__ import annotations

import itertools
import logging
import threading
import weakref
from collections.abc import Callable, Iterable
from typing import Any

MASK = "***"
_FORMATTER = logging.Formatter()


def mask(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every one of ``secrets`` replaced by ``***`` (longest first)."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


class KnownSecrets:
    """The secrets of everything alive that declared some, longest first.

    An owner's death only queues its entry (finalizers run inside garbage collection, at
    any allocation, even while this registry is busy); the next read drops it.
    """

    def __init__(self) -> None:
        self._entries: dict[int, frozenset[str]] = {}
        self._dead: list[int] = []
        self._keys = itertools.count()
        self._lock = threading.Lock()
        self._values: tuple[str, ...] = ()

    def remember(self, owner: object, secrets: Iterable[str]) -> None:
        """Mask ``secrets`` in every log record for as long as ``owner`` lives."""
        found = frozenset(s for s in secrets if s)
        if not found:
            return
        key = next(self._keys)
        with self._lock:
            self._entries[key] = found
            self._refresh()
        weakref.finalize(owner, self._dead.append, key)
        install()

    @property
    def values(self) -> tuple[str, ...]:
        if self._dead:
            with self._lock:
                while self._dead:
                    self._entries.pop(self._dead.pop(), None)
                self._refresh()
        return self._values

    def _refresh(self) -> None:
        union = set().union(*self._entries.values())
        self._values = tuple(sorted(union, key=len, reverse=True))

    def mask_record(self, record: logging.LogRecord) -> None:
        """Mask ``record`` in place: its message, arguments, traceback and stack."""
        secrets = self.values
        if isinstance(record.args, tuple):  # arguments one by one, so formatters that read
            record.args = tuple(mask(a, secrets) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):  # them (uvicorn's access log) still find them
            record.msg = mask(record.msg, secrets)
        if record.exc_info and not record.exc_text:
            record.exc_text = _FORMATTER.formatException(record.exc_info)  # what formatters reuse
        if record.exc_text:
            record.exc_text = mask(record.exc_text, secrets)
        if record.stack_info:
            record.stack_info = mask(record.stack_info, secrets)
        message = record.getMessage()
        if any(secret in message for secret in secrets):  # inside a non-str argument (bytes, objects)
            record.msg, record.args = mask(message, secrets), None


#: The process's one registry: ``KafkaSettings.parse`` and the Web UI's token guard fill it.
SECRETS = KnownSecrets()


def remember(owner: object, secrets: Iterable[str]) -> None:
    """Mask ``secrets`` in every log record from now on, for as long as ``owner`` lives."""
    SECRETS.remember(owner, secrets)


def masked(text: str) -> str:
    """``text`` with every secret known now masked (for what leaves the process but not as
    a log record, such as the CLI's traceback of an uncaught error)."""
    return mask(text, SECRETS.values)


def install() -> None:
    """Make every log record pass through the masking (once; keeps any factory set before)."""
    current = logging.getLogRecordFactory()
    if not getattr(current, "masks_secrets", False):
        logging.setLogRecordFactory(_masking(current))


def _masking(make: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        if SECRETS.values:
            SECRETS.mask_record(record)
        return record

    factory.masks_secrets = True  # type: ignore[attr-defined]
    return factory
