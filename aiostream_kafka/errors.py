"""The framework's exception types.

Every error a user can cause names the thing to fix: the route, the cluster, the key.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from aiokafka.errors import KafkaError

from aiostream_kafka.contracts.checks import did_you_mean


class AiostreamKafkaError(Exception):
    """Base class of every error raised by aiostream-kafka."""


class ConfigError(AiostreamKafkaError, ValueError):
    """Settings or routes that cannot work; raised before any connection is made."""


class UnknownClusterError(ConfigError, KeyError):
    """A cluster name that is not configured."""

    @classmethod
    def named(cls, name: object, known: Iterable[str], where: str = "") -> UnknownClusterError:
        """The error for ``name``, listing the clusters the app does have, and the closest one."""
        prefix = f"{where}: " if where else ""
        names = list(known)
        listed = ", ".join(names)
        return cls(f"{prefix}no cluster named {name!r}; the app has: {listed}{did_you_mean(name, names)}")

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


class ClusterConnectionError(AiostreamKafkaError, ConnectionError):
    """A cluster we could not connect to: the message names it, its servers and the likely
    reason (nothing listening, an untrusted certificate, a refused login), never a secret."""

    #: False when nothing even accepted a TCP connection (the cluster is down or elsewhere).
    listening: bool = True
    #: The topic a producer was about to send to, when the connection failed for a send.
    topic: str | None = None

    def producing(self, topic: str) -> ClusterConnectionError:
        """This error, saying it stopped a send to ``topic``; caused by this one."""
        error = type(self)(f"{self}; while producing to topic {topic!r}")
        error.listening, error.topic = self.listening, topic
        error.__cause__ = self
        return error


class ClusterUnreachableError(ClusterConnectionError):
    """A cluster that is away: nothing listens at its address, its name does not resolve, or it
    did not answer in time. The message names it, its servers and which of these it was."""


class ProduceError(AiostreamKafkaError, KafkaError):  # type: ignore[misc]  # aiokafka is untyped
    """A message that was not produced, naming the cluster, the topic and why.

    ``__cause__`` is aiokafka's error when there was one (kept, for code that looks for a
    retriable error down the chain), and ``retriable`` is copied from it (True for
    timeouts and lost connections too). A ``KafkaError`` as well, so ``except KafkaError``
    written against aiokafka keeps catching it.
    """

    def __init__(self, message: str, *, cluster: str, topic: str, retriable: bool = False) -> None:
        super().__init__(message)
        self.cluster = cluster
        self.topic = topic
        self.retriable = retriable

    def __str__(self) -> str:  # KafkaError would put the class name first
        return str(self.args[0])

    def __reduce__(self) -> tuple[Any, ...]:  # pickle (to another process) with the keywords
        rebuild = functools.partial(
            type(self), cluster=self.cluster, topic=self.topic, retriable=self.retriable
        )
        return rebuild, self.args


class NotRunningError(AiostreamKafkaError, RuntimeError):
    """Something that needs a started app was used before start or after stop."""


class HandlerCancelledError(AiostreamKafkaError, RuntimeError):
    """A handler raised ``CancelledError`` though nothing cancelled it (a cancelled future it
    awaited, say): a failure of that batch like any other, never a reason to stop consuming."""


class VirtualPartitionKeyError(AiostreamKafkaError):
    """A route's ``VirtualPartitions(key=...)`` raised on a message. That message fails as if
    its handler had (the route's retry, then its dead-letter queue); the error names the
    route, the key function and the message, and is caused by what the function raised."""


class ProcessingTimeoutError(AiostreamKafkaError, TimeoutError):
    """A batch's handler ran past its route's ``processing_timeout`` and was cancelled: a
    failure of that batch, retried or dead-lettered by the route's policy."""


class DecodeError(AiostreamKafkaError, ValueError):
    """A message payload that does not decode into the route's payload type."""

    def __init__(self, message: str, *, topic: str, partition: int, offset: int) -> None:
        super().__init__(f"{message} (topic {topic!r}, partition {partition}, offset {offset})")
        self.topic = topic
        self.partition = partition
        self.offset = offset


class FilterError(AiostreamKafkaError):
    """A route's filter raised, or returned something other than True, False or a ``Pause``:
    a failure of that message, retried and dead-lettered as a handler's would be."""

    def __init__(self, message: str, *, topic: str, partition: int, offset: int) -> None:
        super().__init__(f"{message} (topic {topic!r}, partition {partition}, offset {offset})")
        self.topic = topic
        self.partition = partition
        self.offset = offset


class EncodeError(AiostreamKafkaError, TypeError):
    """A value the producer cannot serialise."""


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


class TransactionError(AiostreamKafkaError, RuntimeError):
    """A Kafka transaction that did not commit, naming the cluster and the transactional id.

    ``fenced``: another producer with the same transactional id took over (a newer process
    for the same partition): this one must stop producing for it, and never retries.
    ``__cause__`` is aiokafka's error.
    """

    def __init__(self, message: str, *, cluster: str, transactional_id: str, fenced: bool = False) -> None:
        super().__init__(message)
        self.cluster = cluster
        self.transactional_id = transactional_id
        self.fenced = fenced


class CrossClusterTransactionError(ConfigError):
    """A produce to one cluster inside a transaction of another: a Kafka transaction lives on
    one cluster, so it cannot cover both. The message names both clusters and what to do."""

    def __init__(self, message: str, *, transaction_cluster: str, produce_cluster: str) -> None:
        super().__init__(message)
        self.transaction_cluster = transaction_cluster
        self.produce_cluster = produce_cluster
