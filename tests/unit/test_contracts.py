"""Checks of what users declare (contracts/): the primitive checks, the handler's name, and a
cluster nobody defined refused where it is named."""

from __future__ import annotations

import asyncio
import functools
import re
from typing import Any

import pytest

from aiostream_kafka import (
    App,
    Backoff,
    ConfigError,
    Consumer,
    DeadLetterQueue,
    Messages,
    UnknownClusterError,
)
from aiostream_kafka.contracts.checks import callable_name, is_number, is_seconds, is_whole_number
from aiostream_kafka.errors import HandlerCancelledError
from aiostream_kafka.routing.routes import Routes

PRIMARY = {"bootstrap_servers": "127.0.0.1:1"}
SECONDARY = {"bootstrap_servers": "127.0.0.1:2"}


def two_clusters(**options: Any) -> App:
    return App("svc", kafka=PRIMARY, clusters={"analytics": SECONDARY}, log_events=False, **options)


async def handle(messages: Messages[Any]) -> None:
    pass


async def handle_for(messages: Messages[Any], *, tenant: str) -> None:
    pass


def handle_synchronously(messages: Messages[Any]) -> None:
    pass


class OrdersConsumer(Consumer):
    async def consume(self, messages: Messages[Any]) -> None:
        pass


# --- the primitive checks ------------------------------------------------------------------


@pytest.mark.parametrize("value", [True, False, 1.0, "1", None])
def test_a_whole_number_is_an_int_and_never_a_bool(value: object) -> None:
    assert not is_whole_number(value)


def test_a_whole_number_has_its_minimum() -> None:
    assert is_whole_number(0, 0)
    assert is_whole_number(5, 1)
    assert not is_whole_number(-1, 0)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), True, "1"])
def test_a_number_is_finite_and_not_a_bool(value: object) -> None:
    assert not is_number(value)


@pytest.mark.parametrize(("value", "seconds"), [(0.5, True), (3, True), (0, False), (-1.0, False)])
def test_seconds_are_above_zero(value: float, seconds: bool) -> None:
    assert is_seconds(value) is seconds


def test_a_bool_is_not_a_concurrency() -> None:
    with pytest.raises(
        ConfigError, match=r"^App\(concurrency=\.\.\.\) must be a positive integer, not True$"
    ):
        App("svc", kafka=PRIMARY, concurrency=True)


def test_a_backoff_is_checked_like_a_routes_retry() -> None:
    with pytest.raises(ConfigError, match=r"^Backoff\(initial=5, maximum=1\): need 0 <= initial <= maximum"):
        Backoff(initial=5, maximum=1)
    with pytest.raises(ConfigError, match=r"^Backoff\(jitter=1\): a fraction of the delay"):
        Backoff(jitter=1)
    with pytest.raises(ConfigError, match=r"every value must be a finite number$"):
        Backoff(initial=float("nan"))


def test_the_apps_backoffs_must_be_backoffs() -> None:
    with pytest.raises(
        ConfigError, match=r"^App\(retry_backoff=\.\.\.\) must be an aiostream_kafka\.Backoff"
    ):
        App("svc", kafka=PRIMARY, retry_backoff=30)  # type: ignore[arg-type]


# --- a handler's name ----------------------------------------------------------------------


def test_a_sync_handler_is_named_by_module_and_qualname_not_by_its_address() -> None:
    with pytest.raises(ConfigError) as raised:
        Routes().topic("orders", handler=handle_synchronously)  # type: ignore[arg-type]

    assert str(raised.value) == (
        f"route for topic 'orders': the handler {__name__}:handle_synchronously must be an async def function"
    )


def test_a_sync_job_is_named_by_module_and_qualname() -> None:
    app = two_clusters()

    def send_email(to: str) -> None: ...

    with pytest.raises(ConfigError) as raised:
        app.job(name="send_email")(send_email)  # type: ignore[arg-type]

    assert str(raised.value) == (
        f"job 'send_email': {__name__}:{send_email.__qualname__} must be an async def function"
    )
    assert "<locals>.send_email" in str(raised.value)


@pytest.mark.parametrize(
    ("target", "name"),
    [
        (handle, f"{__name__}:handle"),
        (OrdersConsumer, f"{__name__}:OrdersConsumer"),
        (functools.partial(handle_for, tenant="eu"), f"{__name__}:handle_for"),  # what runs
        (OrdersConsumer(), f"{__name__}:OrdersConsumer"),  # an object: its class
    ],
)
def test_callables_are_named_module_colon_qualname(target: object, name: str) -> None:
    assert callable_name(target) == name


def test_a_routes_handler_name_is_what_info_and_events_show() -> None:
    routes = Routes()

    assert routes.topic("orders", handler=handle).handler_name == f"{__name__}:handle"
    assert routes.topic("clicks", consumer=OrdersConsumer).handler_name == f"{__name__}:OrdersConsumer"
    partial = functools.partial(handle_for, tenant="eu")
    assert routes.topic("views", handler=partial).handler_name == f"{__name__}:handle_for"


async def test_a_handlers_failure_names_it_by_module_and_qualname() -> None:
    app = two_clusters()

    @app.route("orders")
    async def on_orders(messages: Messages[bytes]) -> None:
        raise asyncio.CancelledError  # nothing cancelled it: a failure of this batch

    async with app.testing(attempts=1) as t:
        with pytest.raises(HandlerCancelledError) as raised:
            await t.feed("orders", [b"x"])

    assert (
        str(raised.value)
        == f"{__name__}:{on_orders.__qualname__} raised CancelledError, but nothing cancelled it"
    )


# --- a cluster nobody defined, refused where it is named ------------------------------------


@pytest.mark.parametrize(
    ("declare", "where"),
    [
        (
            lambda app: app.routes.topic("clicks", handler=handle, cluster="analytcs"),
            "route for topic 'clicks'",
        ),
        (lambda app: app.route("clicks", cluster="analytcs")(handle), "route for topic 'clicks'"),
        (lambda app: app.topics.declare("audit", cluster="analytcs"), "app.topics.declare('audit')"),
        (lambda app: app.job(cluster="analytcs", name="crunch")(handle), "job 'crunch'"),
        (lambda app: app.web.enable(cluster="analytcs"), "app.web.enable(cluster=...)"),
    ],
)
def test_a_declaration_naming_an_unknown_cluster_fails_at_once_suggesting_the_closest(
    declare: Any, where: str
) -> None:
    app = two_clusters()
    expected = (
        f"{where}: no cluster named 'analytcs'; the app has: primary, analytics; did you mean 'analytics'?"
    )

    with pytest.raises(UnknownClusterError, match=f"^{re.escape(expected)}$"):
        declare(app)


@pytest.mark.parametrize("setting", ["producer_cluster", "jobs_cluster"])
def test_the_apps_own_cluster_settings_are_checked_when_it_is_made(setting: str) -> None:
    expected = (
        f"App({setting}=...): no cluster named 'analytcs'; the app has: primary, analytics; did you mean"
    )

    with pytest.raises(UnknownClusterError, match=f"^{re.escape(expected)}"):
        two_clusters(**{setting: "analytcs"})


def test_an_unknown_cluster_with_nothing_close_is_listed_without_a_guess() -> None:
    app = two_clusters()

    with pytest.raises(UnknownClusterError) as raised:
        app.routes.topic("clicks", handler=handle, cluster="warehouse")

    assert (
        str(raised.value)
        == "route for topic 'clicks': no cluster named 'warehouse'; the app has: primary, analytics"
    )


def test_a_dead_letter_queue_on_an_unknown_cluster_fails_at_once() -> None:
    app = two_clusters()

    with pytest.raises(
        UnknownClusterError, match=r"the dead-letter queue names cluster 'analytcs'.*did you mean"
    ):
        app.routes.topic(
            "orders", handler=handle, dead_letter_queue=DeadLetterQueue("dlq", cluster="analytcs")
        )
