"""Dead-letter queues and retries as declared, and how routes and the topology check them."""

from __future__ import annotations

import re
from typing import Any

import pytest

from aiostream_kafka import (
    App,
    Backoff,
    ConfigError,
    DeadLetterQueue,
    DecodeError,
    Message,
    Messages,
    Retry,
    UnknownClusterError,
)
from aiostream_kafka.processing.dead_letter import dead_letter_headers
from aiostream_kafka.routing.topology import RoutedTopic, Topology

PRIMARY = {"bootstrap_servers": "127.0.0.1:19092"}
SECONDARY = {"bootstrap_servers": "127.0.0.1:29092"}


async def handle(messages: Messages[Any]) -> None:
    pass


def make_app(**options: Any) -> App:
    options.setdefault("kafka", PRIMARY)
    return App("svc", log_events=False, **options)


def topic_of(topology: Topology, name: str, cluster: str | None = None) -> RoutedTopic:
    (topic,) = [
        topic
        for group in topology.subscription_groups
        for topic in group.topics
        if topic.name == name and (cluster is None or topic.cluster == cluster)
    ]
    return topic


def failed_message(key: bytes | None = b"order-7", **fields: Any) -> Message[Any]:
    fields.setdefault("raw_headers", [("trace", b"abc"), ("tenant", b"acme")])
    return Message(
        topic="orders", partition=3, offset=42, key=key, value=b"{}", cluster="analytics", **fields
    )


def headers_for(
    message: Message[Any], error: BaseException | None = None, attempts: int = 4
) -> dict[str, bytes | None]:
    headers = dead_letter_headers(
        message, error=error or ValueError("bad total"), attempts=attempts, group_id="billing"
    )
    return dict(headers)


# --- DeadLetterQueue ---------------------------------------------------------------------


def test_a_dead_letter_queue_defaults_to_three_retries_on_the_source_cluster() -> None:
    queue = DeadLetterQueue("orders.dlq")

    assert (queue.topic, queue.max_retries, queue.cluster) == ("orders.dlq", 3, None)
    assert not queue.independent
    assert not queue.retry_decode_errors


@pytest.mark.parametrize("max_retries", [-1, True, False, 2.0, "3", None])
def test_max_retries_must_be_a_whole_number_of_at_least_zero(max_retries: Any) -> None:
    expected = f"DeadLetterQueue(max_retries={max_retries!r}): need a whole number >= 0"

    with pytest.raises(ConfigError, match=f"^{re.escape(expected)}$"):
        DeadLetterQueue("orders.dlq", max_retries=max_retries)


def test_max_retries_may_be_zero() -> None:
    assert DeadLetterQueue("orders.dlq", max_retries=0).max_retries == 0


@pytest.mark.parametrize(
    "topic", ["", b"orders.dlq", 7, "bad topic!", "orders/dlq", "x" * 250, "..", "dlq\n"]
)
def test_the_topic_must_be_a_topic_name_as_routes_have_them(topic: Any) -> None:
    """Caught when declared: a name Kafka refuses made every dispatch wait 40 s for metadata."""
    expected = (
        f"DeadLetterQueue(topic={topic!r}): a topic name is 1 to 249 of the characters a-z A-Z 0-9 . _ -, "
        f"other than '.' and '..', or None to skip"
    )

    with pytest.raises(ConfigError, match=f"^{re.escape(expected)}$"):
        DeadLetterQueue(topic)


def test_a_topic_of_none_is_accepted_to_skip_messages() -> None:
    assert DeadLetterQueue(None).topic is None


# --- dead_letter_headers -----------------------------------------------------------------


def test_dead_letter_headers_keep_the_original_headers_first_then_say_where_and_why() -> None:
    headers = dead_letter_headers(
        failed_message(), error=ValueError("bad total"), attempts=4, group_id="billing"
    )

    assert headers == [
        ("trace", b"abc"),
        ("tenant", b"acme"),
        ("source_topic", b"orders"),
        ("source_partition", b"3"),
        ("source_offset", b"42"),
        ("source_cluster", b"analytics"),
        ("source_consumer_group", b"billing"),
        ("source_key", b"order-7"),
        ("error_type", b"builtins.ValueError"),
        ("error_message", b"bad total"),
        ("attempts", b"4"),
        ("decode_error", b"false"),
    ]


def test_repeated_original_headers_are_all_kept_in_order() -> None:
    message = failed_message(raw_headers=[("hop", b"1"), ("hop", b"2")])

    headers = dead_letter_headers(message, error=ValueError("x"), attempts=1, group_id="billing")

    assert headers[:2] == [("hop", b"1"), ("hop", b"2")]


def test_a_message_without_a_key_has_a_source_key_of_none() -> None:
    headers = headers_for(failed_message(key=None))

    assert "source_key" in headers
    assert headers["source_key"] is None


def test_the_error_type_is_the_module_qualified_class_name() -> None:
    class PricingError(Exception):
        pass

    headers = headers_for(failed_message(), PricingError("no price"))

    assert headers["error_type"] == (
        f"{__name__}.test_the_error_type_is_the_module_qualified_class_name.<locals>.PricingError".encode()
    )


def test_a_decode_error_is_flagged_as_one() -> None:
    error = DecodeError("cannot decode payload: bad json", topic="orders", partition=3, offset=42)

    headers = headers_for(failed_message(), error)

    assert headers["decode_error"] == b"true"
    assert headers["error_type"] == b"aiostream_kafka.errors.DecodeError"
    assert headers["error_message"] == str(error).encode()


def test_a_long_error_message_is_cut_to_4096_bytes() -> None:
    headers = headers_for(failed_message(), ValueError("x" * 5000))

    assert headers["error_message"] == b"x" * 4096


def test_an_error_message_of_exactly_4096_bytes_is_kept_whole() -> None:
    headers = headers_for(failed_message(), ValueError("y" * 4096))

    assert headers["error_message"] == b"y" * 4096


def test_the_attempts_header_is_the_number_given() -> None:
    assert headers_for(failed_message(), attempts=11)["attempts"] == b"11"


# --- Retry -------------------------------------------------------------------------------


def test_retry_defaults_to_one_second_doubling_up_to_thirty() -> None:
    assert Retry().as_backoff() == Backoff(1.0, 30.0, 2.0, 0.1)


def test_retry_as_backoff_carries_every_setting_over() -> None:
    backoff = Retry(initial=0.5, maximum=4.0, multiplier=3.0, jitter=0).as_backoff()

    assert backoff == Backoff(initial=0.5, maximum=4.0, multiplier=3.0, jitter=0)
    assert [backoff.delay(attempt) for attempt in (1, 2, 3)] == [0.5, 1.5, 4.0]


def test_retry_with_no_wait_at_all_is_allowed() -> None:
    assert Retry(initial=0, maximum=0).as_backoff().delay(3) == 0


def test_a_negative_initial_backoff_is_rejected() -> None:
    with pytest.raises(
        ConfigError,
        match=r"^Retry\(initial=-1, maximum=30\.0\): need 0 <= initial <= maximum \(seconds\)$",
    ):
        Retry(initial=-1)


def test_a_maximum_below_the_initial_backoff_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"^Retry\(initial=5, maximum=2\): need 0 <= initial <= maximum"):
        Retry(initial=5, maximum=2)


def test_retry_speaks_the_vocabulary_of_the_apps_backoff() -> None:
    assert Retry(initial=0.5, maximum=4.0).as_backoff() == Backoff(initial=0.5, maximum=4.0)


def test_retrys_old_keywords_still_work_and_warn() -> None:
    with pytest.warns(
        DeprecationWarning, match=r"Retry\(backoff=...\) is deprecated; use Retry\(initial=...\)"
    ):
        retry = Retry(backoff=0.5)
    with pytest.warns(
        DeprecationWarning, match=r"Retry\(max_backoff=...\) is deprecated; use Retry\(maximum=...\)"
    ):
        assert Retry(max_backoff=4.0) == Retry(maximum=4.0)

    assert retry == Retry(initial=0.5)


def test_retrys_old_attributes_still_work_and_warn() -> None:
    retry = Retry(initial=0.5, maximum=4.0)

    with pytest.warns(DeprecationWarning, match=r"Retry.backoff is deprecated; use Retry.initial"):
        assert retry.backoff == 0.5
    with pytest.warns(DeprecationWarning, match=r"Retry.max_backoff is deprecated; use Retry.maximum"):
        assert retry.max_backoff == 4.0


def test_a_multiplier_below_one_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"^Retry\(multiplier=0\.5\): the multiplier must be at least 1$"):
        Retry(multiplier=0.5)


def test_a_multiplier_of_one_keeps_the_backoff_constant() -> None:
    backoff = Retry(initial=2, multiplier=1, jitter=0).as_backoff()

    assert [backoff.delay(attempt) for attempt in (1, 5, 50)] == [2, 2, 2]


# --- routes ------------------------------------------------------------------------------


def test_a_route_keeps_its_retry_and_dead_letter_queue() -> None:
    app = make_app()
    retry = Retry(initial=0.5)
    queue = DeadLetterQueue("orders.dlq", max_retries=1)

    route = app.routes.topic("orders", handler=handle, retry=retry, dead_letter_queue=queue)

    assert (route.retry, route.dead_letter_queue) == (retry, queue)


def test_a_route_rejects_a_backoff_where_a_retry_is_expected() -> None:
    app = make_app()

    with pytest.raises(
        ConfigError,
        match=r"^route for topic 'orders': retry= takes aiostream_kafka\.Retry\(\.\.\.\), not Backoff\(",
    ):
        app.routes.topic("orders", handler=handle, retry=Backoff())  # type: ignore[arg-type]


@pytest.mark.parametrize("queue", ["orders.dlq", {"topic": "orders.dlq"}, Retry()])
def test_a_route_rejects_a_dead_letter_queue_that_is_not_a_dead_letter_queue(queue: Any) -> None:
    app = make_app()
    expected = (
        f"route for topic 'orders': dead_letter_queue= takes aiostream_kafka.DeadLetterQueue(...), "
        f"not {queue!r}"
    )

    with pytest.raises(ConfigError, match=f"^{re.escape(expected)}$"):
        app.routes.topic("orders", handler=handle, dead_letter_queue=queue)


def test_the_route_decorator_rejects_a_retry_that_is_not_a_retry() -> None:
    app = make_app()

    with pytest.raises(ConfigError, match=r"^route for topic 'orders': retry= takes aiostream_kafka\.Retry"):
        app.route("orders", retry=3)(handle)  # type: ignore[arg-type]


# --- the topology ------------------------------------------------------------------------


def test_the_dlq_lives_on_the_source_topics_cluster_by_default() -> None:
    app = make_app(clusters={"analytics": SECONDARY})
    app.routes.topic("orders", handler=handle, dead_letter_queue=DeadLetterQueue("orders.dlq"))

    assert topic_of(app.topology, "orders").dead_letter_cluster == "primary"


def test_the_dlq_of_a_route_on_a_named_cluster_lives_on_that_cluster_not_the_primary() -> None:
    app = make_app(clusters={"analytics": SECONDARY})
    app.routes.topic(
        "clicks", handler=handle, cluster="analytics", dead_letter_queue=DeadLetterQueue("clicks.dlq")
    )

    assert topic_of(app.topology, "clicks").dead_letter_cluster == "analytics"


def test_the_dlq_of_a_route_with_inline_settings_lives_on_that_inline_cluster() -> None:
    app = make_app()
    app.routes.topic("clicks", handler=handle, kafka=SECONDARY, dead_letter_queue=DeadLetterQueue("dlq"))

    topic = topic_of(app.topology, "clicks")

    assert app.topology.clusters[topic.cluster].inline
    assert topic.dead_letter_cluster == "127.0.0.1:29092"


def test_the_dlq_lives_on_the_cluster_it_names() -> None:
    app = make_app(clusters={"analytics": SECONDARY})
    app.routes.topic(
        "orders", handler=handle, dead_letter_queue=DeadLetterQueue("orders.dlq", cluster="analytics")
    )

    assert topic_of(app.topology, "orders").dead_letter_cluster == "analytics"


def test_a_route_without_a_dlq_still_has_its_own_cluster_as_dead_letter_cluster() -> None:
    app = make_app(clusters={"analytics": SECONDARY})
    app.routes.topic("clicks", handler=handle, cluster="analytics")

    assert topic_of(app.topology, "clicks").dead_letter_cluster == "analytics"


def test_a_dlq_on_an_unknown_cluster_is_refused_where_declared_naming_the_route_and_the_closest() -> None:
    app = make_app(clusters={"analytics": SECONDARY})

    with pytest.raises(
        UnknownClusterError,
        match=r"^route for topic 'orders': the dead-letter queue names cluster 'analytic'; "
        r"the app has: primary, analytics; did you mean 'analytics'\?$",
    ):
        app.routes.topic(
            "orders", handler=handle, dead_letter_queue=DeadLetterQueue("orders.dlq", cluster="analytic")
        )


def test_a_dlq_that_is_the_routes_own_topic_is_rejected() -> None:
    app = make_app()
    app.routes.topic("orders", handler=handle, dead_letter_queue=DeadLetterQueue("orders"))

    with pytest.raises(
        ConfigError,
        match=r"^route for topic 'orders': the dead-letter queue is the topic itself, so a failing "
        r"message would come back forever; give the DLQ its own topic$",
    ):
        _ = app.topology


def test_a_dlq_naming_the_routes_own_cluster_and_topic_is_rejected() -> None:
    app = make_app(clusters={"analytics": SECONDARY})
    app.routes.topic(
        "clicks",
        handler=handle,
        cluster="analytics",
        dead_letter_queue=DeadLetterQueue("clicks", cluster="analytics"),
    )

    with pytest.raises(ConfigError, match=r"^route for topic 'clicks': the dead-letter queue is the topic"):
        _ = app.topology


def test_a_dlq_with_the_routes_topic_name_on_another_cluster_is_allowed() -> None:
    app = make_app(clusters={"analytics": SECONDARY})
    app.routes.topic(
        "orders", handler=handle, dead_letter_queue=DeadLetterQueue("orders", cluster="analytics")
    )

    topic = topic_of(app.topology, "orders")

    assert (topic.cluster, topic.dead_letter_cluster) == ("primary", "analytics")


def test_a_long_error_message_is_clipped_without_cutting_a_character() -> None:
    headers = headers_for(failed_message(), error=ValueError("€" * 2000))

    message = headers["error_message"]
    assert message is not None
    assert len(message) <= 4096
    assert message.decode() == "€" * (len(message) // 3)


@pytest.mark.parametrize(
    "options",
    [{"jitter": 5.0}, {"jitter": -0.1}, {"initial": float("nan")}, {"maximum": float("inf")}],
)
def test_a_retry_with_out_of_range_numbers_is_rejected(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="Retry"):
        Retry(**options)


def test_an_empty_dlq_cluster_name_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"DeadLetterQueue\(cluster=''\)"):
        DeadLetterQueue("orders.dlq", cluster="")


def test_an_inactive_routes_dlq_is_checked_too() -> None:
    app = make_app()

    with pytest.raises(UnknownClusterError, match=r"route for topic 'orders'.*'nowhere'"):
        app.routes.topic(
            "orders", handler=handle, active=False, dead_letter_queue=DeadLetterQueue("x", cluster="nowhere")
        )
