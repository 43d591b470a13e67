"""Data segregation: a plaintext primary for everyday events, a secure cluster for the
sensitive part, each with its own credentials.

Checkouts arrive on the primary. The handler keeps the public part there and sends the
card details only to ``payments.sensitive`` on the ``vault`` cluster, over SASL_SSL
(SCRAM-SHA-512, with the vault's CA); the vault's own route settles them. Nothing about
the vault's credentials leaves the process: ``aiostream-kafka info examples.segregated:app``
shows ``sasl_plain_password='***'``.

    python tools/kafka/localkafka.py up primary secure
    aiostream-kafka run --check examples.segregated:app

The vault's settings come from the local secure cluster's client.json (see
tools/kafka/README.md); in production they would come from your secret store.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import msgspec

from aiostream_kafka import App, Messages

PRIMARY = os.environ.get("AIOSTREAM_KAFKA_PRIMARY", "127.0.0.1:19092")
STATE = Path(os.environ.get("AIOSTREAM_KAFKA_STATE", Path(tempfile.gettempdir()) / "aiostream-kafka"))
VAULT_CLIENT = Path(os.environ.get("AIOSTREAM_KAFKA_SECURE_CLIENT", STATE / "secure" / "client.json"))


def vault_settings(client_file: Path = VAULT_CLIENT) -> dict[str, str]:
    """The secure cluster, in the dotted names a Karafka or Java user already knows."""
    if not client_file.is_file():
        raise SystemExit(
            f"{client_file} not found: start the secure cluster first "
            f"(python tools/kafka/localkafka.py up secure)"
        )
    client = json.loads(client_file.read_text())
    return {
        "bootstrap.servers": client["sasl_ssl_bootstrap_servers"],
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": client["username"],
        "sasl.password": client["password"],
        "ssl.ca.location": client["cafile"],
    }


class Checkout(msgspec.Struct):
    order_id: int
    amount: float
    card_number: str


class Receipt(msgspec.Struct):
    order_id: int
    amount: float
    card_last4: str


class CardCharge(msgspec.Struct):
    order_id: int
    amount: float
    card_number: str


app = App(
    "segregated-example",
    kafka={"bootstrap_servers": PRIMARY},
    clusters={"vault": vault_settings()},
    auto_create_topics=True,  # `run --check` creates the topics declared below where they are missing
)
app.topics.declare("checkouts")
app.topics.declare("receipts")
app.topics.declare("payments.sensitive", cluster="vault")
settled: list[int] = []


@app.route("checkouts", payload=Checkout)
async def on_checkout(messages: Messages[Checkout]) -> None:
    for message in messages:
        checkout = message.payload
        charge = CardCharge(checkout.order_id, checkout.amount, checkout.card_number)
        await app.producers["vault"].produce("payments.sensitive", charge, key=str(checkout.order_id))
        receipt = Receipt(checkout.order_id, checkout.amount, checkout.card_number[-4:])
        await app.producer.produce("receipts", receipt, key=str(checkout.order_id))


@app.route("payments.sensitive", payload=CardCharge, cluster="vault")
async def on_charge(messages: Messages[CardCharge]) -> None:
    for message in messages:
        settled.append(message.payload.order_id)
        print(f"[vault] charged order {message.payload.order_id}: {message.payload.amount:.2f}")
