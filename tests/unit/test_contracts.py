"""Checks of what users declare (contracts/): the primitive checks, written once."""

from __future__ import annotations

import pytest

from aiostream_kafka import App, Backoff, ConfigError
from aiostream_kafka.contracts.checks import is_number, is_seconds, is_whole_number

PRIMARY = {"bootstrap_servers": "127.0.0.1:1"}


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
