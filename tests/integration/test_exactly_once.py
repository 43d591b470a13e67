"""Exactly-once routes on a real broker: a batch's produces, dead letters and offsets commit
in one transaction, a failure aborts it all, a transaction never spans clusters, and a
producer that lost its partition is fenced."""

from __future__ import annotations

import uuid

import pytest
from aiokafka import TopicPartition
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from aiostream_kafka import (
    App,
    Backoff,
    CrossClusterTransactionError,
    DeadLetterQueue,
    Messages,
    OpenTelemetryListener,
    ProducerRecord,
    Retry,
    TransactionError,
)
from aiostream_kafka.producing.producer import Producer
from tests.helpers import (
    Events,
    committed_offsets,
    create_topic,
    eventually,
    forwarding_topics,
    produce,
    read_committed,
)


def app_on(
    primary: str,
    secondary: str | None = None,
    telemetry: OpenTelemetryListener | None = None,
    **settings: object,
) -> App:
    clusters = {"secondary": {"bootstrap_servers": secondary}} if secondary else {}
    return App(
        f"eos-{uuid.uuid4().hex[:8]}",
        kafka={"bootstrap_servers": primary, **settings},
        clusters=clusters,
        retry_backoff=Backoff(initial=0.05, maximum=0.2),
        opentelemetry=telemetry or True,
    )


async def values(bootstrap: str, topic: str, isolation_level: str = "read_committed") -> list[bytes]:
    return [r.value for r in await read_committed(bootstrap, topic, isolation_level=isolation_level)]


async def test_a_batch_s_produces_and_offsets_commit_together(primary: str, topic_name: str) -> None:
    out = await forwarding_topics(primary, topic_name, *(b"%d" % i for i in range(10)))
    app = app_on(primary)
    events = Events(app)

    @app.route(topic_name, exactly_once=True, max_messages=4)
    async def forward(messages: Messages[bytes]) -> None:
        for message in messages:
            await app.producer.produce(out, bytes(message.value or b"") + b"!")  # as in any route

    async with app.running():
        await eventually(lambda: events.count("batch.processed") == 3, what="three batches committed")

    assert await values(primary, out) == [b"%d!" % i for i in range(10)]
    assert (await committed_offsets(primary, app.group_id))[TopicPartition(topic_name, 0)] == 10
    # The three batches of the poll in one transaction (docs/exactly-once.md):
    [committed] = events.named("transaction.committed", topic=topic_name, partition=0)
    assert committed["offset"] == 10
    assert committed["transactional_id"] == f"{app.name}.{app.group_id}.{topic_name}.0"
    assert [e["first_offset"] for e in events.named("transaction.begun")] == [0]
    assert [e["first_offset"] for e in events.named("batch.processed")] == [0, 4, 8]
    assert all(e["transactional"] for e in events.named("offsets.committed"))


async def test_with_max_poll_records_of_one_batch_each_batch_commits_in_its_own_transaction(
    primary: str, topic_name: str
) -> None:
    out = await forwarding_topics(primary, topic_name, *(b"%d" % i for i in range(10)))
    app = app_on(primary)
    events = Events(app)

    @app.route(topic_name, exactly_once=True, max_messages=4, max_poll_records=4)
    async def forward(messages: Messages[bytes]) -> None:
        await app.producer.produce_many(ProducerRecord(out, m.value) for m in messages)

    async with app.running():
        await eventually(lambda: events.count("transaction.committed") == 3, what="three batches committed")

    assert await values(primary, out) == [b"%d" % i for i in range(10)]
    assert [e["offset"] for e in events.named("transaction.committed")] == [4, 8, 10]
    assert [e["first_offset"] for e in events.named("transaction.begun")] == [0, 4, 8]


async def test_a_failing_handler_aborts_its_batch_and_the_retry_commits_it_once(
    primary: str, topic_name: str
) -> None:
    out = await forwarding_topics(primary, topic_name, b"a", b"b", b"c")
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = app_on(primary, telemetry=OpenTelemetryListener(tracer_provider=provider))
    events = Events(app)

    @app.route(topic_name, exactly_once=True, retry=Retry(initial=0.05, maximum=0.1))
    async def forward(messages: Messages[bytes]) -> None:
        await app.producer.produce_many(ProducerRecord(out, m.value, key=m.key) for m in messages)
        if messages.attempt == 1:
            raise RuntimeError("the first attempt fails after producing")

    async with app.running():
        await eventually(lambda: events.count("transaction.committed") == 1, what="the retry committed")

    assert await values(primary, out) == [b"a", b"b", b"c"]  # read committed: once
    assert await values(primary, out, "read_uncommitted") == [b"a", b"b", b"c"] * 2  # the abort was real
    [aborted] = events.named("transaction.aborted")
    assert (aborted["topic"], aborted["partition"], str(aborted["error"])) == (
        topic_name,
        0,
        "the first attempt fails after producing",
    )
    assert events.named("batch.processed")[0]["attempt"] == 2
    spans = {span.name: span for span in exporter.get_finished_spans() if span.name.endswith("transaction")}
    transactions = [s for s in exporter.get_finished_spans() if s.name == f"{topic_name} transaction"]
    assert [s.status.status_code for s in transactions] == [StatusCode.ERROR, StatusCode.UNSET]
    processes = {
        s.context.span_id for s in exporter.get_finished_spans() if s.name == f"{topic_name} process"
    }
    assert all(s.parent is not None and s.parent.span_id in processes for s in transactions)
    assert spans
    provider.shutdown()


async def test_a_message_given_up_goes_to_the_dead_letter_queue_with_its_offset_in_one_transaction(
    primary: str, topic_name: str
) -> None:
    out, dlq = f"{topic_name}.out", f"{topic_name}.dlq"
    for topic in (topic_name, out, dlq):
        await create_topic(primary, topic)
    await produce(primary, topic_name, b"ok-1", b"bad", b"ok-2", partition=0)
    app = app_on(primary)
    events = Events(app)

    @app.route(
        topic_name,
        exactly_once=True,
        max_messages=1,
        retry=Retry(initial=0.05, maximum=0.1),
        dead_letter_queue=DeadLetterQueue(dlq, max_retries=1),
    )
    async def forward(messages: Messages[bytes]) -> None:
        for message in messages:
            await app.producer.produce(out, message.value)
            if message.value == b"bad":
                raise ValueError("bad input")

    async with app.running():
        await eventually(lambda: events.count("batch.processed") == 2, what="both good messages committed")

    assert await values(primary, out) == [b"ok-1", b"ok-2"]
    assert await values(primary, dlq) == [b"bad"]
    assert (await committed_offsets(primary, app.group_id))[TopicPartition(topic_name, 0)] == 3
    # ok-1 and bad in one transaction, aborted 1 + max_retries times; then ok-1, the dead
    # letter and ok-2 in one, committed with the offset past all three.
    assert [e["offset"] for e in events.named("transaction.committed")] == [3]
    assert len(events.named("transaction.aborted")) == 2


async def test_a_produce_to_another_cluster_inside_an_exactly_once_batch_is_refused_naming_both(
    primary: str, secondary: str, topic_name: str
) -> None:
    await create_topic(primary, topic_name)
    await produce(primary, topic_name, b"x", partition=0)
    app = app_on(primary, secondary)
    events = Events(app)

    @app.route(topic_name, exactly_once=True, retry=Retry(initial=0.05, maximum=0.1))
    async def forward(messages: Messages[bytes]) -> None:
        await app.producers["secondary"].produce(f"{topic_name}.elsewhere", b"x")

    async with app.running():
        await eventually(lambda: events.count("transaction.aborted") >= 1, what="the refused batch aborted")

    error = events.named("batch.failed")[0]["error"]
    assert isinstance(error, CrossClusterTransactionError)
    assert (error.transaction_cluster, error.produce_cluster) == ("primary", "secondary")
    assert "cluster 'primary'" in str(error)
    assert "cluster 'secondary'" in str(error)


async def test_a_producer_transaction_commits_or_aborts_everything_in_it(
    primary: str, topic_name: str
) -> None:
    await create_topic(primary, topic_name)
    app = app_on(primary, transactional_id=f"tx-{uuid.uuid4().hex[:8]}")
    events = Events(app)
    async with app.running():
        async with app.producer.transaction():
            await app.producer.produce(topic_name, b"kept-1")
            await app.producers["primary"].produce_nowait(topic_name, b"kept-2")
        with pytest.raises(RuntimeError, match="changed my mind"):
            await abandoned_transaction(app, topic_name)

    assert await values(primary, topic_name) == [b"kept-1", b"kept-2"]
    assert [e.name for e in events.all if e.name.startswith("transaction.")] == [
        "transaction.begun",
        "transaction.committed",
        "transaction.begun",
        "transaction.aborted",
    ]


async def abandoned_transaction(app: App, topic: str) -> None:
    async with app.producer.transaction():
        await app.producer.produce(topic, b"dropped")
        raise RuntimeError("changed my mind")


async def test_a_newer_producer_with_the_same_transactional_id_fences_the_older_one(
    primary: str, topic_name: str
) -> None:
    await create_topic(primary, topic_name)
    app = app_on(primary, transactional_id=f"tx-{uuid.uuid4().hex[:8]}")
    cluster = app.topology.clusters["primary"]
    older, newer = (Producer(cluster, app.monitor, client_id="fencing") for _ in range(2))
    await older.start()
    try:
        await older.begin_transaction()
        await older.produce(topic_name, b"from the zombie")
        await newer.start()  # the partition's next owner: its start fences the older producer
        with pytest.raises(TransactionError) as raised:
            await older.commit_transaction()
        assert raised.value.fenced
        assert raised.value.cluster == "primary"
        async with newer.transaction():
            await newer.produce(topic_name, b"from the owner")
    finally:
        await older.stop()
        await newer.stop()
    assert await values(primary, topic_name) == [b"from the owner"]


async def test_check_grants_a_transactional_producer_and_notes_a_route_off_the_producer_cluster(
    primary: str, secondary: str, topic_name: str
) -> None:
    await create_topic(secondary, topic_name)
    app = app_on(primary, secondary)

    @app.route(topic_name, cluster="secondary", exactly_once=True)
    async def forward(messages: Messages[bytes]) -> None:
        await app.producers["secondary"].produce(f"{topic_name}.out", b"x")

    notes = await app.check(within=30)  # the real clusters answer in time, however loaded the machine

    assert notes == [
        f"route for topic {topic_name!r} is exactly-once on cluster 'secondary', but app.producer "
        f"sends to 'primary': inside its batches produce through app.producers['secondary'] (a "
        f"produce to another cluster is refused there)"
    ]
