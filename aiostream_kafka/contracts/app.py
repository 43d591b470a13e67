"""The contract of ``App(...)``: its settings and its clusters, checked when the app is made."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from aiostream_kafka.config import Cluster, KafkaSettings
from aiostream_kafka.contracts.checks import is_seconds, is_text, is_whole_number
from aiostream_kafka.contracts.cluster import check_cluster_name, check_known_cluster
from aiostream_kafka.contracts.codecs import check_format
from aiostream_kafka.errors import ConfigError
from aiostream_kafka.runtime.backoff import Backoff


def check_settings(
    *,
    name: object,
    concurrency: object,
    seconds: Mapping[str, object],
    optional_seconds: Mapping[str, object],
    backoffs: Mapping[str, object],
    producer_format: object,
) -> None:
    """``seconds``/``optional_seconds``: durations by setting name (the optional ones may be None);
    ``backoffs``: ``Backoff`` settings by name."""
    if not is_text(name):
        raise ConfigError("App(name=...) must be a non-empty string; it is the default client and group id")
    if not is_whole_number(concurrency, 1):
        raise ConfigError(f"App(concurrency=...) must be a positive integer, not {concurrency!r}")
    for setting, value, optional in (
        *((setting, value, False) for setting, value in seconds.items()),
        *((setting, value, True) for setting, value in optional_seconds.items()),
    ):
        if not (optional and value is None) and not is_seconds(value):
            allowed = "positive seconds or None" if optional else "positive seconds"
            raise ConfigError(f"App({setting}=...) must be {allowed}, not {value!r}")
    for setting, backoff in backoffs.items():
        if not isinstance(backoff, Backoff):
            raise ConfigError(f"App({setting}=...) must be an aiostream_kafka.Backoff(...), not {backoff!r}")
    check_format(producer_format, "App(producer_format=...)")


def declared_clusters(
    kafka: Mapping[str, Any] | None, clusters: Mapping[str, Mapping[str, Any]], primary: str
) -> tuple[Cluster, dict[str, Cluster]]:
    """The primary cluster and the named others, each name and each one's settings checked."""
    check_cluster_name(primary, "App(primary=...)")
    if not isinstance(clusters, Mapping):
        raise ConfigError(
            f"App(clusters=...) must be a mapping of cluster names to Kafka settings, "
            f"not {type(clusters).__name__}"
        )
    named = {
        check_cluster_name(name, "App(clusters=...)"): Cluster(
            name, KafkaSettings.parse(settings, where=f"cluster {name!r}")
        )
        for name, settings in clusters.items()
    }
    if kafka is not None:
        return Cluster(primary, KafkaSettings.parse(kafka, where="App(kafka=...)")), named
    if primary in named:
        return named.pop(primary), named
    if named:
        raise ConfigError(
            f"App(primary={primary!r}) names no cluster in clusters= ({', '.join(named)}); "
            f"pass kafka={{...}} for the primary or name one of them"
        )
    raise ConfigError(
        "App needs the primary cluster's settings: App(kafka={'bootstrap_servers': 'host:9092'})"
    )


def check_cluster_choices(
    clusters: Collection[str], *, producer_cluster: str | None, jobs_cluster: str | None
) -> None:
    """The clusters the app's settings name are among its own."""
    check_known_cluster(producer_cluster, clusters, "App(producer_cluster=...)")
    check_known_cluster(jobs_cluster, clusters, "App(jobs_cluster=...)")
