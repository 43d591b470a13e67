"""The base class for class-based handlers, as in Karafka."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiostream_kafka.messages import Messages

if TYPE_CHECKING:
    from aiostream_kafka.app import App
    from aiostream_kafka.producing.producer import Producer
    from aiostream_kafka.producing.registry import ProducerRegistry


class Consumer:
    """Subclass and implement ``consume``; the other hooks are optional.

    One instance serves one topic for the life of its listener, across all the
    partitions assigned to it; ``consume`` may run concurrently for different
    partitions (never for the same one), so keep per-partition state keyed by
    ``messages.partition``.
    """

    app: App
    topic: str
    cluster: str

    def bind(self, app: App, topic: str, cluster: str) -> None:
        self.app = app
        self.topic = topic
        self.cluster = cluster

    @property
    def producer(self) -> Producer:
        """The app's primary producer."""
        return self.app.producer

    @property
    def producers(self) -> ProducerRegistry:
        """Every cluster's producer, by cluster name."""
        return self.app.producers

    async def on_start(self) -> None:
        """Called once before the first batch (when the listener has started)."""

    async def consume(self, messages: Messages[Any]) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement async def consume(self, messages)")

    async def revoked(self, partitions: list[int]) -> None:
        """Called when these partitions of ``self.topic`` are taken away, after their work is committed."""

    async def shutdown(self) -> None:
        """Called once when the listener stops."""
