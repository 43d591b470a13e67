"""Producing: one instrumented producer per cluster, and the registry that names them."""

from aiostream_kafka.producing.producer import Producer, ProducerRecord
from aiostream_kafka.producing.registry import ProducerRegistry

__all__ = ["Producer", "ProducerRecord", "ProducerRegistry"]
