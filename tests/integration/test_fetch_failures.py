"""A partition the consumer cannot read is that partition's problem, never its group's.

The cause here is the commonest in practice: an lz4 batch (Java and librdkafka producers
compress so) read by a process without the codec, which we bring about by hiding cramjam
from aiokafka, then giving it back: the fix a user would deploy.
"""

from __future__ import annotations

import uuid

import aiokafka.codec
import pytest
from aiokafka import AIOKafkaProducer

from aiostream_kafka import App, Backoff, Messages
from aiostream_kafka.runtime.fetch_failures import locate
from tests.helpers import Events, create_topic, eventually


async def send(bootstrap: str, topic: str, partition: int, values: list[bytes], **settings: object) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, **settings)
    await producer.start()
    try:
        for value in values:
            await producer.send(topic, value, partition=partition)
        await producer.flush()
    finally:
        await producer.stop()


async def test_an_unreadable_partition_pauses_alone_is_reported_and_resumes_once_fixed(
    primary: str, topic_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = f"{topic_name}-other"
    await create_topic(primary, topic_name, partitions=3)
    await create_topic(primary, other)
    lz4 = [b"lz4-%d" % i for i in range(10)]
    await send(primary, topic_name, 0, lz4, compression_type="lz4")
    healthy = {p: [b"p%d-%d" % (p, i) for i in range(50)] for p in (1, 2)}
    for partition, values in healthy.items():
        await send(primary, topic_name, partition, values, compression_type="gzip")
    await send(primary, other, 0, [b"other-%d" % i for i in range(50)])

    monkeypatch.setattr(aiokafka.codec, "cramjam", None)  # this process "lacks" snappy, lz4, zstd
    app = App(
        "unreadable",
        kafka={"bootstrap_servers": primary},
        group_id=f"g-{uuid.uuid4().hex[:8]}",
        retry_backoff=Backoff(initial=0.1, maximum=0.5, jitter=0),
    )
    seen: list[bytes] = []

    @app.route(topic_name)
    async def on_topic(messages: Messages[bytes]) -> None:
        seen.extend(m.value or b"" for m in messages)

    @app.route(other)
    async def on_other(messages: Messages[bytes]) -> None:
        seen.extend(m.value or b"" for m in messages)

    events = Events(app)
    async with app.running():
        good = [*healthy[1], *healthy[2], *(b"other-%d" % i for i in range(50))]
        await eventually(lambda: set(good) <= set(seen), what="every readable partition's messages")
        await eventually(lambda: events.count("fetch.failed") >= 2, what="the failure reported, twice")
        [first, *_] = events.named("fetch.failed")
        assert (first["topic"], first["partition"], first["offset"]) == (topic_name, 0, 0)
        assert "cramjam" in first["remedy"]
        assert type(first["error"]).__name__ == "UnsupportedCodecError"
        assert not set(lz4) & set(seen)

        monkeypatch.undo()  # the codec is back
        await eventually(lambda: set(lz4) <= set(seen), what="the lz4 partition, once readable")

    assert events.count("listener.crashed") == 0
    assert events.named("fetch.recovered")[0]["partition"] == 0
    assert sorted(set(seen)) == sorted([*good, *lz4])  # lost=0


def test_an_error_raised_elsewhere_belongs_to_no_partition() -> None:
    with pytest.raises(RuntimeError) as raised:
        raise RuntimeError("not from a fetch")

    assert locate(raised.value) is None
