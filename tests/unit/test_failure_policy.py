"""What a handler failure means for its partition (FailurePolicy): retry later, or give the message up.

Backoffs here have no jitter, so every delay is exact: 1s, then doubling up to 8s.
"""

from __future__ import annotations

import asyncio
import sys

import pytest
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaTimeoutError,
    NotLeaderForPartitionError,
    RequestTimedOutError,
)

from aiostream_kafka import Backoff, ClusterConnectionError, ConfigError, DeadLetterQueue, Retry
from aiostream_kafka.processing import Decision, FailurePolicy, is_fatal

if sys.version_info < (3, 11):
    from exceptiongroup import ExceptionGroup

BACKOFF = Backoff(1.0, 8.0, 2.0, jitter=0)
ERROR = RuntimeError("handler failed")


def policy(dead_letter_queue: DeadLetterQueue | None = None) -> FailurePolicy:
    return FailurePolicy(BACKOFF, dead_letter_queue)


# --- without a dead-letter queue ---------------------------------------------------------


def test_the_first_attempt_on_a_partition_is_attempt_one() -> None:
    assert policy().attempt(0) == 1


def test_without_a_dlq_a_failure_is_retried_at_the_first_unprocessed_offset() -> None:
    assert policy().failed(0, 40, ERROR) == Decision("retry", 40, attempts=1, delay=1.0)


def test_without_a_dlq_failures_are_retried_forever_with_the_backoff_of_each_attempt() -> None:
    failures = policy()

    decisions = [failures.failed(0, 40, ERROR) for _ in range(6)]

    assert [(d.action, d.offset, d.attempts, d.delay) for d in decisions] == [
        ("retry", 40, 1, 1.0),
        ("retry", 40, 2, 2.0),
        ("retry", 40, 3, 4.0),
        ("retry", 40, 4, 8.0),
        ("retry", 40, 5, 8.0),
        ("retry", 40, 6, 8.0),
    ]


def test_attempt_reports_the_number_of_the_next_attempt_after_failures() -> None:
    failures = policy()
    failures.failed(0, 40, ERROR)
    failures.failed(0, 40, ERROR)

    assert failures.attempt(0) == 3


def test_without_a_dlq_a_poison_message_is_just_retried() -> None:
    failures = policy()

    first = failures.failed(0, 40, ERROR, poison_offset=42)
    second = failures.failed(0, 40, ERROR, poison_offset=42)

    assert first == Decision("retry", 40, attempts=1, delay=1.0)
    assert second == Decision("retry", 40, attempts=2, delay=2.0)


# --- with a dead-letter queue ------------------------------------------------------------


def test_with_a_dlq_a_message_gets_one_attempt_plus_max_retries_then_is_dispatched() -> None:
    failures = policy(DeadLetterQueue("orders.dlq", max_retries=2))

    decisions = [failures.failed(0, 40, ERROR) for _ in range(3)]

    assert decisions == [
        Decision("retry", 40, attempts=1, delay=1.0),
        Decision("retry", 40, attempts=2, delay=2.0),
        Decision("dispatch", 40, attempts=3),
    ]


def test_with_max_retries_zero_the_first_failure_dispatches() -> None:
    failures = policy(DeadLetterQueue("orders.dlq", max_retries=0))

    assert failures.failed(0, 40, ERROR) == Decision("dispatch", 40, attempts=1)


def test_a_dlq_without_a_topic_skips_the_message_instead_of_dispatching_it() -> None:
    failures = policy(DeadLetterQueue(None, max_retries=1))

    decisions = [failures.failed(0, 40, ERROR) for _ in range(2)]

    assert decisions == [Decision("retry", 40, attempts=1, delay=1.0), Decision("skip", 40, attempts=2)]


def test_after_giving_a_message_up_counting_starts_over() -> None:
    failures = policy(DeadLetterQueue("orders.dlq", max_retries=1))
    failures.failed(0, 40, ERROR)
    failures.failed(0, 40, ERROR)

    assert failures.attempt(0) == 1
    assert failures.failed(0, 41, ERROR) == Decision("retry", 41, attempts=1, delay=1.0)


def test_after_a_success_counting_starts_over() -> None:
    failures = policy(DeadLetterQueue("orders.dlq", max_retries=1))
    failures.failed(0, 40, ERROR)

    failures.succeeded(0)

    assert failures.attempt(0) == 1
    assert failures.failed(0, 40, ERROR) == Decision("retry", 40, attempts=1, delay=1.0)


def test_after_a_partition_is_forgotten_counting_starts_over() -> None:
    failures = policy()
    failures.failed(0, 40, ERROR)
    failures.failed(0, 40, ERROR)

    failures.forget(0)

    assert failures.attempt(0) == 1
    assert failures.failed(0, 40, ERROR) == Decision("retry", 40, attempts=1, delay=1.0)


def test_succeeding_or_forgetting_an_untouched_partition_is_harmless() -> None:
    failures = policy()

    failures.succeeded(5)
    failures.forget(5)

    assert failures.attempt(5) == 1


def test_partitions_are_counted_independently() -> None:
    failures = policy(DeadLetterQueue("orders.dlq", max_retries=1))
    failures.failed(0, 40, ERROR)

    other = failures.failed(1, 7, ERROR)
    again = failures.failed(0, 40, ERROR)

    assert other == Decision("retry", 7, attempts=1, delay=1.0)
    assert again == Decision("dispatch", 40, attempts=2)
    assert failures.attempt(1) == 2


def test_forgetting_one_partition_keeps_the_count_of_the_others() -> None:
    failures = policy()
    failures.failed(0, 40, ERROR)
    failures.failed(1, 7, ERROR)

    failures.forget(0)

    assert (failures.attempt(0), failures.attempt(1)) == (1, 2)


# --- progress marked between failures ----------------------------------------------------


def test_by_default_the_count_goes_on_when_progress_was_marked_since_the_last_failure() -> None:
    failures = policy(DeadLetterQueue("orders.dlq", max_retries=2))

    decisions = [failures.failed(0, offset, ERROR) for offset in (40, 41, 42)]

    assert decisions == [
        Decision("retry", 40, attempts=1, delay=1.0),
        Decision("retry", 41, attempts=2, delay=2.0),
        Decision("dispatch", 42, attempts=3),
    ]


def test_an_independent_dlq_starts_over_at_one_when_progress_was_marked() -> None:
    failures = policy(DeadLetterQueue("orders.dlq", max_retries=2, independent=True))
    failures.failed(0, 40, ERROR)
    failures.failed(0, 40, ERROR)

    moved = failures.failed(0, 41, ERROR)

    assert moved == Decision("retry", 41, attempts=1, delay=1.0)
    assert failures.attempt(0) == 2


def test_an_independent_dlq_still_counts_failures_at_the_same_offset() -> None:
    failures = policy(DeadLetterQueue("orders.dlq", max_retries=1, independent=True))

    decisions = [failures.failed(0, 40, ERROR) for _ in range(2)]

    assert decisions == [Decision("retry", 40, attempts=1, delay=1.0), Decision("dispatch", 40, attempts=2)]


# --- messages that do not decode ---------------------------------------------------------


def test_with_a_dlq_a_poison_message_is_given_up_at_once_at_its_own_offset() -> None:
    failures = policy(DeadLetterQueue("orders.dlq", max_retries=5))

    assert failures.failed(0, 40, ERROR, poison_offset=42) == Decision("dispatch", 42, attempts=1)


def test_a_poison_message_after_other_failures_is_given_up_with_the_current_attempt_number() -> None:
    failures = policy(DeadLetterQueue("orders.dlq", max_retries=5))
    failures.failed(0, 40, ERROR)
    failures.failed(0, 40, ERROR)

    decision = failures.failed(0, 40, ERROR, poison_offset=42)

    assert decision == Decision("dispatch", 42, attempts=3)
    assert failures.attempt(0) == 1


def test_a_poison_message_with_a_dlq_without_a_topic_is_skipped_at_once() -> None:
    failures = policy(DeadLetterQueue(None, max_retries=5))

    assert failures.failed(0, 40, ERROR, poison_offset=42) == Decision("skip", 42, attempts=1)


def test_retry_decode_errors_counts_a_poison_message_like_any_other_error() -> None:
    failures = policy(DeadLetterQueue("orders.dlq", max_retries=1, retry_decode_errors=True))

    decisions = [failures.failed(0, 40, ERROR, poison_offset=42) for _ in range(2)]

    assert decisions == [Decision("retry", 40, attempts=1, delay=1.0), Decision("dispatch", 40, attempts=2)]


# --- fatal errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [MemoryError(), KeyboardInterrupt(), SystemExit(1), asyncio.CancelledError(), GeneratorExit()],
    ids=lambda error: type(error).__name__,
)
def test_process_level_errors_and_cancellation_are_fatal(error: BaseException) -> None:
    assert is_fatal(error)


@pytest.mark.parametrize(
    "error",
    [ValueError("bad"), RuntimeError("boom"), KeyError("id"), TimeoutError()],
    ids=lambda error: type(error).__name__,
)
def test_ordinary_handler_errors_are_not_fatal(error: BaseException) -> None:
    assert not is_fatal(error)


def test_a_subclass_of_a_fatal_error_is_fatal() -> None:
    class OutOfBuffers(MemoryError):
        pass

    assert is_fatal(OutOfBuffers())


# --- faults the handler did not cause -----------------------------------------------------


class ServiceUnavailable(Exception):
    pass


class OrderRejected(Exception):
    pass


def raised_from(cause: BaseException) -> RuntimeError:
    try:
        raise RuntimeError("the handler's wrapper") from cause
    except RuntimeError as error:
        return error


@pytest.mark.parametrize(
    "fault",
    [
        KafkaTimeoutError(),
        KafkaConnectionError("Unable to bootstrap"),
        NotLeaderForPartitionError(),
        ClusterConnectionError("cannot connect to cluster 'analytics'"),
        raised_from(RequestTimedOutError()),
        ExceptionGroup("two produces", [KafkaTimeoutError(), NotLeaderForPartitionError()]),
    ],
    ids=repr,
)
def test_an_infrastructure_fault_waits_as_long_as_it_lasts_and_spends_no_attempt(fault: Exception) -> None:
    failures = policy(DeadLetterQueue("orders.dlq", max_retries=1))

    decisions = [failures.failed(0, 40, fault) for _ in range(5)]

    assert [(d.action, d.offset, d.attempts, d.delay) for d in decisions] == [
        ("wait", 40, 1, 1.0),
        ("wait", 40, 1, 2.0),
        ("wait", 40, 1, 4.0),
        ("wait", 40, 1, 8.0),
        ("wait", 40, 1, 8.0),
    ]
    assert failures.attempt(0) == 1


def test_after_an_outage_the_handlers_own_failures_count_from_where_they_were() -> None:
    failures = policy(DeadLetterQueue("orders.dlq", max_retries=1))

    first = failures.failed(0, 40, ERROR)
    during = failures.failed(0, 40, KafkaTimeoutError())
    second = failures.failed(0, 40, ERROR)

    assert [(d.action, d.attempts) for d in (first, during, second)] == [
        ("retry", 1),
        ("wait", 2),
        ("dispatch", 2),
    ]


def test_a_group_holding_one_error_of_the_handlers_own_counts() -> None:
    mixed = ExceptionGroup("two produces", [KafkaTimeoutError(), ValueError("bad order")])

    assert policy().failed(0, 40, mixed).action == "retry"


def test_a_route_names_its_own_transient_errors() -> None:
    failures = FailurePolicy(BACKOFF, DeadLetterQueue("orders.dlq", max_retries=0), (ServiceUnavailable,))

    assert failures.failed(0, 40, ServiceUnavailable()).action == "wait"
    assert failures.failed(0, 40, OrderRejected()).action == "dispatch"


def test_dispatch_on_sends_the_message_to_the_dlq_at_the_first_such_error() -> None:
    failures = policy(DeadLetterQueue("orders.dlq", max_retries=5, dispatch_on=(OrderRejected,)))

    assert failures.failed(0, 40, OrderRejected()) == Decision("dispatch", 40, attempts=1)
    assert failures.failed(0, 41, ERROR).action == "retry"


def test_a_wait_ends_when_the_batch_succeeds_so_the_next_outage_waits_from_the_start() -> None:
    failures = policy()
    failures.failed(0, 40, KafkaTimeoutError())
    failures.failed(0, 40, KafkaTimeoutError())

    failures.succeeded(0)

    assert failures.failed(0, 41, KafkaTimeoutError()).delay == 1.0


def test_error_lists_must_be_tuples_of_exception_classes() -> None:
    with pytest.raises(ConfigError, match=r"Retry\(transient=.*a tuple of exception classes"):
        Retry(transient=ServiceUnavailable)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"DeadLetterQueue\(dispatch_on=.*a tuple of exception classes"):
        DeadLetterQueue("orders.dlq", dispatch_on=("OrderRejected",))  # type: ignore[arg-type]
