"""A route: one topic and what handles it, as the user declared it (nothing resolved yet)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiostream_kafka.codecs import Decoder
from aiostream_kafka.consumer import Consumer
from aiostream_kafka.messages import Messages
from aiostream_kafka.processing.dead_letter import DeadLetterQueue
from aiostream_kafka.processing.retry import Retry

Handler = Callable[[Messages[Any]], Awaitable[None]]

INITIAL_OFFSETS = ("earliest", "latest")


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
    max_wait_ms: int = 500
    initial_offset: str | None = None  # the cluster's auto_offset_reset, else "earliest"
    active: bool = True
    retry: Retry | None = None  # the app's retry_backoff when None
    dead_letter_queue: DeadLetterQueue | None = None
    manual_offset_management: bool = False

    @property
    def label(self) -> str:
        """How errors name this route."""
        return f"route for topic {self.topic!r}"

    @property
    def handler_name(self) -> str:
        target: Any = self.consumer if self.consumer is not None else self.handler
        return f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', repr(target))}"
