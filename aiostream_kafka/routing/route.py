"""A route: one topic and what handles it, as the user declared it (nothing resolved yet)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiostream_kafka import deprecation
from aiostream_kafka.codecs import Decoder
from aiostream_kafka.consumer import Consumer
from aiostream_kafka.contracts.checks import callable_name
from aiostream_kafka.messages import Message, Messages
from aiostream_kafka.processing.dead_letter import DeadLetterQueue
from aiostream_kafka.processing.flow import Pause, Throttle
from aiostream_kafka.processing.retry import Retry
from aiostream_kafka.processing.virtual_partitions import VirtualPartitions
from aiostream_kafka.topic_config import TopicConfig

Handler = Callable[[Messages[Any]], Awaitable[None]]
#: A route's ``filter=``: True hands the message on, False skips it (its offset is still
#: committed), a ``Pause`` holds the partition back from this message on.
Filter = Callable[[Message[Any]], "bool | Pause"]


INITIAL_OFFSETS = ("earliest", "latest")

#: What a consumer reads of transactional producers' records. Read committed is the default,
#: as in librdkafka and Karafka (the Java client and aiokafka default to read uncommitted):
#: a handler should never act on records their producer aborted. See docs/interop.md.
ISOLATION_LEVELS = ("read_committed", "read_uncommitted")
DEFAULT_ISOLATION_LEVEL = "read_committed"


@dataclass(frozen=True)
class Route:
    topic: str
    handler: Handler | None = None
    consumer: type[Consumer] | None = None
    cluster: str | None = None
    kafka: Mapping[str, Any] | None = None
    group_id: str | None = None
    subscription_group: str | None = None
    payload: Any = bytes
    format: str = "json"
    decoder: Decoder | None = None
    max_messages: int = 100
    max_wait: float = 0.5  # seconds a poll waits for messages when there are none
    #: Records one poll may hand over, across the group's partitions (Kafka's max.poll.records);
    #: None: max_messages x the app's concurrency, shared among the process's listeners.
    max_poll_records: int | None = None
    initial_offset: str | None = None  # the cluster's auto_offset_reset, else "earliest"
    isolation_level: str | None = None  # the cluster's isolation_level, else "read_committed"
    active: bool = True
    retry: Retry | None = None  # the app's retry_backoff when None
    dead_letter_queue: DeadLetterQueue | None = None
    manual_offset_management: bool = False
    processing_timeout: float | None = None  # seconds a batch's handler may take (None: no limit)
    #: Each batch's produces (on the route's own cluster), dead-letter writes and consumed
    #: offsets commit in one Kafka transaction, or none of them (docs/exactly-once.md).
    exactly_once: bool = False
    #: Each partition's batch split by key and handled concurrently (docs/processing-patterns.md).
    virtual_partitions: VirtualPartitions | None = None
    config: TopicConfig | None = None  # declare the topic (see TopicConfig)
    # What is held back from the handler (runtime/flow.py; docs/processing-patterns.md):
    filter: Filter | None = None  # skip messages, or pause the partition until a time
    throttle: Throttle | None = None  # at most N messages per interval (pausing, never sleeping)
    expire_after: float | None = None  # skip messages whose record timestamp is older (seconds)
    delay: float | None = None  # hand a message on only once its record timestamp is this old (seconds)

    @property
    def label(self) -> str:
        """How errors name this route."""
        return f"route for topic {self.topic!r}"

    @property
    def max_wait_ms(self) -> int:
        deprecation.warn("Route.max_wait_ms", "Route.max_wait (seconds)")
        return round(self.max_wait * 1000)

    @property
    def handler_name(self) -> str:
        """``module:qualname`` of the handler or consumer class, as errors, events and ``info`` show it."""
        return callable_name(self.consumer if self.consumer is not None else self.handler)
