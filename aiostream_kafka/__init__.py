"""aiostream-kafka: an asyncio-native Kafka framework with first-class multi-cluster support."""

from aiostream_kafka.__about__ import __version__

__all__ = ["__version__"]
