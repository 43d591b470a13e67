"""Why a message was not produced, in words naming the cluster, the topic and what to change.

aiokafka's errors name neither: a send to a topic that does not exist waits
``request_timeout_ms`` and raises a bare ``UnknownTopicOrPartitionError``, and a message over
a limit says only "MESSAGE_SIZE_TOO_LARGE" (from the broker) or names no topic (from the
client's own ``max_request_size`` check).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

from aiokafka.errors import (
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    RecordTooLargeError,
    UnknownTopicOrPartitionError,
)

from aiostream_kafka.config import Cluster
from aiostream_kafka.errors import AiostreamKafkaError, ClusterConnectionError, ProduceError
from aiostream_kafka.topic_names import TOPIC_NAME_RULE

#: aiokafka's default for the producer's ``max_request_size``.
DEFAULT_MAX_REQUEST_SIZE = 1048576
#: aiokafka's default for the producer's ``max_batch_size``.
DEFAULT_MAX_BATCH_SIZE = 16384

#: Failures of aiokafka (or of waiting on it) that become a ``ProduceError``.
KAFKA_FAILURES = (KafkaError, TimeoutError, asyncio.TimeoutError)

#: Always worth another try, whatever aiokafka's ``retriable`` says (its timeout says False).
_TRANSIENT = (KafkaConnectionError, KafkaTimeoutError, TimeoutError, asyncio.TimeoutError)
_TOO_LARGE = (MessageSizeTooLargeError, RecordTooLargeError)


def invalid_topic(cluster: Cluster, topic: object) -> ProduceError:
    """A topic name no broker accepts: refused before anything is sent."""
    return ProduceError(
        f"cannot produce to topic {topic!r} on {_where(cluster)}: {TOPIC_NAME_RULE}; nothing was sent",
        cluster=cluster.name,
        topic=str(topic),
    )


def produce_failure(
    cluster: Cluster,
    topic: str,
    error: BaseException,
    *,
    size: Callable[[], int] | None = None,
    max_request_size: int = DEFAULT_MAX_REQUEST_SIZE,
) -> BaseException:
    """The error to raise for ``error``, a failed send to ``topic``: caused by ``error``.

    aiokafka's failures become a ``ProduceError``; a ``ClusterConnectionError`` gains the
    topic; the rest (ours, which say what is wrong already, and programming errors) stay as
    they are. ``size`` gives the message's encoded size, asked only for a message too large.
    """
    if isinstance(error, ClusterConnectionError):
        return error if error.topic is not None else error.producing(topic)
    if isinstance(error, AiostreamKafkaError) or not isinstance(error, KAFKA_FAILURES):
        return error
    reason = _reason(cluster, error, size, max_request_size)
    failure = ProduceError(
        f"cannot produce to topic {topic!r} on {_where(cluster)}: {reason}",
        cluster=cluster.name,
        topic=topic,
        retriable=bool(getattr(error, "retriable", False)) or isinstance(error, _TRANSIENT),
    )
    failure.__cause__ = error
    return failure


#: What aiokafka's ``send`` and ``send_batch`` assert for a partition the topic does not have.
UNRECOGNIZED_PARTITION = "Unrecognized partition"


def no_such_partition(
    cluster: Cluster, topic: str, partition: int, error: BaseException, partitions: Iterable[int] | None
) -> BaseException:
    """aiokafka's bare ``AssertionError`` for an explicit ``partition=`` the topic lacks, as a
    ``ProduceError`` naming the topic, the partition and those it has; anything else as is."""
    if not (isinstance(error, AssertionError) and str(error) == UNRECOGNIZED_PARTITION):
        return error
    known = sorted(partitions or ())
    has = f" (it has {len(known)}: 0 to {known[-1]})" if known else ""
    failure = ProduceError(
        f"cannot produce to topic {topic!r} on {_where(cluster)}: it has no partition {partition}"
        f"{has}; leave partition= out, or add partitions to the topic; the message was not sent",
        cluster=cluster.name,
        topic=topic,
    )
    failure.__cause__ = error
    return failure


def _reason(
    cluster: Cluster, error: BaseException, size: Callable[[], int] | None, max_request_size: int
) -> str:
    cause = str(error) or type(error).__name__
    if isinstance(error, _TOO_LARGE):
        return _too_large(cluster, size() if size is not None else None, max_request_size, cause)
    if isinstance(error, UnknownTopicOrPartitionError):
        return (
            "the cluster has no such topic (or none of its partitions has a leader) and did not "
            "create it within the producer's request_timeout_ms; create it, or check that this "
            f"is its cluster [{cause}]"
        )
    return cause


def _too_large(cluster: Cluster, size: int | None, max_request_size: int, cause: str) -> str:
    if size is not None and size > max_request_size:
        return (
            f"the message is {size} bytes encoded, over the producer's max_request_size of "
            f"{max_request_size} bytes: raise max_request_size (max.request.size) in the settings "
            f"of cluster {cluster.name!r} (and the topic's max.message.bytes with it), or send less"
        )
    sized = f" ({size} bytes encoded)" if size is not None else ""
    return (
        f"the broker refused the batch holding the message{sized} as larger than the topic "
        "allows: raise the topic's max.message.bytes (its default is the broker's "
        f"message.max.bytes), or send less [{cause}]"
    )


def _where(cluster: Cluster) -> str:
    return f"cluster {cluster.name!r} ({cluster.servers})"
