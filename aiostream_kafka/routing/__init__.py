"""Declaring what to consume (routes) and resolving it into clusters and subscription groups."""

from aiostream_kafka.routing.route import Route, TopicConfig
from aiostream_kafka.routing.routes import Routes
from aiostream_kafka.routing.topology import SubscriptionGroup, Topic, Topology

__all__ = ["Route", "Routes", "SubscriptionGroup", "Topic", "TopicConfig", "Topology"]
