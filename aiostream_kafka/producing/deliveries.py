"""What a producer's brokers answered for, counted a batch at a time (``records.sent``).

``produce_nowait`` hands back aiokafka's own future and nothing follows a message unless a
subscriber takes per-message events (a delivery callback per message is costly), so nothing
else counts what it sent. aiokafka groups every record, whatever call sent it, into one
batch per partition before a request goes out: one callback on each batch's future counts
them all, for the cost of a callback a batch. It is added only while ``records.sent`` has a
subscriber (the ``/metrics`` tallies), so otherwise a batch costs one lookup.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.structs import TopicPartition

from aiostream_kafka.instrumentation.monitor import Monitor

SENT = "records.sent"

#: Told of records once the broker answered: their partition, how many, the error (or None).
Answered = Callable[[TopicPartition, int, "BaseException | None"], None]


def report_sent(kafka: Any, cluster: str, monitor: Monitor) -> bool:
    """Have ``kafka`` (an ``AIOKafkaProducer``, or a client with ``report_sent_to``, as the
    testing harness's) report ``records.sent`` for what it sent; False if it cannot."""

    def answered(tp: TopicPartition, count: int, error: BaseException | None) -> None:
        monitor.emit(SENT, cluster=cluster, topic=tp.topic, partition=tp.partition, count=count, error=error)

    if type(kafka) is not AIOKafkaProducer:
        report_sent_to = getattr(kafka, "report_sent_to", None)
        if report_sent_to is None:
            return False
        report_sent_to(lambda tp, count, error: answered(tp, count, error) if SENT in monitor.heard else None)
        return True
    try:
        accumulator = kafka._message_accumulator
        append = accumulator._append_batch
    except AttributeError:  # an aiokafka whose insides differ
        return False

    def on_answer(batch: Any, future: asyncio.Future[Any]) -> None:
        if not future.cancelled():
            answered(batch.tp, batch.record_count, future.exception())

    def appended(builder: Any, tp: TopicPartition) -> Any:
        batch = append(builder, tp)
        if SENT in monitor.heard:
            batch.future.add_done_callback(lambda future: on_answer(batch, future))
        return batch

    accumulator._append_batch = appended
    return True
