"""What the connection diagnosis says, on real sockets: refused at once, unresolvable, timed
out, and TLS failures each in their own words, and never "timed out" for a refusal."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError

from aiostream_kafka.config import Cluster, KafkaSettings
from aiostream_kafka.diagnosis import Reason, connection_error, likely_reason
from aiostream_kafka.errors import ClusterConnectionError, ClusterUnreachableError
from tests.helpers import free_port, hang_up, swallow, tcp_server

PROBE = 0.3  # seconds: how long the probe waits on a server that never answers
#: A limit for servers that do answer (they hang up at once): one that never runs out, however
#: loaded the machine, so that the answer is what the probe reports.
ANSWERED = 10.0


def cluster(bootstrap: str, **settings: Any) -> Cluster:
    return Cluster("gone", KafkaSettings.parse({"bootstrap_servers": bootstrap, **settings}, where="test"))


async def test_a_port_nothing_listens_on_is_refused_not_timed_out() -> None:
    address = f"127.0.0.1:{free_port()}"

    reason = await likely_reason(cluster(address))

    assert reason == Reason(
        f"connection refused at {address}: nothing listens there; is the broker running, "
        "and is this its host and port?",
        listening=False,
        away=True,
    )


async def test_a_refusal_is_named_whichever_address_of_a_name_was_tried() -> None:
    port = free_port()  # localhost may resolve to ::1 and 127.0.0.1: every attempt is refused

    reason = await likely_reason(cluster(f"localhost:{port}"))

    assert reason.text.startswith(f"connection refused at localhost:{port}: nothing listens there")


async def test_a_name_that_does_not_resolve_says_so() -> None:
    reason = await likely_reason(cluster("no-such-host.invalid:9092"))

    assert reason.text.startswith("the name 'no-such-host.invalid' does not resolve (")
    assert reason.text.endswith("): check the host in bootstrap_servers")
    assert (reason.listening, reason.away) == (False, True)


async def test_a_listener_that_never_answers_a_kafka_request_timed_out() -> None:
    async with tcp_server(swallow) as address:
        reason = await likely_reason(cluster(address), within=PROBE)

    assert reason == Reason(
        f"timed out: {address} accepts connections but answered no Kafka request within {PROBE:g}s; "
        "is the broker overloaded or stuck, or is something else listening there?",
        listening=True,
        away=True,
    )


async def test_a_listener_that_hangs_up_on_a_kafka_request_may_expect_tls_or_sasl() -> None:
    async with tcp_server(hang_up) as address:
        reason = await likely_reason(cluster(address), within=ANSWERED)

    assert reason.text == (
        f"{address} accepts connections but closed the one that sent a Kafka request: does this "
        "listener expect TLS or SASL (security_protocol)?"
    )
    assert not reason.away


async def test_a_tls_handshake_nobody_answers_timed_out() -> None:
    async with tcp_server(swallow) as address:
        reason = await likely_reason(cluster(address, security_protocol="SSL"), within=PROBE)

    assert reason.text == (
        f"timed out: {address} accepts connections but did not answer the TLS handshake within {PROBE:g}s"
    )


async def test_a_tls_handshake_the_server_hangs_up_on_is_not_a_tls_listener() -> None:
    async with tcp_server(hang_up) as address:
        reason = await likely_reason(cluster(address, security_protocol="SSL"), within=ANSWERED)

    assert reason.text == f"{address} closed the connection during the TLS handshake: is it a TLS listener?"
    assert (reason.listening, reason.away) == (True, False)


@pytest.fixture
def self_signed(tmp_path: Path) -> ssl.SSLContext:
    """A server context with a certificate no CA signed."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("needs openssl to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


async def test_a_certificate_the_client_does_not_trust_says_which_setting_to_give(
    self_signed: ssl.SSLContext,
) -> None:
    async with tcp_server(swallow, tls=self_signed) as address:
        reason = await likely_reason(cluster(address, security_protocol="SSL"), within=ANSWERED)

    assert reason.text == (
        "the broker's TLS certificate is not trusted (self-signed certificate): set ssl_cafile "
        "(ssl.ca.location) to the CA that signed it"
    )


async def test_the_error_for_a_cluster_that_is_away_is_unreachable_and_names_cluster_and_reason() -> None:
    address = f"127.0.0.1:{free_port()}"

    error = await connection_error(cluster(address), KafkaConnectionError("Unable to bootstrap"))

    assert isinstance(error, ClusterUnreachableError)
    assert str(error) == (
        f"cannot connect to cluster 'gone' ({address}, PLAINTEXT): connection refused at {address}: "
        "nothing listens there; is the broker running, and is this its host and port? "
        "[KafkaConnectionError: Unable to bootstrap]"
    )
    assert not error.listening


async def test_the_error_for_a_listener_speaking_another_protocol_is_not_unreachable() -> None:
    async with tcp_server(hang_up) as address:
        error = await connection_error(
            cluster(address, security_protocol="SSL"), KafkaConnectionError(), within=ANSWERED
        )

    assert type(error) is ClusterConnectionError
    assert error.listening
