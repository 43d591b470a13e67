"""The Monitor delivers events to subscribers; Backoff spaces out restarts and retries."""

from __future__ import annotations

import logging

import pytest

from aiostream_kafka import Backoff, ConfigError, Monitor, MonitorEvent

# --- Monitor -----------------------------------------------------------------------------


def test_a_subscriber_receives_the_events_it_subscribed_to_with_their_payload() -> None:
    monitor = Monitor()
    seen: list[MonitorEvent] = []
    monitor.subscribe("batch.processed", seen.append)

    monitor.emit("batch.processed", cluster="primary", topic="orders", partition=2)

    (event,) = seen
    assert event.name == "batch.processed"
    assert event["topic"] == "orders"
    assert event.get("partition") == 2
    assert event.get("missing", "fallback") == "fallback"


def test_a_subscriber_does_not_receive_other_events() -> None:
    monitor = Monitor()
    seen: list[MonitorEvent] = []
    monitor.subscribe("batch.processed", seen.append)

    monitor.emit("batch.failed", cluster="primary")

    assert seen == []


def test_a_star_subscriber_receives_every_event() -> None:
    monitor = Monitor()
    seen: list[str] = []
    monitor.subscribe("*", lambda event: seen.append(event.name))

    monitor.emit("app.started", cluster="primary")
    monitor.emit("offsets.committed", cluster="primary")

    assert seen == ["app.started", "offsets.committed"]


def test_specific_subscribers_are_called_before_star_subscribers() -> None:
    monitor = Monitor()
    order: list[str] = []
    monitor.subscribe("*", lambda event: order.append("everything"))
    monitor.subscribe("app.started", lambda event: order.append("specific"))

    monitor.emit("app.started", cluster="primary")

    assert order == ["specific", "everything"]


def test_unsubscribing_stops_delivery() -> None:
    monitor = Monitor()
    seen: list[MonitorEvent] = []
    unsubscribe = monitor.subscribe("app.started", seen.append)

    monitor.emit("app.started", cluster="primary")
    unsubscribe()
    monitor.emit("app.started", cluster="primary")

    assert len(seen) == 1
    assert not monitor.listens_to("app.started")


def test_listens_to_says_whether_anyone_would_receive_an_event() -> None:
    monitor = Monitor()
    assert not monitor.listens_to("batch.received")

    monitor.subscribe("batch.received", lambda event: None)

    assert monitor.listens_to("batch.received")
    assert not monitor.listens_to("batch.failed")


def test_a_star_subscriber_listens_to_everything() -> None:
    monitor = Monitor()
    monitor.subscribe("*", lambda event: None)

    assert monitor.listens_to("statistics.emitted")


def test_an_unknown_event_name_is_rejected_with_the_closest_name() -> None:
    with pytest.raises(
        ConfigError, match=r"^unknown monitor event 'batch\.proccessed'; did you mean 'batch\.processed'\?"
    ):
        Monitor().subscribe("batch.proccessed", lambda event: None)


def test_an_unknown_event_name_with_nothing_close_gets_no_suggestion() -> None:
    with pytest.raises(ConfigError, match=r"^unknown monitor event 'zzz'$"):
        Monitor().subscribe("zzz", lambda event: None)


def test_a_failing_subscriber_does_not_stop_the_others_or_the_emitter(
    caplog: pytest.LogCaptureFixture,
) -> None:
    monitor = Monitor()
    seen: list[str] = []

    def broken(event: MonitorEvent) -> None:
        raise RuntimeError("observer bug")

    monitor.subscribe("batch.failed", broken)
    monitor.subscribe("batch.failed", lambda event: seen.append("after"))
    monitor.subscribe("*", lambda event: seen.append("everything"))

    with caplog.at_level(logging.ERROR, logger="aiostream_kafka.monitor"):
        monitor.emit("batch.failed", cluster="primary")

    assert seen == ["after", "everything"]
    assert "failed on batch.failed" in caplog.text
    assert "observer bug" in caplog.text


def test_the_app_monitor_logs_events_unless_told_not_to() -> None:
    from aiostream_kafka import App

    kafka = {"bootstrap_servers": "127.0.0.1:19092"}

    assert App("svc", kafka=kafka).monitor.listens_to("batch.failed")
    # (app.health takes the lifecycle events, listeners' and clusters', never a batch's.)
    assert not App("svc", kafka=kafka, log_events=False, opentelemetry=False).monitor.listens_to(
        "batch.failed"
    )


# --- Backoff -----------------------------------------------------------------------------


def test_backoff_starts_at_the_initial_delay_and_doubles() -> None:
    backoff = Backoff(initial=0.5, maximum=30.0, jitter=0)

    assert [backoff.delay(attempt) for attempt in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 4.0]


def test_backoff_never_exceeds_the_maximum() -> None:
    backoff = Backoff(initial=1.0, maximum=10.0, jitter=0)

    assert [backoff.delay(attempt) for attempt in (4, 5, 50)] == [8.0, 10.0, 10.0]


def test_backoff_uses_the_multiplier() -> None:
    backoff = Backoff(initial=1.0, maximum=100.0, multiplier=3.0, jitter=0)

    assert [backoff.delay(attempt) for attempt in (1, 2, 3)] == [1.0, 3.0, 9.0]


def test_backoff_treats_attempts_below_one_as_the_first() -> None:
    assert Backoff(initial=0.5, jitter=0).delay(0) == 0.5


def test_backoff_jitter_stays_within_its_fraction_of_the_delay() -> None:
    backoff = Backoff(initial=10.0, maximum=10.0, jitter=0.1)

    delays = [backoff.delay(1) for _ in range(200)]

    assert all(9.0 <= delay <= 11.0 for delay in delays)
    assert len(set(delays)) > 1


def test_unsubscribing_twice_is_harmless() -> None:
    monitor = Monitor()
    seen: list[MonitorEvent] = []
    unsubscribe = monitor.subscribe("app.started", seen.append)

    unsubscribe()
    unsubscribe()
    monitor.emit("app.started")

    assert seen == []


def test_heard_holds_the_events_someone_would_receive() -> None:
    monitor = Monitor()
    assert "batch.received" not in monitor.heard

    unsubscribe = monitor.subscribe("batch.received", lambda event: None)
    assert "batch.received" in monitor.heard
    assert "batch.failed" not in monitor.heard

    unsubscribe()
    assert "batch.received" not in monitor.heard

    monitor.subscribe("*", lambda event: None)
    assert "batch.failed" in monitor.heard


def test_produce_many_reports_per_message_only_to_whoever_does_not_take_batches() -> None:
    monitor = Monitor()
    assert not monitor.per_message

    class TakesBatches:
        def on_message_producing(self, event: MonitorEvent) -> None: ...
        def on_batch_producing(self, event: MonitorEvent) -> None: ...

    unsubscribe = monitor.subscribe(TakesBatches())
    assert not monitor.per_message  # it takes a batch's events instead of each message's
    stop_everything = monitor.subscribe("*", lambda event: None)
    assert not monitor.per_message  # "*" takes whatever is emitted

    def each(event: MonitorEvent) -> None: ...

    stop_each = monitor.subscribe("message.produced", each)
    assert monitor.per_message
    stop_each()
    assert not monitor.per_message
    unsubscribe()
    stop_everything()
