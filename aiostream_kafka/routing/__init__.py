"""Declaring what to consume (routes) and resolving it into clusters and subscription groups."""

from aiostream_kafka.deprecation import module_getattr
from aiostream_kafka.routing.route import Route
from aiostream_kafka.routing.routes import Routes
from aiostream_kafka.routing.topology import RoutedTopic, SubscriptionGroup, Topology
from aiostream_kafka.topic_config import TopicConfig

__all__ = ["Route", "RoutedTopic", "Routes", "SubscriptionGroup", "TopicConfig", "Topology"]

__getattr__ = module_getattr(
    __name__,
    {"Topic": ("aiostream_kafka.routing.topology:RoutedTopic", "aiostream_kafka.routing.RoutedTopic")},
)
