"""The pytest plugin users get with the package: fixtures, and what happens when one is missing."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

INI = "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"

APP = """
from aiostream_kafka import App, Messages

app = App("plugin-app", kafka={"bootstrap_servers": "127.0.0.1:1"}, log_events=False)
seen = []

@app.route("orders")
async def on_orders(messages: Messages[bytes]) -> None:
    seen.extend(m.value for m in messages)
    await app.producer.produce("orders.seen", b"ok")
"""

TEST = """
from userapp import seen

async def test_orders(kafka_testing):
    await kafka_testing.feed("orders", [b"a", b"b"])
    assert seen == [b"a", b"b"]
    assert len(kafka_testing.produced("orders.seen")) == 1  # one batch
"""


def test_the_ini_option_names_the_app_for_the_kafka_testing_fixture(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(userapp=APP, test_user=TEST)
    pytester.makeini(INI + "aiostream_kafka_app = userapp:app\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_without_an_app_the_fixture_says_how_to_name_one(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user="async def test_orders(kafka_testing):\n    pass\n")
    pytester.makeini(INI)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*set aiostream_kafka_app = module:app*or define a fixture named kafka_app*"]
    )


def test_a_wrong_app_path_is_reported_with_the_option(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(userapp=APP, test_user="async def test_orders(kafka_testing):\n    pass\n")
    pytester.makeini(INI + "aiostream_kafka_app = userapp:ap\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*aiostream_kafka_app = userapp:ap*"])
