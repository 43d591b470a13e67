"""examples/multi_cluster.py, as its author would test it: no broker, both clusters captured."""

from __future__ import annotations

import pytest

from aiostream_kafka.testing import TestApp
from examples.multi_cluster import SECONDARY, Event


async def test_an_event_on_the_primary_is_forwarded_to_the_secondary_and_consumed_there(
    kafka_testing: TestApp, capsys: pytest.CaptureFixture[str]
) -> None:
    await kafka_testing.feed("example", [Event(1, "hello"), Event(2, "world")])

    forwarded = kafka_testing.produced("example2", cluster=SECONDARY)
    assert [m.payload for m in forwarded] == [Event(1, "hello", True), Event(2, "world", True)]
    assert [m.key for m in forwarded] == [b"1", b"2"]
    assert kafka_testing.produced("example2") == []  # not on the primary
    assert kafka_testing.committed("example") == 2
    assert kafka_testing.committed("example2", cluster=SECONDARY) == 2
    printed = capsys.readouterr().out
    assert f"[{SECONDARY}] example2@1: #2 'world' (forwarded from the primary)" in printed


async def test_an_event_produced_straight_to_the_secondary_says_so(
    kafka_testing: TestApp, capsys: pytest.CaptureFixture[str]
) -> None:
    await kafka_testing.feed("example2", [Event(7, "direct")])

    assert "#7 'direct' (produced directly)" in capsys.readouterr().out
    assert kafka_testing.produced("example2", cluster=SECONDARY) == []
