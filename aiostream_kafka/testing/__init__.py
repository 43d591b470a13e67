"""Test your routes without a broker: ``async with app.testing() as t`` (see docs/testing.md)."""

from aiostream_kafka.testing.admin import NotModelledError
from aiostream_kafka.testing.harness import DeadLetter, RecordedEvents, TestApp

__all__ = ["DeadLetter", "NotModelledError", "RecordedEvents", "TestApp"]
