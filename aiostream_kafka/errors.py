"""The framework's exception types.

Every error a user can cause names the thing to fix: the route, the cluster, the key.
"""

from __future__ import annotations

from collections.abc import Iterable


class AiostreamKafkaError(Exception):
    """Base class of every error raised by aiostream-kafka."""


class ConfigError(AiostreamKafkaError, ValueError):
    """Settings or routes that cannot work; raised before any connection is made."""


class UnknownClusterError(ConfigError, KeyError):
    """A cluster name that is not configured."""

    @classmethod
    def named(cls, name: str, known: Iterable[str], where: str = "") -> UnknownClusterError:
        """The error for ``name``, listing the clusters the app does have."""
        prefix = f"{where}: " if where else ""
        return cls(f"{prefix}no cluster named {name!r}; the app has: {', '.join(known)}")

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


class ClusterConnectionError(AiostreamKafkaError, ConnectionError):
    """A cluster we could not connect to: the message names it, its servers and the likely
    reason (nothing listening, an untrusted certificate, a refused login), never a secret."""

    #: False when nothing even accepted a TCP connection (the cluster is down or elsewhere).
    listening: bool = True


class NotRunningError(AiostreamKafkaError, RuntimeError):
    """Something that needs a started app was used before start or after stop."""


class DecodeError(AiostreamKafkaError, ValueError):
    """A message payload that does not decode into the route's payload type."""

    def __init__(self, message: str, *, topic: str, partition: int, offset: int) -> None:
        super().__init__(f"{message} (topic {topic!r}, partition {partition}, offset {offset})")
        self.topic = topic
        self.partition = partition
        self.offset = offset


class EncodeError(AiostreamKafkaError, TypeError):
    """A value the producer cannot serialise."""


def check_exception_types(value: object, where: str) -> None:
    """Refuse anything but a tuple of exception classes (what ``except`` and isinstance take)."""
    if not isinstance(value, tuple) or not all(
        isinstance(item, type) and issubclass(item, Exception) for item in value
    ):
        raise ConfigError(f"{where}: a tuple of exception classes, e.g. (TimeoutError,)")


class ShutdownError(AiostreamKafkaError, RuntimeError):
    """The app did not stop gracefully; the message names the batches it left behind.

    ``gave_up``: handlers ignored cancellation past ``shutdown_timeout``, so the app gave up
    waiting for them and they may still be running: only ending the process ends them.
    Otherwise the stop was cut short (a second signal) and everything did end.
    """

    def __init__(self, message: str, *, gave_up: bool, handlers: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.gave_up = gave_up
        self.handlers = tuple(handlers)
