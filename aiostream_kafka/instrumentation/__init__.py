"""Observing the runtime: the Monitor event bus and what subscribes to it."""

from aiostream_kafka.deprecation import module_getattr
from aiostream_kafka.instrumentation.logging import LoggingListener
from aiostream_kafka.instrumentation.monitor import EVENTS, Monitor, MonitorEvent
from aiostream_kafka.instrumentation.opentelemetry import OpenTelemetryListener

__all__ = ["EVENTS", "LoggingListener", "Monitor", "MonitorEvent", "OpenTelemetryListener"]

__getattr__ = module_getattr(
    __name__,
    {"Event": ("aiostream_kafka.instrumentation.monitor:MonitorEvent", "aiostream_kafka.MonitorEvent")},
)
