"""Running the topology: the Supervisor, one Listener per subscription group, their consumers."""

from aiostream_kafka.runtime.backoff import Backoff
from aiostream_kafka.runtime.listener import Listener
from aiostream_kafka.runtime.supervisor import Supervisor

__all__ = ["Backoff", "Listener", "Supervisor"]
