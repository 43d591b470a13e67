"""Routes are checked as they are declared, and every error names the route's topic."""

from __future__ import annotations

import re
from typing import Any

import pytest

from aiostream_kafka import App, ConfigError, Consumer, Messages
from aiostream_kafka.routing.routes import Routes

PRIMARY = {"bootstrap_servers": "127.0.0.1:19092"}


async def handle(messages: Messages[Any]) -> None:
    pass


def handle_synchronously(messages: Messages[Any]) -> None:
    pass


class OrdersConsumer(Consumer):
    async def consume(self, messages: Messages[Any]) -> None:
        pass


class LazyConsumer(Consumer):
    """Forgets to implement consume."""


class SyncConsumer(Consumer):
    def consume(self, messages: Messages[Any]) -> None:  # type: ignore[override]
        pass


class NotAConsumer:
    async def consume(self, messages: Messages[Any]) -> None:
        pass


# --- what handles a route ----------------------------------------------------------------


def test_an_async_handler_is_accepted_and_returned_as_a_route() -> None:
    route = Routes().topic("orders", handler=handle, max_messages=10)

    assert route.topic == "orders"
    assert route.handler is handle
    assert route.max_messages == 10


def test_a_consumer_subclass_is_accepted() -> None:
    route = Routes().topic("orders", consumer=OrdersConsumer)

    assert route.consumer is OrdersConsumer
    assert route.handler_name.endswith("OrdersConsumer")


def test_routes_keep_the_order_they_were_declared_in() -> None:
    routes = Routes()
    routes.topic("b", handler=handle)
    routes.topic("a", handler=handle)

    assert [route.topic for route in routes] == ["b", "a"]
    assert len(routes) == 2


def test_the_route_decorator_registers_the_handler_and_returns_it_unchanged() -> None:
    app = App("svc", kafka=PRIMARY, log_events=False)

    decorated = app.route("orders", max_messages=5)(handle)

    assert decorated is handle
    (route,) = list(app.routes)
    assert (route.topic, route.handler, route.max_messages) == ("orders", handle, 5)


def test_a_sync_handler_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"^route for topic 'orders': the handler .* must be an async def"):
        Routes().topic("orders", handler=handle_synchronously)  # type: ignore[arg-type]


def test_the_route_decorator_rejects_a_sync_handler() -> None:
    app = App("svc", kafka=PRIMARY, log_events=False)

    with pytest.raises(ConfigError, match=r"^route for topic 'orders': the handler .* must be an async def"):
        app.route("orders")(handle_synchronously)  # type: ignore[arg-type]


def test_a_consumer_that_is_not_a_consumer_subclass_is_rejected() -> None:
    with pytest.raises(
        ConfigError,
        match=r"^route for topic 'orders': consumer= must be a subclass of aiostream_kafka\.Consumer",
    ):
        Routes().topic("orders", consumer=NotAConsumer)  # type: ignore[arg-type]


def test_a_consumer_instance_instead_of_a_class_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"^route for topic 'orders': consumer= must be a subclass"):
        Routes().topic("orders", consumer=OrdersConsumer())  # type: ignore[arg-type]


def test_a_consumer_that_does_not_implement_consume_is_rejected() -> None:
    with pytest.raises(
        ConfigError, match=r"^route for topic 'orders': LazyConsumer must implement async def consume"
    ):
        Routes().topic("orders", consumer=LazyConsumer)


def test_a_consumer_with_a_sync_consume_is_rejected() -> None:
    with pytest.raises(
        ConfigError, match=r"^route for topic 'orders': SyncConsumer\.consume must be async def"
    ):
        Routes().topic("orders", consumer=SyncConsumer)


def test_both_a_handler_and_a_consumer_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"^route for topic 'orders': give exactly one of handler="):
        Routes().topic("orders", handler=handle, consumer=OrdersConsumer)


def test_neither_a_handler_nor_a_consumer_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"^route for topic 'orders': give exactly one of handler="):
        Routes().topic("orders")


# --- where a route consumes from ---------------------------------------------------------


def test_a_named_cluster_and_inline_settings_together_are_rejected() -> None:
    with pytest.raises(
        ConfigError, match=r"^route for topic 'orders': give either cluster= .* or kafka= .*, not both"
    ):
        Routes().topic("orders", handler=handle, cluster="analytics", kafka=PRIMARY)


# --- batching and offsets ----------------------------------------------------------------


@pytest.mark.parametrize("max_messages", [0, -1, 2.5, "10"])
def test_max_messages_must_be_a_positive_integer(max_messages: Any) -> None:
    expected = f"route for topic 'orders': max_messages must be a positive integer, not {max_messages!r}"

    with pytest.raises(ConfigError, match=f"^{re.escape(expected)}$"):
        Routes().topic("orders", handler=handle, max_messages=max_messages)


@pytest.mark.parametrize("max_wait", [-1, float("nan"), float("inf"), "500"])
def test_max_wait_must_be_seconds_from_zero(max_wait: Any) -> None:
    expected = f"route for topic 'orders': max_wait must be seconds >= 0, not {max_wait!r}"

    with pytest.raises(ConfigError, match=f"^{re.escape(expected)}$"):
        Routes().topic("orders", handler=handle, max_wait=max_wait)


def test_max_wait_may_be_zero() -> None:
    assert Routes().topic("orders", handler=handle, max_wait=0).max_wait == 0


def test_max_wait_in_milliseconds_still_works_and_warns_at_the_users_line() -> None:
    with pytest.warns(
        DeprecationWarning, match=r"max_wait_ms= is deprecated; use max_wait= \(seconds\)"
    ) as warned:
        route = Routes().topic("orders", handler=handle, max_wait_ms=250)

    assert route.max_wait == 0.25
    assert [w.filename for w in warned] == [__file__]
    with pytest.warns(DeprecationWarning, match=r"Route.max_wait_ms is deprecated; use Route.max_wait"):
        assert route.max_wait_ms == 250


@pytest.mark.parametrize("max_wait_ms", [-1, 0.5, "500", True])
def test_max_wait_in_the_old_milliseconds_must_be_a_whole_number(max_wait_ms: Any) -> None:
    expected = f"route for topic 'orders': max_wait_ms must be a whole number >= 0, not {max_wait_ms!r}"

    with (
        pytest.warns(DeprecationWarning, match="max_wait_ms"),
        pytest.raises(ConfigError, match=f"^{re.escape(expected)}$"),
    ):
        Routes().topic("orders", handler=handle, max_wait_ms=max_wait_ms)


@pytest.mark.parametrize("initial_offset", ["smallest", "EARLIEST", ""])
def test_initial_offset_must_be_earliest_or_latest(initial_offset: str) -> None:
    expected = (
        f"route for topic 'orders': initial_offset must be 'earliest' or 'latest', not {initial_offset!r}"
    )

    with pytest.raises(ConfigError, match=f"^{re.escape(expected)}$"):
        Routes().topic("orders", handler=handle, initial_offset=initial_offset)


# --- topic names -------------------------------------------------------------------------


@pytest.mark.parametrize("topic", ["", "orders/eu", "orders eu", "o" * 250, "ordres!", ".", "..", "orders\n"])
def test_a_topic_name_kafka_would_refuse_is_rejected_naming_it(topic: str) -> None:
    expected = (
        f"route for topic {topic!r}: "
        "a topic name is 1 to 249 of the characters a-z A-Z 0-9 . _ -, other than '.' and '..'"
    )

    with pytest.raises(ConfigError, match=f"^{re.escape(expected)}$"):
        Routes().topic(topic, handler=handle)


def test_a_topic_name_of_249_allowed_characters_is_accepted() -> None:
    topic = "a.B_1-" + "x" * 243

    assert Routes().topic(topic, handler=handle).topic == topic


# --- the App constructor -----------------------------------------------------------------


def test_an_app_without_kafka_settings_says_how_to_give_them() -> None:
    with pytest.raises(ConfigError, match=r"App needs the primary cluster's settings: App\(kafka="):
        App("svc")


def test_an_app_whose_primary_is_not_among_its_clusters_lists_them() -> None:
    with pytest.raises(
        ConfigError, match=r"^App\(primary='main'\) names no cluster in clusters= \(analytics\)"
    ):
        App("svc", clusters={"analytics": PRIMARY}, primary="main")


@pytest.mark.parametrize("concurrency", [0, -3, 1.5])
def test_concurrency_must_be_a_positive_integer(concurrency: Any) -> None:
    expected = f"App(concurrency=...) must be a positive integer, not {concurrency!r}"

    with pytest.raises(ConfigError, match=f"^{re.escape(expected)}$"):
        App("svc", kafka=PRIMARY, concurrency=concurrency)


def test_the_app_name_must_not_be_empty() -> None:
    with pytest.raises(ConfigError, match=r"^App\(name=\.\.\.\) must be a non-empty string"):
        App("", kafka=PRIMARY)


def test_shutdown_timeout_must_be_positive() -> None:
    with pytest.raises(ConfigError, match=r"^App\(shutdown_timeout=\.\.\.\) must be positive seconds, not 0"):
        App("svc", kafka=PRIMARY, shutdown_timeout=0)


@pytest.mark.parametrize(
    "setting", ["shutdown_timeout", "revoke_timeout", "statistics_interval", "slow_batch_after"]
)
@pytest.mark.parametrize("seconds", [float("nan"), float("inf"), -1.0, "30", True])
def test_timeouts_are_positive_numbers_of_seconds_and_nan_is_not_one(setting: str, seconds: Any) -> None:
    """nan compares false to everything: it passed ``<= 0`` and made ``stop()`` raise."""
    with pytest.raises(ConfigError, match=rf"^App\({setting}=\.\.\.\) must be positive seconds"):
        App("svc", kafka=PRIMARY, **{setting: seconds})


@pytest.mark.parametrize(
    ("clusters", "where", "name"),
    [
        ({"": PRIMARY}, "App(clusters=...)", ""),
        ({"a/b": PRIMARY}, "App(clusters=...)", "a/b"),
        ({"a\nb": PRIMARY}, "App(clusters=...)", "a\nb"),
        ({"x" * 65: PRIMARY}, "App(clusters=...)", "x" * 65),
    ],
)
def test_cluster_names_are_letters_digits_dots_underscores_and_dashes(
    clusters: dict[str, Any], where: str, name: str
) -> None:
    expected = f"{where}: cluster name {name!r} is not allowed; use 1 to 64 letters, digits, '.', '_' or '-'"

    with pytest.raises(ConfigError, match=f"^{re.escape(expected)}$"):
        App("svc", kafka=PRIMARY, clusters=clusters)


def test_the_primary_clusters_name_follows_the_same_rule() -> None:
    with pytest.raises(ConfigError, match=r"^App\(primary=\.\.\.\): cluster name 'main cluster' is not"):
        App("svc", kafka=PRIMARY, primary="main cluster")
    assert App("svc", kafka=PRIMARY, primary="eu-west_1.main").topology.primary.name == "eu-west_1.main"


def test_bad_primary_settings_are_named_as_the_apps_kafka_settings() -> None:
    with pytest.raises(ConfigError, match=r"^App\(kafka=\.\.\.\): unknown Kafka setting 'bootstrap_server'"):
        App("svc", kafka={"bootstrap_server": "127.0.0.1:19092"})


def test_bad_named_cluster_settings_name_the_cluster() -> None:
    with pytest.raises(ConfigError, match=r"^cluster 'analytics': 'enable\.auto\.commit' cannot be set here"):
        App("svc", kafka=PRIMARY, clusters={"analytics": {**PRIMARY, "enable.auto.commit": True}})


def test_a_mistyped_option_names_the_route_and_suggests_the_option() -> None:
    app = App("svc", kafka={"bootstrap_servers": "127.0.0.1:19092"})

    with pytest.raises(
        ConfigError,
        match=r"route for topic 'orders': unknown option 'max_message'; did you mean 'max_messages'\?",
    ):

        @app.route("orders", max_message=10)  # type: ignore[call-arg]
        async def on_orders(messages: Messages[Any]) -> None: ...


@pytest.mark.parametrize("option", ["max_messages", "max_wait"])
def test_a_bool_is_not_a_number_of_messages_or_seconds(option: str) -> None:
    routes = Routes()

    async def handler(messages: Messages[Any]) -> None: ...

    settings: dict[str, Any] = {option: True}
    with pytest.raises(ConfigError, match=rf"route for topic 'orders': {option} must be"):
        routes.topic("orders", handler=handler, **settings)


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"revoke_timeout": 0}, "revoke_timeout"),
        ({"shutdown_timeout": -1}, "shutdown_timeout"),
        ({"statistics_interval": 0}, "statistics_interval"),
        ({"loop_block_threshold": 0}, "loop_block_threshold"),
        ({"producer_format": "xml"}, "producer_format"),
    ],
)
def test_app_settings_are_checked_when_the_app_is_made(options: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigError, match=rf"App\({named}=\.\.\.\)"):
        App("svc", kafka={"bootstrap_servers": "127.0.0.1:19092"}, **options)
