"""Kafka settings: both naming styles map to aiokafka's, and every mistake names what to fix."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor

from aiostream_kafka.config import RULES, VALID_KEYS, Cluster, KafkaSettings
from aiostream_kafka.errors import ConfigError

SERVERS = {"bootstrap_servers": "127.0.0.1:19092"}


def parse(**settings: Any) -> KafkaSettings:
    return KafkaSettings.parse({**SERVERS, **settings}, where="App(kafka=...)")


def parse_dotted(settings: dict[str, Any]) -> KafkaSettings:
    return KafkaSettings.parse(settings, where="App(kafka=...)")


# --- key names ---------------------------------------------------------------------------


def test_aiokafka_names_are_taken_as_they_are() -> None:
    settings = parse(client_id="svc", fetch_max_wait_ms=250, linger_ms=5)

    assert settings.client == {"client_id": "svc"}
    assert settings.consumer == {"fetch_max_wait_ms": 250}
    assert settings.producer == {"linger_ms": 5}


def test_bootstrap_dot_servers_is_bootstrap_servers() -> None:
    settings = parse_dotted({"bootstrap.servers": "127.0.0.1:19092"})

    assert settings.bootstrap_servers == ("127.0.0.1:19092",)


def test_security_protocol_dotted_maps_and_is_upper_cased() -> None:
    settings = parse_dotted(
        {
            "bootstrap.servers": "127.0.0.1:19092",
            "security.protocol": "sasl_ssl",
            "sasl.username": "u",
            "sasl.password": "p",
        }
    )

    assert settings.identity["security_protocol"] == "SASL_SSL"


def test_librdkafka_sasl_names_map_to_aiokafka_sasl_names() -> None:
    settings = parse_dotted(
        {
            "bootstrap.servers": "127.0.0.1:19092",
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanisms": "PLAIN",
            "sasl.username": "alice",
            "sasl.password": "secret",
        }
    )

    assert settings.identity["sasl_mechanism"] == "PLAIN"
    assert settings.identity["sasl_plain_username"] == "alice"
    assert settings.identity["sasl_plain_password"] == "secret"


@pytest.mark.parametrize("acks", [-1, "-1", "all"])
def test_request_required_acks_minus_one_means_all(acks: Any) -> None:
    settings = parse_dotted({"bootstrap.servers": "127.0.0.1:19092", "request.required.acks": acks})

    assert settings.producer == {"acks": "all"}


@pytest.mark.parametrize(("acks", "expected"), [("0", 0), ("1", 1), (1, 1)])
def test_acks_zero_and_one_become_integers(acks: Any, expected: int) -> None:
    assert parse(acks=acks).producer == {"acks": expected}


def test_acks_outside_zero_one_all_is_rejected_naming_the_place() -> None:
    with pytest.raises(ConfigError, match=r"^App\(kafka=\.\.\.\): acks must be 0, 1 or 'all'.*'2'"):
        parse(acks="2")


def test_compression_codec_none_means_no_compression() -> None:
    settings = parse_dotted({"bootstrap.servers": "127.0.0.1:19092", "compression.codec": "none"})

    assert settings.producer == {"compression_type": None}


def test_compression_codec_is_lower_cased() -> None:
    settings = parse_dotted({"bootstrap.servers": "127.0.0.1:19092", "compression.codec": "GZIP"})

    assert settings.producer == {"compression_type": "gzip"}


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd", "ZSTD"])
def test_every_codec_is_accepted_under_its_java_name(codec: str) -> None:
    settings = parse_dotted({"bootstrap.servers": "127.0.0.1:19092", "compression.type": codec})

    assert settings.producer == {"compression_type": codec.lower()}


def test_an_unknown_codec_is_refused_naming_the_ones_there_are() -> None:
    with pytest.raises(ConfigError, match=r"compression_type must be one of gzip, snappy, lz4, zstd or none"):
        parse(compression_type="brotli")


def test_linger_ms_given_as_a_string_becomes_an_integer() -> None:
    settings = parse_dotted({"bootstrap.servers": "127.0.0.1:19092", "linger.ms": "20"})

    assert settings.producer == {"linger_ms": 20}


def test_queue_buffering_max_ms_is_linger_ms() -> None:
    settings = parse_dotted({"bootstrap.servers": "127.0.0.1:19092", "queue.buffering.max.ms": "7"})

    assert settings.producer == {"linger_ms": 7}


def test_fetch_wait_max_ms_is_fetch_max_wait_ms() -> None:
    settings = parse_dotted({"bootstrap.servers": "127.0.0.1:19092", "fetch.wait.max.ms": "100"})

    assert settings.consumer == {"fetch_max_wait_ms": 100}


def test_boolean_strings_become_booleans() -> None:
    settings = parse_dotted({"bootstrap.servers": "127.0.0.1:19092", "enable.idempotence": "true"})

    assert settings.producer == {"enable_idempotence": True}


def test_auto_offset_reset_is_lower_cased() -> None:
    settings = parse_dotted({"bootstrap.servers": "127.0.0.1:19092", "auto.offset.reset": "LATEST"})

    assert settings.consumer == {"auto_offset_reset": "latest"}


# --- mistakes ----------------------------------------------------------------------------


def test_an_unknown_key_suggests_the_closest_valid_one() -> None:
    with pytest.raises(ConfigError, match=r"did you mean 'bootstrap_servers'\?"):
        KafkaSettings.parse({"bootstrap_server": "127.0.0.1:19092"}, where="cluster 'analytics'")


def test_an_unknown_key_error_names_where_it_was_found_and_the_key() -> None:
    with pytest.raises(ConfigError, match=r"^cluster 'analytics': unknown Kafka setting 'bootstrap_server'"):
        KafkaSettings.parse({"bootstrap_server": "127.0.0.1:19092"}, where="cluster 'analytics'")


def test_an_unknown_dotted_key_suggests_the_closest_valid_one() -> None:
    with pytest.raises(ConfigError, match=r"unknown Kafka setting 'auto\.offset\.rest'.*'auto_offset_reset'"):
        parse_dotted({"bootstrap.servers": "127.0.0.1:19092", "auto.offset.rest": "earliest"})


def test_an_unknown_key_with_nothing_close_gets_no_suggestion() -> None:
    with pytest.raises(ConfigError) as raised:
        parse(zzzzzz=1)

    assert "unknown Kafka setting 'zzzzzz'" in str(raised.value)
    assert "did you mean" not in str(raised.value)


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("enable.auto.commit", "the framework commits after each batch succeeds"),
        ("enable_auto_commit", "the framework commits after each batch succeeds"),
        ("value_deserializer", "routes decode payloads; set payload=, format= or decoder= on the route"),
        ("max_poll_records", "set max_poll_records (or max_messages) on the route"),
    ],
)
def test_keys_the_framework_owns_are_rejected_with_the_reason(key: str, reason: str) -> None:
    expected = f"App(kafka=...): '{key}' cannot be set here: {reason}"

    with pytest.raises(ConfigError, match=f"^{re.escape(expected)}$"):
        parse(**{key: "x"})


def test_the_same_setting_under_two_spellings_is_rejected() -> None:
    with pytest.raises(
        ConfigError, match=r"'bootstrap\.servers' and 'bootstrap_servers' are the same setting"
    ):
        KafkaSettings.parse(
            {"bootstrap_servers": "127.0.0.1:19092", "bootstrap.servers": "127.0.0.1:19092"},
            where="App(kafka=...)",
        )


def test_acks_and_request_required_acks_are_the_same_setting() -> None:
    with pytest.raises(
        ConfigError, match=r"'request\.required\.acks' and 'acks' are the same setting; keep one"
    ):
        parse(acks=1, **{"request.required.acks": 1})


@pytest.mark.parametrize("servers", [None, "", " , ", []])
def test_bootstrap_servers_are_required(servers: Any) -> None:
    raw = {} if servers is None else {"bootstrap_servers": servers}

    with pytest.raises(ConfigError, match=r"^cluster 'analytics': bootstrap_servers is required"):
        KafkaSettings.parse(raw, where="cluster 'analytics'")


def test_a_server_with_a_port_that_is_not_a_number_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"bootstrap server 'broker:http' is not host:port"):
        parse_dotted({"bootstrap.servers": "broker:http"})


def test_settings_that_are_not_a_mapping_are_rejected() -> None:
    with pytest.raises(ConfigError, match=r"^App\(kafka=\.\.\.\): Kafka settings must be a mapping, not str"):
        KafkaSettings.parse("127.0.0.1:9092", where="App(kafka=...)")  # type: ignore[arg-type]


# --- what identifies a cluster ------------------------------------------------------------


def test_servers_are_normalised_for_order_case_spaces_and_default_port() -> None:
    settings = parse_dotted({"bootstrap.servers": " Broker-B:9093 ,broker-a"})

    assert settings.bootstrap_servers == ("broker-a:9092", "broker-b:9093")


def test_servers_may_be_given_as_a_list() -> None:
    settings = KafkaSettings.parse({"bootstrap_servers": ["b:1", "a:2"]}, where="App(kafka=...)")

    assert settings.bootstrap_servers == ("a:2", "b:1")


def test_the_same_servers_written_differently_have_the_same_identity() -> None:
    one = KafkaSettings.parse({"bootstrap_servers": "broker-a:9092,broker-b:9093"}, where="one")
    other = KafkaSettings.parse({"bootstrap.servers": " BROKER-B:9093, broker-a "}, where="other")

    assert one.identity_key() == other.identity_key()


def test_plaintext_is_the_default_security_protocol_so_saying_it_changes_nothing() -> None:
    implicit = parse()
    explicit = parse(security_protocol="plaintext")

    assert implicit.identity_key() == explicit.identity_key()


def test_other_servers_or_security_settings_are_another_identity() -> None:
    base = parse()

    assert base.identity_key() != parse_dotted({"bootstrap.servers": "127.0.0.1:29092"}).identity_key()
    assert base.identity_key() != parse(security_protocol="SSL").identity_key()


def test_client_consumer_and_producer_settings_do_not_change_the_identity() -> None:
    assert parse().identity_key() == parse(client_id="x", group_id="g", linger_ms=5).identity_key()


def test_redacted_hides_the_sasl_password_and_shows_the_rest() -> None:
    settings = parse(
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="PLAIN",
        sasl_plain_username="alice",
        sasl_plain_password="secret",
    )

    redacted = settings.redacted()

    assert redacted["sasl_plain_password"] == "***"
    assert redacted["sasl_plain_username"] == "alice"
    assert redacted["bootstrap_servers"] == "127.0.0.1:19092"
    assert "secret" not in repr(redacted)


def test_connection_kwargs_give_aiokafka_a_list_of_servers() -> None:
    settings = parse_dotted({"bootstrap.servers": "b:1,a:2"})

    assert settings.connection_kwargs() == {
        "bootstrap_servers": ["a:2", "b:1"],
        "security_protocol": "PLAINTEXT",
    }


def test_producer_kwargs_leave_out_consumer_settings() -> None:
    kwargs = parse(client_id="svc", group_id="g", linger_ms=5).producer_kwargs()

    assert kwargs["client_id"] == "svc"
    assert kwargs["linger_ms"] == 5
    assert "group_id" not in kwargs


def test_acks_true_is_not_mistaken_for_one() -> None:
    with pytest.raises(ConfigError, match=r"acks must be 0, 1 or 'all'"):
        KafkaSettings.parse({"bootstrap_servers": "h:1", "acks": True}, where="App(kafka=...)")


# --- types and ranges ----------------------------------------------------------------------

MILLISECONDS = "a whole number of milliseconds"
BOOLEAN = "True or False (or 'true' / 'false')"


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        # Accepted before, then nothing was consumed and aiokafka's TypeError surfaced at stop.
        ("max_partition_fetch_bytes", "abc", "a whole number of bytes >= 1"),
        # Accepted before: a consumer that crashed on every start, restarted forever.
        ("session_timeout_ms", -1, f"{MILLISECONDS} >= 1"),
        ("session.timeout.ms", "0", f"{MILLISECONDS} >= 1"),
        ("linger_ms", 1.5, f"{MILLISECONDS} >= 0"),
        ("fetch_max_wait_ms", True, f"{MILLISECONDS} >= 0"),
        ("rebalance_timeout_ms", 0, f"{MILLISECONDS} >= 1 or None"),
        ("batch.size", "16k", "a whole number of bytes >= 1"),
        ("check_crcs", "yes", BOOLEAN),
        ("enable_idempotence", 1, BOOLEAN),
        ("isolation.level", "committed", "one of read_committed, read_uncommitted"),
        ("auto_offset_reset", "none", "one of earliest, latest"),
        ("security_protocol", 1, "one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL"),
        (
            "partition.assignment.strategy",
            "cooperative-sticky",
            "assignor names (range, roundrobin, sticky) or aiokafka assignor classes",
        ),
        ("client_id", 7, "a non-empty string"),
        ("group.id", "", "a non-empty string"),
        ("partitioner", "murmur2", "a callable (key, all_partitions, available_partitions) -> partition"),
    ],
)
def test_a_value_of_the_wrong_type_or_range_is_refused_naming_the_key_as_written(
    key: str, value: Any, allowed: str
) -> None:
    expected = f"App(kafka=...): {key} must be {allowed}, not {value!r}"

    with pytest.raises(ConfigError, match=f"^{re.escape(expected)}$"):
        parse_dotted({**SERVERS, key: value})


def test_a_secret_of_the_wrong_type_is_refused_without_showing_it() -> None:
    settings = {**SERVERS, "security.protocol": "SASL_SSL", "sasl.username": "u", "sasl.password": 84713}
    expected = "App(kafka=...): sasl.password must be a non-empty string, not a value of type int"

    with pytest.raises(ConfigError, match=f"^{re.escape(expected)}$"):
        parse_dotted(settings)


def test_values_from_a_properties_file_become_what_aiokafka_takes() -> None:
    settings = parse_dotted(
        {
            **SERVERS,
            "session.timeout.ms": " 45000 ",
            "exclude.internal.topics": "False",
            "isolation.level": "READ_COMMITTED",
            "partition.assignment.strategy": "range, roundrobin",
            "connections.max.idle.ms": None,
        }
    )

    assert settings.consumer == {
        "session_timeout_ms": 45000,
        "exclude_internal_topics": False,
        "isolation_level": "read_committed",
        "partition_assignment_strategy": (RangePartitionAssignor, RoundRobinPartitionAssignor),
    }
    assert settings.client == {"connections_max_idle_ms": None}


def test_assignor_classes_are_taken_as_they_are() -> None:
    settings = parse(partition_assignment_strategy=[RoundRobinPartitionAssignor])

    assert settings.consumer == {"partition_assignment_strategy": (RoundRobinPartitionAssignor,)}


def test_every_setting_has_a_rule_but_the_servers_and_tls_files_which_are_checked_on_their_own() -> None:
    checked_elsewhere = {"bootstrap_servers", "ssl_cafile", "ssl_certfile", "ssl_keyfile", "ssl_context"}
    assert VALID_KEYS - set(RULES) == checked_elsewhere
    numeric = {key for key in VALID_KEYS if key.endswith(("_ms", "_bytes", "_size"))}
    assert all(RULES[key].allowed.startswith("a whole number of") for key in numeric)


# --- a cluster's servers -----------------------------------------------------------------


def test_the_bootstrap_servers_are_a_sorted_tuple_and_a_clusters_servers_their_text() -> None:
    cluster = Cluster("primary", parse_dotted({"bootstrap.servers": "b:9092, a:9092"}))

    assert cluster.settings.bootstrap_servers == ("a:9092", "b:9092")
    assert cluster.servers == "a:9092,b:9092"


def test_a_clusters_old_bootstrap_servers_text_still_works_and_warns() -> None:
    cluster = Cluster("primary", parse())

    with pytest.warns(
        DeprecationWarning, match=r"Cluster.bootstrap_servers is deprecated; use Cluster.servers"
    ):
        assert cluster.bootstrap_servers == "127.0.0.1:19092"
