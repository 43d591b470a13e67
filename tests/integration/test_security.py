"""TLS and SASL per cluster, on a real secure broker (SASL_SSL with SCRAM-SHA-512 and PLAIN,
mutual TLS) next to the plaintext primary: data segregation with its own credentials."""

from __future__ import annotations

import json
import logging
import os
import sys
import uuid
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from aiostream_kafka import App, Backoff, Messages
from aiostream_kafka.admin.check import CheckError
from aiostream_kafka.errors import ClusterConnectionError
from tests.helpers import Events, create_topic, eventually

ROOT = Path(__file__).resolve().parents[2]


def scram(c: dict[str, Any], **override: Any) -> dict[str, Any]:
    """The secure cluster in the dotted names users copy from Karafka or Java."""
    return {
        "bootstrap.servers": c["sasl_ssl_bootstrap_servers"],
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": c["username"],
        "sasl.password": c["password"],
        "ssl.ca.location": c["cafile"],
        **override,
    }


def plain(c: dict[str, Any]) -> dict[str, Any]:
    """The same cluster with SASL PLAIN, in aiokafka's names."""
    return {
        "bootstrap_servers": c["sasl_ssl_bootstrap_servers"],
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "PLAIN",
        "sasl_plain_username": c["username"],
        "sasl_plain_password": c["password"],
        "ssl_cafile": c["cafile"],
    }


def mutual_tls(c: dict[str, Any]) -> dict[str, Any]:
    """The client-certificate listener, with the encrypted copy of the client key."""
    return {
        "bootstrap_servers": c["ssl_bootstrap_servers"],
        "security_protocol": "SSL",
        "ssl_cafile": c["cafile"],
        "ssl_certfile": c["certfile"],
        "ssl_keyfile": c["encrypted_keyfile"],
        "ssl_password": c["key_password"],
    }


def app_with(primary: str, **clusters: dict[str, Any]) -> App:
    return App(
        "segregated",
        kafka={"bootstrap_servers": primary},
        clusters=clusters,
        group_id=f"g-{uuid.uuid4().hex[:8]}",
        restart_backoff=Backoff(initial=0.2, maximum=1.0),
    )


async def test_consume_and_produce_over_sasl_ssl_with_scram_and_with_plain(
    primary: str, secure_cluster: dict[str, Any], topic_name: str
) -> None:
    app = app_with(primary, scram=scram(secure_cluster), plain=plain(secure_cluster))
    seen: list[tuple[str, bytes | None]] = []

    @app.route(topic_name, cluster="scram")
    async def on_secure(messages: Messages[bytes]) -> None:
        seen.extend((messages.cluster, m.value) for m in messages)

    @app.route(topic_name)  # the same name on the plaintext primary: another cluster, other data
    async def on_primary(messages: Messages[bytes]) -> None:
        seen.extend((messages.cluster, m.value) for m in messages)

    await create_topic(primary, topic_name)
    async with app.running():
        await app.producers["scram"].produce(topic_name, b"over scram")
        await app.producers["plain"].produce(topic_name, b"over plain")
        await app.producer.produce(topic_name, b"in the clear")
        await eventually(lambda: len(seen) == 3, what="all three messages")

    assert sorted(seen) == [("primary", b"in the clear"), ("scram", b"over plain"), ("scram", b"over scram")]


async def test_mutual_tls_with_an_encrypted_client_key(
    primary: str, secure_cluster: dict[str, Any], topic_name: str
) -> None:
    app = app_with(primary, mtls=mutual_tls(secure_cluster))
    seen: list[bytes | None] = []

    @app.route(topic_name, cluster="mtls")
    async def on_secure(messages: Messages[bytes]) -> None:
        seen.extend(m.value for m in messages)

    async with app.running():
        await app.producers["mtls"].produce(topic_name, b"signed")
        await eventually(lambda: seen == [b"signed"], what="the message over mutual TLS")


async def test_a_wrong_password_is_a_clear_error_naming_the_cluster_while_others_keep_working(
    primary: str, secure_cluster: dict[str, Any], topic_name: str
) -> None:
    wrong = "not-the-password-" + uuid.uuid4().hex
    app = app_with(primary, vault=scram(secure_cluster, **{"sasl.password": wrong}))
    events = Events(app)
    seen: list[bytes | None] = []

    @app.route(topic_name)
    async def on_primary(messages: Messages[bytes]) -> None:
        seen.extend(m.value for m in messages)

    @app.route(f"{topic_name}.vault", cluster="vault")
    async def on_vault(messages: Messages[bytes]) -> None:
        raise AssertionError("nothing can arrive without the right password")

    await create_topic(primary, topic_name)
    async with app.running():
        await app.producer.produce(topic_name, b"still flowing")
        await eventually(lambda: seen == [b"still flowing"], what="the primary route")
        await eventually(lambda: events.count("listener.crashed", cluster="vault") >= 2, what="retries")
        with pytest.raises(ClusterConnectionError) as produced:
            await app.producers["vault"].produce(f"{topic_name}.vault", b"x")

    crash = events.named("listener.crashed", cluster="vault")[0]["error"]
    for error in (crash, produced.value):
        assert isinstance(error, ClusterConnectionError)
        message = str(error)
        assert f"cluster 'vault' ({secure_cluster['sasl_ssl_bootstrap_servers']}, SASL_SSL)" in message
        assert "refused the SASL SCRAM-SHA-512 login as user 'aiostream'" in message
        assert wrong not in message
    assert events.count("listener.crashed", cluster="primary") == 0


async def test_a_client_without_the_ca_cannot_connect_and_check_says_why(
    primary: str, secure_cluster: dict[str, Any]
) -> None:
    settings = scram(secure_cluster)
    del settings["ssl.ca.location"]  # system CAs only: the throwaway CA is not among them
    app = app_with(primary, untrusted=settings)

    with pytest.raises(CheckError) as raised:
        await app.check(within=30)  # the real clusters answer in time, however loaded the machine

    [problem] = raised.value.problems
    assert "cluster 'untrusted'" in problem
    assert "TLS certificate is not trusted" in problem
    assert "set ssl_cafile (ssl.ca.location)" in problem


APP_MODULE = """
import json
from aiostream_kafka import App, Messages
from tests.integration.test_security import mutual_tls, scram

c = json.loads(open({client_file!r}).read())
app = App(
    "segregated",
    kafka={{"bootstrap_servers": {primary!r}}},
    clusters={{"vault": scram(c), "mtls": mutual_tls(c)}},
)

@app.route("secrets", cluster="vault")
async def on_secrets(messages: Messages[bytes]) -> None:
    pass
"""


async def test_no_secret_shows_in_info_logs_events_errors_or_reprs(
    primary: str,
    secure_cluster: dict[str, Any],
    topic_name: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    secrets = [secure_cluster["password"], secure_cluster["key_password"]]
    client_file = str(Path(secure_cluster["cafile"]).parent.parent / "client.json")
    (tmp_path / "segregated_app.py").write_text(APP_MODULE.format(client_file=client_file, primary=primary))
    environment = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"}
    shown: list[str] = []
    for arguments in (["info", "segregated_app:app"], ["info", "segregated_app:app", "--json"]):
        result = await anyio.run_process(
            [sys.executable, "-m", "aiostream_kafka", *arguments], env=environment, check=False
        )
        assert result.returncode == 0, result.stderr.decode()
        shown += [result.stdout.decode(), result.stderr.decode()]
    assert "sasl_plain_password" in shown[2]  # it did show the settings, as JSON
    assert json.loads(shown[2])

    # A full run, logging everything (aiokafka's DEBUG too): good credentials, and a cluster
    # with the right user but a wrong password, so errors get logged and raised as well.
    caplog.set_level(logging.DEBUG)
    good = scram(secure_cluster)
    app = app_with(
        primary,
        vault=good,
        mtls=mutual_tls(secure_cluster),
        broken=plain(secure_cluster) | {"sasl_plain_password": secure_cluster["password"] + "-but-wrong"},
    )
    app.web.enable(interval=0.5, reports_topic=f"{topic_name}.reports", errors_topic=f"{topic_name}.errors")
    events = Events(app)
    seen: list[bytes | None] = []

    @app.route(topic_name, cluster="vault")
    async def on_vault(messages: Messages[bytes]) -> None:
        seen.extend(m.value for m in messages)

    @app.route(topic_name, cluster="broken")
    async def on_broken(messages: Messages[bytes]) -> None:
        pass

    web = app.web.asgi()
    async with (
        app.running(),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url="http://ui") as browser,
    ):
        await browser.get("/")  # the Web UI starts reading the reports
        await app.producers["vault"].produce(topic_name, b"payload")
        await app.producers["mtls"].produce(topic_name, b"payload")
        await eventually(lambda: seen == [b"payload", b"payload"], what="both secure messages")
        await eventually(lambda: events.count("listener.crashed", cluster="broken") >= 1, what="a crash")
        board = web.state.ui.board
        await eventually(lambda: len(board.errors) > 0 and len(board.live()) == 1, what="reports in the UI")
        for page in ("/", "/api/overview", "/errors", "/routing", "/clusters/vault", "/clusters/broken"):
            shown.append((await browser.get(page)).text)
        shown.append((await browser.get(f"/explorer?cluster=vault&topic={topic_name}")).text)
        await web.state.ui.aclose()
    reports = await app.admin.read(f"{topic_name}.reports", count=1000)
    errors = await app.admin.read(f"{topic_name}.errors", count=1000)
    await app.admin.close()
    assert reports
    assert errors
    shown += [(r.value or b"").decode() for r in [*reports, *errors]]
    shown.append(caplog.text)
    shown += [f"{event.name} {dict(event.payload)!r} {event.payload.get('error')}" for event in events.all]
    shown += [repr(app.topology), repr(app.topology.clusters), str(app.topology.clusters["vault"].settings)]
    shown += [repr(cluster.settings.redacted()) for cluster in app.topology.clusters.values()]

    everything = "\n".join(shown)
    assert "SCRAM-SHA-512" in everything  # the scan saw the settings and a run with its errors
    assert "refused the SASL PLAIN login" in everything
    assert "Traceback (most recent call last)" in everything  # the error reports, as the UI shows them
    for secret in secrets:
        assert secret not in everything


async def test_the_segregated_example_keeps_card_numbers_on_the_secure_cluster(
    primary: str, secure_cluster: dict[str, Any]
) -> None:
    from examples import segregated  # needs the secure cluster's client.json, made by the fixture

    order_id = uuid.uuid4().int % 1_000_000_000
    app = segregated.app
    await app.check()  # creates its declared topics on both clusters where they are missing
    async with app.running():
        await app.producer.produce(
            "checkouts", segregated.Checkout(order_id, 12.5, "4111111111111111"), key=str(order_id)
        )
        await eventually(lambda: order_id in segregated.settled, what="the charge settled in the vault")
        on_primary = await app.admin.read("receipts", count=100_000)
        on_vault = await app.admin.cluster("vault").read("payments.sensitive", count=100_000)

    receipt = next(m for m in on_primary if m.key == str(order_id).encode())
    charge = next(m for m in on_vault if m.key == str(order_id).encode())
    assert b"4111111111111111" not in (receipt.value or b"")
    assert b'"card_last4":"1111"' in (receipt.value or b"")
    assert b"4111111111111111" in (charge.value or b"")


DEBUG_APP_MODULE = """
import json
import logging
from aiostream_kafka import App, Messages
from tests.integration.test_security import plain

logging.basicConfig(level=logging.DEBUG)  # the module's own choice: aiokafka's request log too
c = json.loads(open({client_file!r}).read())
app = App("debugging", kafka={{"bootstrap_servers": {primary!r}}}, clusters={{"vault": plain(c)}})

@app.route({topic!r}, cluster="vault")
async def on_vault(messages: Messages[bytes]) -> None:
    pass
"""


@pytest.mark.parametrize("command", [["check"], ["topics", "list"]])
async def test_commands_that_never_start_the_app_mask_a_sasl_plain_password_in_debug_logs(
    command: list[str], primary: str, secure_cluster: dict[str, Any], topic_name: str, tmp_path: Path
) -> None:
    client_file = str(Path(secure_cluster["cafile"]).parent.parent / "client.json")
    module = DEBUG_APP_MODULE.format(client_file=client_file, primary=primary, topic=topic_name)
    (tmp_path / "debugging_app.py").write_text(module)
    environment = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"}

    result = await anyio.run_process(
        [sys.executable, "-m", "aiostream_kafka", *command, "debugging_app:app"], env=environment, check=False
    )

    output = result.stdout.decode() + result.stderr.decode()
    assert "SaslAuthenticateRequest" in output  # the PLAIN login was logged, password and all
    assert "\\x00aiostream\\x00***" in output
    assert secure_cluster["password"] not in output
