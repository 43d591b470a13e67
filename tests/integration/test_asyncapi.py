"""The AsyncAPI document is true on real clusters: what it says to send where is what the app
consumes, and what the app sends is where the document says, in the shape it says."""

from __future__ import annotations

import json
import uuid
from typing import Any

import msgspec
from aiokafka import ConsumerRecord

from aiostream_kafka import App, DeadLetterQueue, Messages
from aiostream_kafka.asyncapi import asyncapi_document
from tests.asyncapi_schema import payload_validator, problems
from tests.helpers import create_topic, produce, wait_for_records


class Order(msgspec.Struct):
    id: int
    total: float


class Shipped(msgspec.Struct):
    order_id: int
    carrier: str


def operation(document: dict[str, Any], action: str, address: str) -> tuple[str, str, dict[str, Any]]:
    """Where the document says ``address`` is (server host, topic) and its operation's message."""
    [(channel_id, channel)] = [(i, c) for i, c in document["channels"].items() if c["address"] == address]
    [op] = [
        op
        for op in document["operations"].values()
        if op["action"] == action and op["channel"]["$ref"] == f"#/channels/{channel_id}"
    ]
    [server_ref] = channel["servers"]
    host = document["servers"][server_ref["$ref"].rsplit("/", 1)[1]]["host"]
    [message_ref] = op["messages"]
    message = channel["messages"][message_ref["$ref"].rsplit("/", 1)[1]]
    return host, channel["address"], message


async def test_what_the_document_says_to_send_is_consumed_and_what_the_app_sends_is_where_it_says(
    primary: str, secondary: str, topic_name: str
) -> None:
    orders, shipped, dlq = topic_name, f"{topic_name}.shipped", f"{topic_name}.dlq"
    app = App(
        "asyncapi-truth",
        kafka={"bootstrap_servers": primary},
        clusters={"secondary": {"bootstrap_servers": secondary}},
        group_id=f"g-{uuid.uuid4().hex[:8]}",
    )
    app.produces(shipped, payload=Shipped, cluster="secondary")

    @app.route(
        orders, payload=Order, dead_letter_queue=DeadLetterQueue(dlq, max_retries=0, cluster="secondary")
    )
    async def ship(messages: Messages[Order]) -> None:
        for message in messages:
            if message.payload.total < 0:
                raise ValueError("a negative total")
            await app.producers["secondary"].produce(shipped, Shipped(message.payload.id, "post"))
            messages.mark_as_consumed(message)

    document = asyncapi_document(app)
    assert problems(document) == []
    await create_topic(primary, orders)
    await create_topic(secondary, shipped)
    await create_topic(secondary, dlq)

    host, address, message = operation(document, "receive", orders)
    assert (host, address) == (primary, orders)
    good, refused = {"id": 1, "total": 9.5}, {"id": 2, "total": -1.0}
    for order in (good, refused):  # both as the document describes them
        assert list(payload_validator(document, message["payload"]).iter_errors(order)) == []
        await produce(host, address, json.dumps(order).encode())

    async with app.running():
        host, address, message = operation(document, "send", shipped)
        assert (host, address) == (secondary, shipped)
        [sent] = await wait_for_records(host, address)
        assert list(payload_validator(document, message["payload"]).iter_errors(json.loads(sent.value))) == []
        assert msgspec.json.decode(sent.value, type=Shipped) == Shipped(1, "post")

        host, address, message = operation(document, "send", dlq)
        assert (host, address) == (secondary, dlq)
        [dead] = await wait_for_records(host, address)
        assert list(payload_validator(document, message["headers"]).iter_errors(text_headers(dead))) == []
        assert json.loads(dead.value) == refused


def text_headers(record: ConsumerRecord[bytes, bytes]) -> dict[str, str | None]:
    return {name: None if value is None else value.decode() for name, value in record.headers}
