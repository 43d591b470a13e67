"""``asyncapi_document``: an app as an AsyncAPI 3.0 document, valid against the official
schema, with every cluster a server and every payload's JSON Schema; nothing connects."""

from __future__ import annotations

import json
import re
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml

from aiostream_kafka import App, DeadLetterQueue, JobEnvelope, Messages, TopicConfig
from aiostream_kafka.asyncapi import asyncapi_document, to_yaml
from aiostream_kafka.cli import main
from aiostream_kafka.errors import ConfigError, UnknownClusterError
from tests.asyncapi_schema import payload_validator, problems
from tests.helpers import client_certificate_files

PASSWORD = "s3cret-never-shown"
USERNAME = "orders-service-login"


class Order(msgspec.Struct):
    """An order, as the shop sends it."""

    id: int
    items: list[str]
    total: float


class Shipped(msgspec.Struct):
    order_id: int
    carrier: str


class Cat(msgspec.Struct, tag=True):
    name: str


class Dog(msgspec.Struct, tag=True):
    name: str
    good: bool = True


async def handler(messages: Messages[Any]) -> None:
    pass


def legacy_decoder(value: bytes) -> str:
    return value.decode("latin-1")


def shop() -> App:
    """An app on two clusters, with every kind of thing the document describes."""
    app = App(
        "shop",
        kafka={"bootstrap_servers": "127.0.0.1:19092"},
        clusters={
            "analytics": {
                "bootstrap_servers": "127.0.0.1:29092,127.0.0.1:29093",
                "security_protocol": "SASL_PLAINTEXT",
                "sasl_mechanism": "SCRAM-SHA-512",
                "sasl_plain_username": USERNAME,
                "sasl_plain_password": PASSWORD,
            }
        },
    )
    app.routes.topic(
        "orders",
        handler=handler,
        payload=Order,
        dead_letter_queue=DeadLetterQueue("orders.dlq", cluster="analytics"),
        config=TopicConfig(
            partitions=6, settings={"retention.ms": 86400000, "cleanup.policy": "compact,delete"}
        ),
    )
    app.routes.topic("orders", handler=handler, group_id="audit")  # the same topic, raw, in another group
    app.routes.topic("orders", handler=handler, payload=Order, cluster="analytics")  # the same name elsewhere
    app.routes.topic("pets", handler=handler, payload=Cat | Dog, format="msgpack", cluster="analytics")
    app.routes.topic("points", handler=handler, payload=tuple[int, int])
    app.routes.topic("legacy", handler=handler, decoder=legacy_decoder)
    app.routes.topic("paused", handler=handler, active=False)
    app.routes.topic("inline", handler=handler, kafka={"bootstrap_servers": "127.0.0.1:39092"})

    @app.job(topic="jobs.mail")
    async def send_mail(to: str, subject: str, retries: int = 3) -> None:
        pass

    app.jobs.consume("jobs.mail")
    app.produces("orders.shipped", payload=Shipped, cluster="analytics", description="one per shipped order")
    app.web.enable()
    return app


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return asyncapi_document(shop(), version="1.2.3")


def channel_of(document: dict[str, Any], cluster: str, topic: str) -> dict[str, Any]:
    """The channel of ``topic`` on ``cluster`` (its server's title starts with the cluster's name)."""
    found: list[dict[str, Any]] = [
        channel
        for channel in document["channels"].values()
        if channel["address"] == topic
        and document["servers"][channel["servers"][0]["$ref"].rsplit("/", 1)[1]]["title"].split(" ")[0]
        == cluster
    ]
    assert len(found) == 1, f"{len(found)} channels of {topic!r} on {cluster!r}"
    return found[0]


def operations_on(document: dict[str, Any], channel: dict[str, Any], action: str) -> list[dict[str, Any]]:
    ids = [cid for cid, c in document["channels"].items() if c is channel]
    return [
        op
        for op in document["operations"].values()
        if op["action"] == action and op["channel"]["$ref"] == f"#/channels/{ids[0]}"
    ]


def resolve(document: dict[str, Any], ref: dict[str, str]) -> Any:
    target: Any = document
    for part in ref["$ref"][2:].split("/"):
        target = target[part]
    return target


def test_the_document_is_valid_asyncapi_3_and_every_reference_points_at_something(
    document: dict[str, Any],
) -> None:
    assert problems(document) == []
    assert document["asyncapi"] == "3.0.0"
    assert document["info"]["title"] == "shop"
    assert document["info"]["version"] == "1.2.3"


def test_the_schema_check_can_fail() -> None:
    broken = asyncapi_document(shop())
    broken["servers"]["primary"]["protocol"] = 9092
    broken["operations"]["receive_primary_points"]["channel"] = {"$ref": "#/channels/nowhere"}
    found = problems(broken)
    assert any(p.startswith("servers/primary") for p in found), found
    assert any("'#/channels/nowhere' points at nothing" in p for p in found), found


def test_every_cluster_is_a_server_and_the_primary_is_tagged(document: dict[str, Any]) -> None:
    servers = document["servers"]
    assert set(servers) == {"primary", "analytics", "127-0-0-1-39092"}
    assert servers["primary"]["tags"] == [{"name": "primary", "description": "the app's primary cluster"}]
    assert servers["primary"]["title"] == "primary (the primary cluster, app.producer's)"
    assert "tags" not in servers["analytics"]
    assert servers["analytics"]["host"] == "127.0.0.1:29092"  # any bootstrap server bootstraps
    assert "127.0.0.1:29092,127.0.0.1:29093" in servers["analytics"]["description"]
    assert {s["protocol"] for s in servers.values()} == {"kafka"}
    assert servers["analytics"]["security"] == [{"$ref": "#/components/securitySchemes/sasl-scram-sha-512"}]
    assert document["components"]["securitySchemes"] == {
        "sasl-scram-sha-512": {"type": "scramSha512", "description": "SASL SCRAM-SHA-512"}
    }


def test_no_credential_leaves_the_app(document: dict[str, Any]) -> None:
    text = json.dumps(document)
    assert PASSWORD not in text
    assert USERNAME not in text


def test_a_topic_on_two_clusters_is_two_channels_each_on_its_own_server(document: dict[str, Any]) -> None:
    on_primary = channel_of(document, "primary", "orders")
    on_analytics = channel_of(document, "analytics", "orders")
    assert on_primary["servers"] == [{"$ref": "#/servers/primary"}]
    assert on_analytics["servers"] == [{"$ref": "#/servers/analytics"}]


def test_each_active_route_is_a_receive_operation_in_its_consumer_group(document: dict[str, Any]) -> None:
    receives = operations_on(document, channel_of(document, "primary", "orders"), "receive")
    groups = sorted(op["bindings"]["kafka"]["groupId"]["enum"][0] for op in receives)
    assert groups == ["audit", "shop"]
    [typed] = [op for op in receives if op["bindings"]["kafka"]["groupId"]["enum"] == ["shop"]]
    assert typed["summary"] == "handled by tests.unit.test_asyncapi:handler"
    assert resolve(document, typed["messages"][0])["payload"] == {"$ref": "#/components/schemas/Order"}
    addresses = {channel["address"] for channel in document["channels"].values()}
    assert "paused" not in addresses  # an inactive route is never consumed


def test_payloads_are_json_schemas_that_accept_what_msgspec_encodes(document: dict[str, Any]) -> None:
    order = resolve(document, {"$ref": "#/components/schemas/Order"})
    assert order["description"] == "An order, as the shop sends it."
    valid = payload_validator(document, {"$ref": "#/components/schemas/Order"})
    assert list(valid.iter_errors(msgspec.to_builtins(Order(1, ["tea"], 2.5)))) == []
    assert list(valid.iter_errors({"id": 1, "items": ["tea"]}))  # no total: refused

    [pets] = channel_of(document, "analytics", "pets")["messages"].values()
    assert pets["contentType"] == "application/msgpack"
    assert pets["payload"]["discriminator"] == "type"  # AsyncAPI's discriminator is the property's name
    pet = payload_validator(document, pets["payload"])
    assert list(pet.iter_errors(msgspec.to_builtins(Dog("Rex")))) == []
    assert list(pet.iter_errors({"type": "Fish", "name": "Nemo"}))

    [points] = channel_of(document, "primary", "points")["messages"].values()
    point = payload_validator(document, points["payload"])  # a tuple, as draft 07 says it
    assert list(point.iter_errors([1, 2])) == []
    assert list(point.iter_errors([1, 2, 3]))
    assert list(point.iter_errors([1, "2"]))


def test_raw_and_custom_decoded_payloads_say_what_is_known(document: dict[str, Any]) -> None:
    raw = resolve(
        document,
        operations_on(document, channel_of(document, "primary", "orders"), "receive")[1]["messages"][0],
    )
    assert raw == {
        "name": "raw",
        "contentType": "application/octet-stream",
        "payload": {"type": "string", "format": "binary"},
    }
    [legacy] = channel_of(document, "primary", "legacy")["messages"].values()
    assert "payload" not in legacy  # a decoder's output has no declared schema
    assert legacy["description"] == "decoded by tests.unit.test_asyncapi:legacy_decoder; no schema declared"


def test_a_dead_letter_queue_is_a_channel_on_its_cluster_that_the_app_sends_to(
    document: dict[str, Any],
) -> None:
    dlq = channel_of(document, "analytics", "orders.dlq")
    [send] = operations_on(document, dlq, "send")
    assert send["summary"] == "dead-letters of 'orders' on 'primary'"
    [message] = [resolve(document, ref) for ref in send["messages"]]
    assert message["payload"] == {"type": "string", "format": "binary"}
    headers = message["headers"]["properties"]
    assert {"source_topic", "source_offset", "error_type", "attempts", "decode_error"} <= set(headers)


def test_jobs_are_a_channel_with_one_message_per_job_that_the_enqueued_envelope_matches(
    document: dict[str, Any],
) -> None:
    jobs = channel_of(document, "primary", "jobs.mail")
    [send] = operations_on(document, jobs, "send")
    [receive] = operations_on(document, jobs, "receive")
    assert send["messages"] == receive["messages"]  # enqueued here, and run here
    [message] = [resolve(document, ref) for ref in send["messages"]]
    job_name = "tests.unit.test_asyncapi.shop.<locals>.send_mail"
    assert message["name"] == job_name
    assert message["headers"]["properties"] == {"job": {"const": job_name}}
    envelope = payload_validator(document, message["payload"])
    arguments = {"to": "a@example.org", "subject": "hello", "retries": 3}
    enqueued = msgspec.to_builtins(JobEnvelope(job_name, "id-1", arguments, time.time()))
    assert list(envelope.iter_errors(enqueued)) == []
    assert list(envelope.iter_errors({**enqueued, "args": {"to": "a@example.org"}}))  # no subject


def test_declared_produced_topics_and_web_reports_are_send_operations(document: dict[str, Any]) -> None:
    shipped = channel_of(document, "analytics", "orders.shipped")
    [send] = operations_on(document, shipped, "send")
    assert send["summary"] == "app.produces('orders.shipped')"
    [message] = [resolve(document, ref) for ref in send["messages"]]
    assert message == {
        "name": "Shipped",
        "contentType": "application/json",
        "payload": {"$ref": "#/components/schemas/Shipped"},
        "description": "one per shipped order",
    }
    for topic in ("aiostream_kafka.reports", "aiostream_kafka.errors"):
        assert operations_on(document, channel_of(document, "primary", topic), "send")


def test_a_declared_topics_settings_are_its_kafka_channel_binding(document: dict[str, Any]) -> None:
    assert channel_of(document, "primary", "orders")["bindings"] == {
        "kafka": {
            "partitions": 6,
            "replicas": 1,
            "topicConfiguration": {"retention.ms": 86400000, "cleanup.policy": ["compact", "delete"]},
            "bindingVersion": "0.5.0",
        }
    }
    assert "bindings" not in channel_of(document, "primary", "points")


def test_identifiers_are_ones_asyncapi_tools_accept(document: dict[str, Any]) -> None:
    tool_friendly = re.compile(r"[A-Za-z0-9_-]+")
    names = [*document["servers"], *document["channels"], *document["operations"]]
    names += [mid for channel in document["channels"].values() for mid in channel["messages"]]
    assert [name for name in names if not tool_friendly.fullmatch(name)] == []


def test_yaml_reads_back_as_the_same_document(document: dict[str, Any]) -> None:
    assert yaml.safe_load(to_yaml(document)) == document


@pytest.mark.parametrize(
    "text",
    ["", "yes", "No", "null", "~", "12", "1.5", "#/x", "a: b", "- a", " lead", "trail ", "it's",
     'say "hi"', "line\nbreak", "tab\t", "\x85\u2028\ufeff", "ünïcödé 😀", "@at", "%pct", "*star",
     "&amp", "!bang", "{x}", "[x]"],
)  # fmt: skip
def test_yaml_keeps_any_string_as_it_was(text: str) -> None:
    data = {text: [text, {"k": text}], "n": [1, 2.5, True, None, [], {}]}
    assert yaml.safe_load(to_yaml(data)) == data


def test_app_produces_refuses_what_it_cannot_describe_naming_the_declaration() -> None:
    app = App(
        "shop",
        kafka={"bootstrap_servers": "127.0.0.1:19092"},
        clusters={"analytics": {"bootstrap_servers": "127.0.0.1:29092"}},
    )
    with pytest.raises(
        UnknownClusterError,
        match=r"app.produces\('out'\): no cluster named 'analytic'.*did you mean 'analytics'",
    ):
        app.produces("out", cluster="analytic")
    with pytest.raises(ConfigError, match=r"app.produces\('no way'\): a topic name is"):
        app.produces("no way")
    with pytest.raises(
        ConfigError, match=r"app.produces\('out'\): msgspec cannot describe payload=<class 'object'>"
    ):
        app.produces("out", payload=object)
    with pytest.raises(
        ConfigError, match=r"app.produces\('out'\): format must be one of json, msgpack, not 'xml'"
    ):
        app.produces("out", format="xml")
    app.produces("out", payload=Shipped)
    with pytest.raises(ConfigError, match="topic 'out' on cluster 'primary' is declared twice"):
        app.produces("out", payload=Order)
    assert app.produces("out", payload=Order, cluster="analytics").format == "json"  # another cluster's


def test_app_produces_defaults_to_app_producers_cluster_and_format() -> None:
    app = App(
        "shop",
        kafka={"bootstrap_servers": "127.0.0.1:19092"},
        clusters={"analytics": {"bootstrap_servers": "127.0.0.1:29092"}},
        producer_cluster="analytics",
        producer_format="msgpack",
    )
    produced = app.produces("out", payload=Shipped)
    assert (produced.cluster, produced.format) == ("analytics", "msgpack")


def test_a_produced_topic_on_an_inline_cluster_the_app_does_not_have_is_refused_when_described() -> None:
    app = App("shop", kafka={"bootstrap_servers": "127.0.0.1:19092"})
    app.routes.topic("in", handler=handler)
    app.produces("out", cluster="127.0.0.1:39092")  # may be an inline cluster's name: known only later
    with pytest.raises(UnknownClusterError, match=r"topic 'out': no cluster named '127.0.0.1:39092'"):
        asyncapi_document(app)


class Opaque:
    """Nothing msgspec knows how to encode or describe."""


def test_a_job_parameter_msgspec_cannot_describe_is_named() -> None:
    app = App("shop", kafka={"bootstrap_servers": "127.0.0.1:19092"})

    @app.job()
    async def work(thing: Opaque) -> None:
        pass

    with pytest.raises(ConfigError, match=r"job '.*work': thing: msgspec cannot describe"):
        asyncapi_document(app)


CLI_APP = """
import msgspec
from aiostream_kafka import App, Messages

class Order(msgspec.Struct):
    id: int

app = App("cli-shop", kafka={"bootstrap_servers": "127.0.0.1:19092"})

@app.route("orders", payload=Order)
async def on_orders(messages: Messages[Order]) -> None:
    pass
"""


def test_the_command_prints_the_document_as_json_or_yaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    name = f"asyncapi_app_{uuid.uuid4().hex[:10]}"
    (tmp_path / f"{name}.py").write_text(CLI_APP)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert main(["asyncapi", f"{name}:app", "--app-version", "2.0.0"]) == 0
        printed = json.loads(capsys.readouterr().out)
        assert main(["asyncapi", f"{name}:app", "--app-version", "2.0.0", "--yaml"]) == 0
        assert yaml.safe_load(capsys.readouterr().out) == printed
    finally:
        sys.modules.pop(name, None)
    assert problems(printed) == []
    assert printed["info"]["version"] == "2.0.0"
    assert printed["operations"]["receive_primary_orders"]["summary"] == f"handled by {name}:on_orders"


def test_the_command_names_a_wrong_app_path_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["asyncapi", "orders.py:app"]) == 2
    assert (
        capsys.readouterr().err
        == "error: 'orders.py:app' names a file; give the module instead: orders:app\n"
    )


KEY_PASSWORD = "key-pass-never-shown"


@pytest.fixture(scope="module")
def client_certificate(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A throwaway CA and a client certificate whose key has a password."""
    files = client_certificate_files(tmp_path_factory.mktemp("tls"), KEY_PASSWORD)
    return {
        "ca.pem": files["ca.pem"],
        "client.pem": files["client.pem"],
        "secret.key": files["encrypted.key"],
    }


def test_a_tls_cluster_is_kafka_secure_and_says_only_which_logins_it_takes(
    client_certificate: dict[str, str],
) -> None:
    app = App(
        "vault",
        kafka={"bootstrap_servers": "127.0.0.1:19092"},
        clusters={
            "cards": {
                "bootstrap.servers": "127.0.0.1:19093",
                "security.protocol": "SASL_SSL",
                "sasl.mechanism": "PLAIN",
                "sasl.username": USERNAME,
                "sasl.password": PASSWORD,
                "ssl.ca.location": client_certificate["ca.pem"],
                "ssl.certificate.location": client_certificate["client.pem"],
                "ssl.key.location": client_certificate["secret.key"],
                "ssl.key.password": KEY_PASSWORD,
            }
        },
    )
    app.routes.topic("cards", handler=handler, cluster="cards")
    document = asyncapi_document(app)

    assert problems(document) == []
    cards = document["servers"]["cards"]
    assert cards["protocol"] == "kafka-secure"
    assert cards["security"] == [
        {"$ref": "#/components/securitySchemes/sasl-plain"},
        {"$ref": "#/components/securitySchemes/client-certificate"},
    ]
    assert document["components"]["securitySchemes"] == {
        "sasl-plain": {"type": "plain", "description": "SASL PLAIN"},
        "client-certificate": {"type": "X509", "description": "TLS with a client certificate"},
    }
    text = json.dumps(document)
    for secret in (PASSWORD, USERNAME, KEY_PASSWORD, *client_certificate.values()):
        assert secret not in text
