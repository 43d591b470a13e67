"""Every cluster as an AsyncAPI server: where to connect and how to log in, never with what.

A server's ``host`` is one host:port; a cluster has a list of bootstrap servers, any of
which bootstraps a client. So ``host`` is the first, and the description lists them all.
The security schemes say only the kind of login (SASL mechanism, a client certificate):
no username, password, token or file path leaves the app.
"""

from __future__ import annotations

from typing import Any

from aiostream_kafka.config import Cluster
from aiostream_kafka.routing.topology import Topology

#: SASL mechanisms as AsyncAPI's security scheme types.
SASL_SCHEMES: dict[str, dict[str, Any]] = {
    "PLAIN": {"type": "plain"},
    "SCRAM-SHA-256": {"type": "scramSha256"},
    "SCRAM-SHA-512": {"type": "scramSha512"},
    "GSSAPI": {"type": "gssapi"},
    # The token endpoint is the app's token provider's business: no flow can be named.
    "OAUTHBEARER": {"type": "oauth2", "flows": {}},
}
CLIENT_CERTIFICATE: dict[str, Any] = {"type": "X509", "description": "TLS with a client certificate"}

TLS_PROTOCOLS = ("SSL", "SASL_SSL")
SASL_PROTOCOLS = ("SASL_PLAINTEXT", "SASL_SSL")


def server(cluster: Cluster, topology: Topology, schemes: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The server object of ``cluster``; the security schemes it uses are added to ``schemes``."""
    protocol = cluster.settings.identity["security_protocol"]
    primary = cluster is topology.primary
    roles = ["the primary cluster"] if primary else []
    if cluster.name == topology.producer_cluster:
        roles.append("app.producer's")
    role = f" ({', '.join(roles)})" if roles else ""
    document: dict[str, Any] = {
        "host": cluster.settings.bootstrap_servers[0],
        "protocol": "kafka-secure" if protocol in TLS_PROTOCOLS else "kafka",
        "title": f"{cluster.name}{role}",
        "description": (
            f"Kafka cluster {cluster.name!r}{role}: bootstrap servers {cluster.servers}, "
            f"security protocol {protocol}."
        ),
    }
    if primary:
        document["tags"] = [{"name": "primary", "description": "the app's primary cluster"}]
    security = []
    for name, scheme in _schemes(cluster, protocol):
        schemes.setdefault(name, scheme)
        security.append({"$ref": f"#/components/securitySchemes/{name}"})
    if security:
        document["security"] = security
    return document


def _schemes(cluster: Cluster, protocol: str) -> list[tuple[str, dict[str, Any]]]:
    identity = cluster.settings.identity
    found = []
    if protocol in SASL_PROTOCOLS:
        mechanism = identity.get("sasl_mechanism", "PLAIN")
        scheme = {**SASL_SCHEMES[mechanism], "description": f"SASL {mechanism}"}
        found.append((f"sasl-{mechanism.lower()}", scheme))
    if protocol in TLS_PROTOCOLS and identity.get("ssl_certfile"):
        found.append(("client-certificate", CLIENT_CERTIFICATE))
    return found
