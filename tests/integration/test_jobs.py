"""Background jobs on real Kafka: enqueued by one app, run by a worker, primary by default."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import httpx
import msgspec
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from aiostream_kafka import App, DeadLetterQueue, JobEnvelope, MonitorEvent, Retry
from tests.helpers import create_topic, eventually, read_records, wait_for_records

FAST = Retry(initial=0.05, maximum=0.1, jitter=0)


class Email(msgspec.Struct):
    to: str
    subject: str


def make_app(primary: str, secondary: str, name: str) -> App:
    return App(
        name,
        kafka={"bootstrap_servers": primary},
        clusters={"analytics": {"bootstrap_servers": secondary}},
        group_id=f"g-{uuid.uuid4().hex[:8]}",
    )


async def test_a_fastapi_endpoint_enqueues_a_job_that_a_worker_app_runs(
    primary: str, secondary: str, topic_name: str
) -> None:
    sent: list[Email] = []

    async def send_email(email: Email, priority: int = 0) -> None:
        sent.append(email)

    web = make_app(primary, secondary, "web")
    enqueue = web.job(topic=topic_name, name="send_email")(send_email)
    worker = make_app(primary, secondary, "worker")
    worker.job(topic=topic_name, name="send_email")(send_email)
    worker.jobs.consume(topic_name)

    @asynccontextmanager
    async def lifespan(api: FastAPI) -> AsyncIterator[None]:
        async with web.lifespan(api):
            yield

    api = FastAPI(lifespan=lifespan)

    @api.post("/signup/{address}", status_code=202)
    async def signup(address: str) -> dict[str, str]:
        return {"job": await enqueue.enqueue(Email(address, "welcome"), priority=1)}

    async with worker.running(), LifespanManager(api) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.post("/signup/ada@example.com")
        assert response.status_code == 202
        await eventually(
            lambda: sent == [Email("ada@example.com", "welcome")], what="the job to run in the worker"
        )

    [record] = await read_records(primary, topic_name)  # on the primary cluster, by default
    envelope = msgspec.json.decode(record.value, type=JobEnvelope)
    assert (envelope.name, envelope.id, envelope.args) == (
        "send_email",
        response.json()["job"],
        {"email": {"to": "ada@example.com", "subject": "welcome"}, "priority": 1},
    )


async def test_a_job_declared_on_the_secondary_is_produced_and_run_there(
    primary: str, secondary: str, topic_name: str
) -> None:
    app = make_app(primary, secondary, "jobs-secondary")
    ran: list[int] = []

    @app.job(topic=topic_name, cluster="analytics")
    async def crunch(n: int) -> None:
        ran.append(n)

    app.jobs.consume(topic_name)  # from the cluster its jobs go to
    async with app.running():
        await crunch.enqueue(n=42)
        await eventually(lambda: ran == [42], what="the job on the secondary")

    assert len(await read_records(secondary, topic_name)) == 1
    assert await read_records(primary, topic_name) == []
    assert {g.cluster for g in app.topology.subscription_groups} == {"analytics"}


async def test_a_failing_job_is_retried_then_dead_lettered(
    primary: str, secondary: str, topic_name: str
) -> None:
    app = make_app(primary, secondary, "jobs-failing")
    attempts: list[float] = []

    @app.job(topic=topic_name)
    async def flaky() -> None:
        attempts.append(time.monotonic())
        raise RuntimeError("the mail server is down")

    app.jobs.consume(
        topic_name, retry=FAST, dead_letter_queue=DeadLetterQueue(f"{topic_name}.dlq", max_retries=2)
    )
    async with app.running():
        await flaky.enqueue()
        await eventually(lambda: len(attempts) == 3, what="three attempts")
        [dead] = await wait_for_records(primary, f"{topic_name}.dlq")

    headers = dict(dead.headers)
    assert headers["attempts"] == b"3"
    assert headers["error_message"] == b"the mail server is down"
    assert msgspec.json.decode(dead.value, type=JobEnvelope).name.endswith("flaky")


async def test_an_unknown_job_goes_to_the_dlq_at_once_with_the_reason(
    primary: str, secondary: str, topic_name: str
) -> None:
    app = make_app(primary, secondary, "jobs-unknown")

    @app.job(topic=topic_name)
    async def known() -> None: ...

    app.jobs.consume(
        topic_name, retry=FAST, dead_letter_queue=DeadLetterQueue(f"{topic_name}.dlq", max_retries=5)
    )
    stranger = JobEnvelope("somebody.elses_job", "id-1", {}, time.time())
    await create_topic(primary, topic_name)
    async with app.running():
        await app.producer.produce(topic_name, msgspec.json.encode(stranger))
        [record] = await wait_for_records(primary, f"{topic_name}.dlq")

    headers = dict(record.headers)
    assert headers["attempts"] == b"1"
    assert headers["error_type"] == b"aiostream_kafka.jobs.envelope.UnknownJobError"
    assert b"no job named 'somebody.elses_job'" in headers["error_message"]


async def test_a_tombstone_on_a_jobs_topic_goes_to_the_dlq_at_once_and_the_next_job_runs(
    primary: str, secondary: str, topic_name: str
) -> None:
    app = make_app(primary, secondary, "jobs-tombstone")
    ran: list[str] = []

    @app.job(topic=topic_name)
    async def known(name: str) -> None:
        ran.append(name)

    app.jobs.consume(
        topic_name, retry=FAST, dead_letter_queue=DeadLetterQueue(f"{topic_name}.dlq", max_retries=5)
    )
    await create_topic(primary, topic_name)
    async with app.running():
        await app.producer.produce(topic_name, None, key="job-1")
        await known.enqueue("after")
        await eventually(lambda: ran == ["after"], what="the job after the tombstone")
        [record] = await wait_for_records(primary, f"{topic_name}.dlq")

    assert (record.key, record.value) == (b"job-1", None)
    headers = dict(record.headers)
    assert headers["attempts"] == b"1"
    assert headers["error_type"] == b"aiostream_kafka.errors.DecodeError"
    assert b"a tombstone (no value) is not a job" in headers["error_message"]


async def test_a_delayed_job_runs_after_its_delay_and_not_before(
    primary: str, secondary: str, topic_name: str
) -> None:
    app = make_app(primary, secondary, "jobs-delayed")
    ran_at: list[float] = []

    @app.job(topic=topic_name)
    async def later() -> None:
        ran_at.append(time.time())

    app.jobs.consume(topic_name)
    async with app.running():
        enqueued_at = time.time()
        await later.enqueue(delay=timedelta(seconds=2))
        await eventually(lambda: bool(ran_at), what="the delayed job")

    assert ran_at[0] - enqueued_at >= 2.0
    assert len(ran_at) == 1


async def test_wrong_arguments_are_the_callers_error_at_enqueue(
    primary: str, secondary: str, topic_name: str
) -> None:
    app = make_app(primary, secondary, "jobs-arguments")

    @app.job(topic=topic_name)
    async def resize(image_id: int, width: int = 100) -> None: ...

    async with app.running():
        with pytest.raises(TypeError, match=r"job '.*resize': missing a required argument: 'image_id'"):
            await resize.enqueue()
        with pytest.raises(TypeError, match=r"argument 'image_id': Expected `int`, got `str`"):
            await resize.enqueue(image_id="seven")
        with pytest.raises(TypeError, match="got an unexpected keyword argument 'height'"):
            await resize.enqueue(image_id=7, height=3)

    assert await read_records(primary, topic_name) == []


async def test_many_jobs_enqueued_at_once_go_in_batches_and_each_runs_once(
    primary: str, secondary: str, topic_name: str
) -> None:
    resized: list[int] = []

    async def resize(image_id: int, width: int = 100) -> None:
        resized.append(image_id)

    web = make_app(primary, secondary, "jobs-many-web")
    enqueue = web.job(topic=topic_name, name="resize")(resize)
    batches: list[MonitorEvent] = []
    web.monitor.subscribe("batch.produced", batches.append)
    worker = make_app(primary, secondary, "jobs-many-worker")
    worker.job(topic=topic_name, name="resize")(resize)
    worker.jobs.consume(topic_name)
    await create_topic(primary, topic_name, 1)

    async with web.running():
        with pytest.raises(TypeError, match=r"argument 'image_id': Expected `int`, got `str`"):
            await enqueue.enqueue_many([{"image_id": 1}, {"image_id": "two"}])
        ids = await enqueue.enqueue_many({"image_id": n, "width": 50} for n in range(300))

    assert sum(event["count"] for event in batches) == 300  # batch-built, nothing of the bad call
    assert len(batches) > 1
    records = await read_records(primary, topic_name)
    envelopes = [msgspec.json.decode(r.value, type=JobEnvelope) for r in records]
    assert [e.id for e in envelopes] == ids
    assert [e.args for e in envelopes] == [{"image_id": n, "width": 50} for n in range(300)]
    async with worker.running():
        await eventually(lambda: len(resized) >= 300, what="every job to run")
    assert resized == list(range(300))
