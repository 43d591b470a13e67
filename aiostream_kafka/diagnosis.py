"""Why a cluster refused us, in words a user can act on.

aiokafka reports every failed connection as "Unable to bootstrap from [...]", whether
nothing listens there, the name does not resolve, the broker's certificate is not trusted,
or the password is wrong (the real reason only reaches its log). When a connection fails we
look once more, step by step (TCP, then TLS with the cluster's own context, then one Kafka
request on a plaintext listener), and name the first step that fails, and how: refused at
once, timed out, unresolvable, or a TLS failure.
"""

from __future__ import annotations

import errno
import socket
import ssl
import struct
from typing import NamedTuple

import anyio
from anyio.abc import ByteStream
from anyio.streams.tls import TLSStream

from aiostream_kafka.config import Cluster
from aiostream_kafka.errors import ClusterConnectionError, ClusterUnreachableError

PROBE_TIMEOUT = 5.0

#: An ApiVersions request (v0, correlation id 1, no client id): the one every broker answers.
_API_VERSIONS = struct.pack(">ihhih", 10, 18, 0, 1, -1)
_UNREACHABLE = {errno.ENETUNREACH, errno.EHOSTUNREACH}


class Reason(NamedTuple):
    """What probing a cluster's first server found."""

    text: str
    #: Something accepted a TCP connection.
    listening: bool = True
    #: Refused, unresolvable, unreachable or silent: the cluster is away, not misconfigured.
    away: bool = False


async def connection_error(
    cluster: Cluster, error: BaseException, *, within: float = PROBE_TIMEOUT
) -> ClusterConnectionError:
    """The error to raise instead of ``error``, a failed connection to ``cluster``: a
    ``ClusterUnreachableError`` when the cluster is away, naming how."""
    reason = await likely_reason(cluster, within=within)
    kind = ClusterUnreachableError if reason.away else ClusterConnectionError
    cause = str(error) or type(error).__name__
    failure = kind(
        f"cannot connect to cluster {cluster.name!r} ({cluster.servers}, "
        f"{cluster.settings.identity['security_protocol']}): {reason.text} [{cause}]"
    )
    failure.listening = reason.listening
    return failure


async def likely_reason(cluster: Cluster, *, within: float = PROBE_TIMEOUT) -> Reason:
    """What most likely went wrong connecting to the cluster's first server; each step of the
    probe waits at most ``within`` seconds."""
    host, _, port = cluster.settings.bootstrap_servers[0].rpartition(":")
    address = f"{host}:{port}"
    try:
        with anyio.fail_after(within):
            stream: ByteStream = await anyio.connect_tcp(host, int(port))
    except TimeoutError:
        return Reason(
            f"timed out: nothing answered a connection to {address} within {within:g}s; is the host "
            "up, and does a firewall let the port through?",
            listening=False,
            away=True,
        )
    except OSError as error:
        return Reason(_not_connected(host, address, error), listening=False, away=True)
    try:
        return await _connected(cluster, stream, host, address, within)
    finally:
        await stream.aclose()


def _not_connected(host: str, address: str, error: OSError) -> str:
    """A TCP connection that failed at once: refused, unresolvable or unreachable."""
    if isinstance(error, socket.gaierror):
        return f"the name {host!r} does not resolve ({error.strerror}): check the host in bootstrap_servers"
    failures = _os_errors(error)  # anyio: "All connection attempts failed", from each attempt's error
    codes = {e.errno for e in failures}
    if errno.ECONNREFUSED in codes:
        return (
            f"connection refused at {address}: nothing listens there; is the broker running, "
            "and is this its host and port?"
        )
    if errno.ETIMEDOUT in codes:
        return f"timed out: nothing answered a connection to {address}; is the host up?"
    detail = next((e.strerror for e in failures if e.strerror), None) or str(error)
    if codes & _UNREACHABLE:
        return f"{address} is unreachable ({detail}): check the address and the network"
    return f"cannot open a connection to {address} ({detail})"


def _os_errors(error: BaseException | None) -> list[OSError]:
    """The OSErrors with an errno in ``error``, its causes and the groups among them."""
    found: list[OSError] = []
    while error is not None:
        if isinstance(error, OSError) and error.errno is not None:
            found.append(error)
        for inner in getattr(error, "exceptions", ()):
            found += _os_errors(inner)
        error = error.__cause__
    return found


async def _connected(cluster: Cluster, stream: ByteStream, host: str, address: str, within: float) -> Reason:
    """Something accepts TCP connections: what goes wrong after that."""
    identity = cluster.settings.identity
    protocol: str = identity["security_protocol"]
    if protocol.endswith("SSL"):
        context = cluster.settings.tls or identity.get("ssl_context")
        try:
            with anyio.fail_after(within):
                stream = await TLSStream.wrap(
                    stream, hostname=host, ssl_context=context, standard_compatible=False
                )
        except ssl.SSLCertVerificationError as error:
            return Reason(
                f"the broker's TLS certificate is not trusted ({error.verify_message}): set ssl_cafile "
                f"(ssl.ca.location) to the CA that signed it"
            )
        except TimeoutError:
            return Reason(
                f"timed out: {address} accepts connections but did not answer the TLS handshake "
                f"within {within:g}s",
                away=True,
            )
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            return Reason(f"{address} closed the connection during the TLS handshake: is it a TLS listener?")
        except (ssl.SSLError, OSError) as error:
            reason = getattr(error, "reason", None) or str(error) or type(error).__name__
            return Reason(f"the TLS handshake with {address} failed ({reason}): is it a TLS listener?")
    if protocol.startswith("SASL_"):
        mechanism = identity.get("sasl_mechanism")
        user = identity.get("sasl_plain_username")
        who = f" as user {user!r}" if user else ""
        return Reason(
            f"the broker refused the SASL {mechanism} login{who}: check the username and password, "
            f"and that the listener enables {mechanism}"
        )
    if protocol == "SSL":
        return Reason(
            "TLS works but the broker closed the connection: it may require a client certificate "
            "it trusts (ssl_certfile and ssl_keyfile)"
        )
    return await _plaintext(stream, address, within)


async def _plaintext(stream: ByteStream, address: str, within: float) -> Reason:
    """Ask a plaintext listener one Kafka question: silence, a hang-up and an answer differ."""
    answered: bool | None = None
    with anyio.move_on_after(within):
        try:
            await stream.send(_API_VERSIONS)
            answered = bool(await stream.receive())
        except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
            answered = False
    if answered is None:
        return Reason(
            f"timed out: {address} accepts connections but answered no Kafka request within "
            f"{within:g}s; is the broker overloaded or stuck, or is something else listening there?",
            away=True,
        )
    if not answered:
        return Reason(
            f"{address} accepts connections but closed the one that sent a Kafka request: does this "
            "listener expect TLS or SASL (security_protocol)?"
        )
    return Reason(
        f"{address} answers Kafka requests now: the broker may have been starting, or it advertises "
        "an address this client cannot reach (check its advertised.listeners)"
    )
