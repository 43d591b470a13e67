"""Observing the runtime: the Monitor event bus and what subscribes to it."""

from aiostream_kafka.instrumentation.logging import LoggingListener
from aiostream_kafka.instrumentation.monitor import EVENTS, Event, Monitor
from aiostream_kafka.instrumentation.opentelemetry import OpenTelemetryListener

__all__ = ["EVENTS", "Event", "LoggingListener", "Monitor", "OpenTelemetryListener"]
