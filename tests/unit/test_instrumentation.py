"""The Monitor's subscribers (plain, async, listener objects) and the logging listener's fields."""

from __future__ import annotations

import logging

import anyio
import anyio.lowlevel
import pytest

from aiostream_kafka import ConfigError, LoggingListener, Monitor, MonitorEvent, OpenTelemetryListener
from aiostream_kafka.instrumentation.monitor import EVENTS, method_name
from tests.helpers import within


async def test_an_async_subscriber_runs_as_its_own_task() -> None:
    monitor = Monitor()
    seen: list[str] = []

    done = anyio.Event()

    async def subscriber(event: MonitorEvent) -> None:
        await anyio.lowlevel.checkpoint()
        seen.append(event.name)
        done.set()

    monitor.subscribe("batch.processed", subscriber)
    monitor.emit("batch.processed", cluster="primary")
    assert seen == []  # emit never waits for it

    with within(10, "the subscriber's task"):
        await done.wait()
    assert seen == ["batch.processed"]


def test_a_listener_object_is_subscribed_through_its_on_event_methods() -> None:
    class Counter:
        def __init__(self) -> None:
            self.processed = 0
            self.failed = 0

        def on_batch_processed(self, event: MonitorEvent) -> None:
            self.processed += 1

        def on_batch_failed(self, event: MonitorEvent) -> None:
            self.failed += 1

    monitor = Monitor()
    counter = Counter()
    unsubscribe = monitor.subscribe(counter)

    monitor.emit("batch.processed")
    monitor.emit("batch.failed")
    monitor.emit("batch.received")
    unsubscribe()
    monitor.emit("batch.processed")

    assert (counter.processed, counter.failed) == (1, 1)


def test_a_misspelt_on_method_is_an_error_with_a_suggestion() -> None:
    class Typo:
        def on_batch_procesed(self, event: MonitorEvent) -> None: ...

    with pytest.raises(
        ConfigError,
        match=r"Typo.on_batch_procesed matches no monitor event; did you mean 'on_batch_processed'",
    ):
        Monitor().subscribe(Typo())


def test_an_object_without_on_methods_is_an_error() -> None:
    with pytest.raises(ConfigError, match="has no on_<event> methods"):
        Monitor().subscribe(object())


def test_every_event_has_a_method_name() -> None:
    assert method_name("batch.processed") == "on_batch_processed"
    assert len({method_name(event) for event in EVENTS}) == len(EVENTS)


def test_the_logging_listener_puts_the_fields_on_the_record(caplog: pytest.LogCaptureFixture) -> None:
    monitor = Monitor()
    LoggingListener().install(monitor)

    with caplog.at_level(logging.DEBUG, logger="aiostream_kafka"):
        monitor.emit(
            "batch.processed",
            cluster="analytics",
            group="g",
            topic="orders",
            partition=2,
            first_offset=10,
            last_offset=19,
            duration=0.25,
            messages=object(),
        )

    [record] = caplog.records
    assert record.levelno == logging.DEBUG
    assert record.event == "batch.processed"  # type: ignore[attr-defined]
    assert (record.cluster, record.topic, record.partition) == ("analytics", "orders", 2)  # type: ignore[attr-defined]
    assert (record.first_offset, record.last_offset, record.duration) == (10, 19, 0.25)  # type: ignore[attr-defined]
    assert "messages" not in record.getMessage()


def test_errors_are_logged_at_error_with_the_exception(caplog: pytest.LogCaptureFixture) -> None:
    monitor = Monitor()
    LoggingListener().install(monitor)

    monitor.emit("batch.failed", cluster="primary", topic="t", partition=0, error=ValueError("boom"))

    [record] = caplog.records
    assert record.levelno == logging.ERROR
    assert "error=ValueError: boom" in record.getMessage()
    assert record.exc_info is not None


def test_a_field_named_like_a_log_record_attribute_is_renamed_not_lost(
    caplog: pytest.LogCaptureFixture,
) -> None:
    monitor = Monitor()
    LoggingListener().install(monitor)

    monitor.emit("error.occurred", cluster="primary", name="clash", error=None)

    [record] = caplog.records
    assert record.event_name == "clash"  # type: ignore[attr-defined]


def test_without_an_sdk_the_opentelemetry_listener_adds_no_headers() -> None:
    monitor = Monitor()
    OpenTelemetryListener().install(monitor)
    headers: list[tuple[str, bytes]] = []

    monitor.emit(
        "message.producing",
        cluster="primary",
        topic="t",
        partition=None,
        server="h:1",
        headers=headers,
        context={},
    )

    assert headers == []


def test_an_unconditional_subscriber_to_everything_listens_to_each_event() -> None:
    monitor = Monitor()
    unsubscribe = monitor.subscribe("*", lambda event: None)

    assert monitor.listens_to("message.producing")
    unsubscribe()
    assert not monitor.listens_to("message.producing")


def test_without_an_sdk_producers_are_not_asked_for_per_message_events() -> None:
    monitor = Monitor()
    OpenTelemetryListener().install(monitor)
    LoggingListener().install(monitor)

    assert not monitor.listens_to("message.producing")
    assert not monitor.listens_to("message.produced")
    assert monitor.listens_to("produce.failed")  # logged, whatever the SDK
    assert monitor.listens_to("batch.processed")


def test_with_a_provider_passed_in_per_message_events_are_wanted() -> None:
    from opentelemetry.sdk.trace import TracerProvider

    monitor = Monitor()
    OpenTelemetryListener(tracer_provider=TracerProvider()).install(monitor)

    assert monitor.listens_to("message.producing")
    assert monitor.listens_to("message.produced")
