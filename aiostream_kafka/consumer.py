"""The base class for class-based handlers, as in Karafka."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from aiostream_kafka.messages import AfterBatch, Message, Messages, SeekTarget, check_seek_target, pause_ms

if TYPE_CHECKING:
    from aiostream_kafka.producing.producer import Producer
    from aiostream_kafka.producing.registry import ProducerRegistry


class PartitionControl(Protocol):
    """What a Listener lets a Consumer do to the partitions it serves."""

    def current(self, topic: str, partition: int) -> Messages[Any] | None: ...

    def request(self, topic: str, partition: int, action: AfterBatch) -> None: ...

    def is_revoked(self, topic: str, partition: int) -> bool: ...


class Consumer:
    """Subclass and implement ``consume``; the other hooks are optional.

    One instance serves one topic for the life of its listener, across all the
    partitions assigned to it; ``consume`` may run concurrently for different
    partitions (never for the same one, unless the route has virtual partitions), so keep
    per-partition state keyed by ``messages.partition``.
    """

    topic: str
    cluster: str

    _producers: ProducerRegistry
    _control: PartitionControl | None = None

    def bind(
        self, producers: ProducerRegistry, topic: str, cluster: str, control: PartitionControl | None = None
    ) -> None:
        """Called by the listener that runs this consumer, before ``on_start``."""
        self._producers = producers
        self.topic = topic
        self.cluster = cluster
        self._control = control

    def _controlled(self) -> PartitionControl:
        if self._control is None:
            raise RuntimeError(f"{type(self).__name__} is not running under a listener")
        return self._control

    def mark_as_consumed(self, message: Message[Any]) -> None:
        """Mark ``message`` (and its predecessors) done on the batch in hand for its partition."""
        batch = self._controlled().current(message.topic, message.partition)
        if batch is None:
            raise ValueError(
                f"no batch of {message.topic}[{message.partition}] is being consumed to mark {message!r}"
            )
        batch.mark_as_consumed(message)

    def pause(self, partition: int, for_ms: int | None = None, *, duration: float | None = None) -> None:
        """Pause one of this topic's partitions (after its batch in hand, if any) for ``duration``
        seconds, or until ``resume`` (``for_ms``: the old way to say how long, in milliseconds)."""
        pause = ("pause", pause_ms(for_ms, duration))  # refused before asking the listener
        self._controlled().request(self.topic, partition, pause)

    def resume(self, partition: int) -> None:
        self._controlled().request(self.topic, partition, ("resume", None))

    def seek(self, partition: int, target: SeekTarget) -> None:
        """Continue ``partition`` from an offset, ``"earliest"``, ``"latest"`` or a datetime."""
        check_seek_target(target)
        self._controlled().request(self.topic, partition, ("seek", target))

    def is_revoked(self, partition: int) -> bool:
        """True once a rebalance is taking ``partition`` away (the ``revoked`` hook follows)."""
        return self._controlled().is_revoked(self.topic, partition)

    @property
    def producer(self) -> Producer:
        """The app's primary producer."""
        return self._producers.primary

    @property
    def producers(self) -> ProducerRegistry:
        """Every cluster's producer, by cluster name."""
        return self._producers

    async def on_start(self) -> None:
        """Called once before the first batch (when the listener has started)."""

    async def consume(self, messages: Messages[Any]) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement async def consume(self, messages)")

    async def revoked(self, partitions: list[int]) -> None:
        """Called when these partitions of ``self.topic`` are taken away, after their work is committed."""

    async def shutdown(self) -> None:
        """Called once when the listener stops."""
