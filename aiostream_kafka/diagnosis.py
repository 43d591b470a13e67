"""Why a cluster refused us, in words a user can act on.

aiokafka reports every failed connection as "Unable to bootstrap from [...]", whether
nothing listens there, the broker's certificate is not trusted, or the password is wrong
(the real reason only reaches its log). When a connection fails we look once more, step by
step (TCP, then TLS with the cluster's own context), and name the first step that fails.
"""

from __future__ import annotations

import ssl

import anyio
from anyio.abc import ByteStream
from anyio.streams.tls import TLSStream

from aiostream_kafka.config import Cluster
from aiostream_kafka.errors import ClusterConnectionError

PROBE_TIMEOUT = 5.0


async def connection_error(cluster: Cluster, error: BaseException) -> ClusterConnectionError:
    """The error to raise instead of ``error``, a failed connection to ``cluster``."""
    listening, reason = await likely_reason(cluster)
    failure = ClusterConnectionError(
        f"cannot connect to cluster {cluster.name!r} ({cluster.bootstrap_servers}, "
        f"{cluster.settings.identity['security_protocol']}): {reason} [{error}]"
    )
    failure.listening = listening
    return failure


async def likely_reason(cluster: Cluster) -> tuple[bool, str]:
    """Whether anything listens at the cluster's first server, and what most likely went wrong."""
    identity = cluster.settings.identity
    protocol: str = identity["security_protocol"]
    host, _, port = cluster.settings.bootstrap_servers[0].rpartition(":")
    try:
        with anyio.fail_after(PROBE_TIMEOUT):
            stream: ByteStream = await anyio.connect_tcp(host, int(port))
    except (OSError, TimeoutError) as error:
        return False, f"nothing accepts connections at {host}:{port} ({error.strerror or 'timed out'})"
    try:
        if protocol.endswith("SSL"):
            context = cluster.settings.tls or identity.get("ssl_context")
            try:
                with anyio.fail_after(PROBE_TIMEOUT):
                    stream = await TLSStream.wrap(
                        stream, hostname=host, ssl_context=context, standard_compatible=False
                    )
            except ssl.SSLCertVerificationError as error:
                return True, (
                    f"the broker's TLS certificate is not trusted ({error.verify_message}): set ssl_cafile "
                    f"(ssl.ca.location) to the CA that signed it"
                )
            except (ssl.SSLError, OSError, TimeoutError, anyio.BrokenResourceError) as error:
                reason = getattr(error, "reason", None) or error
                return True, f"the TLS handshake failed ({reason}): is it a TLS listener?"
        if protocol.startswith("SASL_"):
            mechanism = identity.get("sasl_mechanism")
            user = identity.get("sasl_plain_username")
            who = f" as user {user!r}" if user else ""
            return True, (
                f"the broker refused the SASL {mechanism} login{who}: check the username and password, "
                f"and that the listener enables {mechanism}"
            )
        if protocol == "SSL":
            return True, (
                "TLS works but the broker closed the connection: it may require a client certificate "
                "it trusts (ssl_certfile and ssl_keyfile)"
            )
        return True, (
            "the broker accepts connections but does not answer Kafka requests: does this listener "
            "expect TLS or SASL (security_protocol)?"
        )
    finally:
        await stream.aclose()
