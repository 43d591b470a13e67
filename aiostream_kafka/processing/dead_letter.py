"""Dead-letter queues: where a message goes once its handler has failed on it often enough."""

from __future__ import annotations

from dataclasses import dataclass

from aiostream_kafka.contracts.failures import check_dead_letter_queue
from aiostream_kafka.errors import DecodeError
from aiostream_kafka.messages import Message
from aiostream_kafka.topic_config import TopicConfig


@dataclass(frozen=True)
class DeadLetterQueue:
    """``DeadLetterQueue("orders.dlq", max_retries=3)``: after 1 + ``max_retries`` failed attempts
    the first unprocessed message goes to ``topic``, its offset is marked and processing moves on.

    - ``cluster``: where the DLQ topic lives; by default the source topic's own cluster
      (Karafka sends it to the primary, which surprises multi-cluster users).
    - ``topic=None``: skip the message without dispatching it anywhere.
    - ``independent``: the attempt counter starts over whenever the handler marked progress
      since the last failure, so each message gets its own ``max_retries``.
    - ``retry_decode_errors``: a payload that cannot be decoded will not decode next time
      either, so by default it goes to the DLQ at once; set True to retry it like any error.
    - ``dispatch_on``: exception types that will not go away by trying again (a failed
      validation, say): the message goes to the DLQ at the first one, with no retries.
    - ``config``: how the DLQ topic should look (``TopicConfig(partitions=3, settings={...})``);
      it is then declared on the DLQ's cluster, for ``topics plan/migrate`` and ``check``,
      like a route's own ``config=``.

    Faults of the infrastructure (an unreachable cluster, a timeout; see ``Retry.transient``)
    never count toward ``max_retries``: the partition waits until they pass.
    """

    topic: str | None
    max_retries: int = 3
    cluster: str | None = None
    independent: bool = False
    retry_decode_errors: bool = False
    dispatch_on: tuple[type[Exception], ...] = ()
    config: TopicConfig | None = None

    def __post_init__(self) -> None:
        check_dead_letter_queue(self)


def dead_letter_headers(
    message: Message[object], *, error: BaseException, attempts: int, group_id: str
) -> list[tuple[str, bytes | None]]:
    """The original headers, then where the message came from and why it failed."""
    ours: list[tuple[str, bytes | None]] = [
        ("source_topic", message.topic.encode()),
        ("source_partition", str(message.partition).encode()),
        ("source_offset", str(message.offset).encode()),
        ("source_cluster", message.cluster.encode()),
        ("source_consumer_group", group_id.encode()),
        ("source_key", message.key),
        ("error_type", f"{type(error).__module__}.{type(error).__qualname__}".encode()),
        ("error_message", _clipped(str(error), 4096)),
        ("attempts", str(attempts).encode()),
        ("decode_error", b"true" if isinstance(error, DecodeError) else b"false"),
    ]
    return [*message.raw_headers, *ours]


def _clipped(text: str, limit: int) -> bytes:
    """At most ``limit`` bytes of UTF-8, never cutting a character in half."""
    return text.encode(errors="replace")[:limit].decode(errors="ignore").encode()
