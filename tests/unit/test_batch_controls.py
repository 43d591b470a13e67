"""A handler's handle on its partition: marking progress, pause / resume / seek, and revocation.

On a batch (``Messages``) the handler's wishes are recorded in ``after_batch`` for the listener
to carry out once the batch returns; a ``Consumer`` asks its listener through a PartitionControl.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import pytest

from aiostream_kafka import App, Consumer, Message, Messages
from aiostream_kafka.messages import AfterBatch
from aiostream_kafka.producing.registry import ProducerRegistry

PRIMARY = {"bootstrap_servers": "127.0.0.1:19092"}
NOON = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


def message(offset: int, *, topic: str = "orders", partition: int = 3) -> Message[Any]:
    return Message(topic=topic, partition=partition, offset=offset, key=None, value=b"{}")


def batch(*offsets: int, partition: int = 3, is_revoked: Callable[[], bool] | None = None) -> Messages[Any]:
    return Messages(
        [message(offset, partition=partition) for offset in offsets],
        topic="orders",
        partition=partition,
        cluster="primary",
        is_revoked=is_revoked,
    )


# --- Messages.mark_as_consumed -----------------------------------------------------------


def test_nothing_is_marked_on_a_fresh_batch() -> None:
    assert batch(10, 11, 12).marked_offset is None


def test_marking_a_message_makes_the_next_offset_the_one_to_commit() -> None:
    messages = batch(10, 11, 12)

    messages.mark_as_consumed(messages[1])

    assert messages.marked_offset == 12


def test_marks_move_forward() -> None:
    messages = batch(10, 11, 12)

    messages.mark_as_consumed(messages[0])
    messages.mark_as_consumed(messages[2])

    assert messages.marked_offset == 13


def test_marking_an_earlier_message_than_one_already_marked_changes_nothing() -> None:
    messages = batch(10, 11, 12)
    messages.mark_as_consumed(messages[2])

    messages.mark_as_consumed(messages[0])

    assert messages.marked_offset == 13


def test_marking_the_same_message_twice_changes_nothing() -> None:
    messages = batch(10, 11, 12)
    messages.mark_as_consumed(messages[1])

    messages.mark_as_consumed(messages[1])

    assert messages.marked_offset == 12


def test_marking_a_message_of_another_partition_is_refused_naming_it() -> None:
    messages = batch(10, 11)

    with pytest.raises(
        ValueError,
        match=r"^<Message primary/orders\[4\]@11> is not in this batch \(orders\[3\]\); "
        r"mark it on its own batch$",
    ):
        messages.mark_as_consumed(message(11, partition=4))

    assert messages.marked_offset is None


def test_marking_a_message_of_another_topic_is_refused_naming_it() -> None:
    messages = batch(10, 11)

    with pytest.raises(ValueError, match=r"^<Message primary/payments\[3\]@10> is not in this batch"):
        messages.mark_as_consumed(message(10, topic="payments"))


# --- Messages.pause / resume / seek ------------------------------------------------------


def test_a_batch_asks_for_nothing_after_it_by_default() -> None:
    assert batch(10).after_batch is None


def test_pause_for_some_seconds_is_recorded_for_after_the_batch() -> None:
    messages = batch(10)

    messages.pause(duration=0.5)

    assert messages.after_batch == ("pause", 500)


def test_a_pause_is_never_shorter_than_asked() -> None:
    messages = batch(10)

    messages.pause(duration=0.0001)

    assert messages.after_batch == ("pause", 1)


def test_pause_without_a_duration_pauses_until_resumed() -> None:
    messages = batch(10)

    messages.pause()

    assert messages.after_batch == ("pause", None)


def test_pause_for_zero_seconds_is_allowed() -> None:
    messages = batch(10)

    messages.pause(duration=0)

    assert messages.after_batch == ("pause", 0)


def test_pause_in_milliseconds_still_works_and_warns() -> None:
    messages = batch(10)

    with pytest.warns(
        DeprecationWarning, match=r"pause\(for_ms=...\) is deprecated; use pause\(duration=...\)"
    ):
        messages.pause(500)

    assert messages.after_batch == ("pause", 500)


def test_pause_refuses_milliseconds_and_seconds_at_once() -> None:
    with (
        pytest.warns(DeprecationWarning, match="for_ms"),
        pytest.raises(ValueError, match=r"^pause\(\): give"),
    ):
        batch(10).pause(500, duration=0.5)


@pytest.mark.parametrize(
    "target", [0, 42, "earliest", "latest", NOON], ids=["zero", "offset", "earliest", "latest", "datetime"]
)
def test_seek_is_recorded_for_after_the_batch(target: Any) -> None:
    messages = batch(10)

    messages.seek(target)

    assert messages.after_batch == ("seek", target)


def test_resume_cancels_a_pause_asked_for_during_the_batch() -> None:
    messages = batch(10)
    messages.pause(duration=0.5)

    messages.resume()

    assert messages.after_batch is None


def test_resume_cancels_a_seek_asked_for_during_the_batch() -> None:
    messages = batch(10)
    messages.seek("earliest")

    messages.resume()

    assert messages.after_batch is None


def test_the_last_request_of_a_batch_wins() -> None:
    messages = batch(10)

    messages.pause()
    messages.seek(42)

    assert messages.after_batch == ("seek", 42)


@pytest.mark.parametrize("duration", [-1, float("nan"), float("inf"), "500", True])
def test_pause_refuses_anything_but_seconds_from_zero(duration: Any) -> None:
    messages = batch(10)

    with pytest.raises(ValueError, match=r"^pause\(duration=.*\): seconds >= 0, or None$"):
        messages.pause(duration=duration)

    assert messages.after_batch is None


@pytest.mark.parametrize("for_ms", [-1, 1.5, "500", True])
def test_pause_in_the_old_milliseconds_refuses_anything_but_whole_ones(for_ms: Any) -> None:
    messages = batch(10)

    with (
        pytest.warns(DeprecationWarning, match="for_ms"),
        pytest.raises(
            ValueError, match=r"^pause\(for_ms=.*\): milliseconds as a whole number >= 0, or None$"
        ),
    ):
        messages.pause(for_ms)

    assert messages.after_batch is None


@pytest.mark.parametrize("target", [-1, True, False, "middle", 1.5, None])
def test_seek_refuses_a_target_that_is_not_an_offset_an_end_or_a_time(target: Any) -> None:
    messages = batch(10)

    with pytest.raises(
        ValueError,
        match=rf"^seek\({re.escape(repr(target))}\): an offset >= 0, 'earliest', 'latest' or a datetime$",
    ):
        messages.seek(target)

    assert messages.after_batch is None


def test_a_refused_seek_leaves_an_earlier_request_in_place() -> None:
    messages = batch(10)
    messages.pause(duration=0.5)

    with pytest.raises(ValueError, match=r"seek\('middle'\)"):
        messages.seek("middle")

    assert messages.after_batch == ("pause", 500)


# --- Messages.revoked --------------------------------------------------------------------


def test_a_batch_without_a_revocation_probe_is_never_revoked() -> None:
    assert batch(10).revoked is False


def test_revoked_follows_the_probe_each_time_it_is_read() -> None:
    state = {"revoked": False}
    messages = batch(10, is_revoked=lambda: state["revoked"])

    before = messages.revoked
    state["revoked"] = True

    assert (before, messages.revoked) == (False, True)


# --- Consumer controls -------------------------------------------------------------------


class FakeControl:
    """A listener's PartitionControl that records what the consumer asks for."""

    def __init__(self, batches: dict[tuple[str, int], Messages[Any]] | None = None) -> None:
        self.batches = batches or {}
        self.requests: list[tuple[str, int, AfterBatch]] = []
        self.revoked: set[tuple[str, int]] = set()

    def current(self, topic: str, partition: int) -> Messages[Any] | None:
        return self.batches.get((topic, partition))

    def request(self, topic: str, partition: int, action: AfterBatch) -> None:
        self.requests.append((topic, partition, action))

    def is_revoked(self, topic: str, partition: int) -> bool:
        return (topic, partition) in self.revoked


class Orders(Consumer):
    async def consume(self, messages: Messages[Any]) -> None:
        pass


def producers() -> ProducerRegistry:
    app = App("svc", kafka=PRIMARY, log_events=False)
    return ProducerRegistry(app.topology, app.monitor, client_id="svc")


def bound(control: FakeControl) -> Orders:
    consumer = Orders()
    consumer.bind(producers(), "orders", "primary", control)
    return consumer


def test_a_consumer_pauses_a_partition_of_its_topic_through_the_listener() -> None:
    control = FakeControl()

    bound(control).pause(3, duration=0.1)

    assert control.requests == [("orders", 3, ("pause", 100))]


def test_a_consumer_pauses_in_the_old_milliseconds_with_a_warning() -> None:
    control = FakeControl()

    with pytest.warns(DeprecationWarning, match=r"pause\(for_ms=...\) is deprecated"):
        bound(control).pause(3, for_ms=100)

    assert control.requests == [("orders", 3, ("pause", 100))]


def test_a_consumer_pauses_until_resumed_without_a_duration() -> None:
    control = FakeControl()

    bound(control).pause(3)

    assert control.requests == [("orders", 3, ("pause", None))]


def test_a_consumer_refuses_a_negative_pause_before_asking_the_listener() -> None:
    control = FakeControl()

    with pytest.raises(ValueError, match=r"^pause\(duration=-5\): seconds >= 0"):
        bound(control).pause(3, duration=-5)

    assert control.requests == []


def test_a_consumer_resumes_a_partition_through_the_listener() -> None:
    control = FakeControl()

    bound(control).resume(3)

    assert control.requests == [("orders", 3, ("resume", None))]


@pytest.mark.parametrize(
    "target", [42, "earliest", "latest", NOON], ids=["offset", "earliest", "latest", "time"]
)
def test_a_consumer_seeks_a_partition_through_the_listener(target: Any) -> None:
    control = FakeControl()

    bound(control).seek(3, target)

    assert control.requests == [("orders", 3, ("seek", target))]


@pytest.mark.parametrize("target", [-1, True, "middle", 1.5])
def test_a_consumer_refuses_a_bad_seek_target_before_asking_the_listener(target: Any) -> None:
    control = FakeControl()

    with pytest.raises(ValueError, match=r"an offset >= 0, 'earliest', 'latest' or a datetime$"):
        bound(control).seek(3, target)

    assert control.requests == []


def test_a_consumer_asks_the_listener_whether_a_partition_is_revoked() -> None:
    control = FakeControl()
    control.revoked.add(("orders", 3))
    consumer = bound(control)

    assert consumer.is_revoked(3) is True
    assert consumer.is_revoked(4) is False


def test_a_consumer_marks_a_message_on_the_batch_in_hand_for_its_partition() -> None:
    messages = batch(10, 11, 12)
    other = batch(10, 11, 12, partition=5)
    control = FakeControl({("orders", 3): messages, ("orders", 5): other})

    bound(control).mark_as_consumed(messages[1])

    assert messages.marked_offset == 12
    assert other.marked_offset is None


def test_a_consumer_cannot_mark_a_message_when_no_batch_of_its_partition_is_in_hand() -> None:
    control = FakeControl({("orders", 3): batch(10, 11)})

    with pytest.raises(
        ValueError,
        match=r"^no batch of orders\[4\] is being consumed to mark <Message primary/orders\[4\]@10>$",
    ):
        bound(control).mark_as_consumed(message(10, partition=4))


@pytest.mark.parametrize(
    "use",
    [
        lambda consumer: consumer.pause(3),
        lambda consumer: consumer.resume(3),
        lambda consumer: consumer.seek(3, 0),
        lambda consumer: consumer.is_revoked(3),
        lambda consumer: consumer.mark_as_consumed(message(10)),
    ],
    ids=["pause", "resume", "seek", "is_revoked", "mark_as_consumed"],
)
def test_a_consumer_not_running_under_a_listener_says_so(use: Any) -> None:
    with pytest.raises(RuntimeError, match=r"^Orders is not running under a listener$"):
        use(Orders())


def test_a_consumer_bound_without_a_control_is_not_running_under_a_listener() -> None:
    consumer = Orders()
    consumer.bind(producers(), "orders", "primary")

    with pytest.raises(RuntimeError, match=r"^Orders is not running under a listener$"):
        consumer.pause(3)


@pytest.mark.parametrize("flag", [True, False])
def test_a_bool_is_not_a_pause_duration(flag: bool) -> None:
    with pytest.raises(ValueError, match=r"pause\(duration="):
        batch().pause(duration=flag)
