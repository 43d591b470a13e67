"""The seed scenario: one app, two clusters.

``example`` is consumed from the primary cluster; ``example2`` from the secondary, through
a Karafka-style inline ``kafka={...}`` override. The ``example`` handler forwards every
event to ``example2`` on the secondary, so one app both consumes and produces on both.

    aiostream-kafka run examples.multi_cluster:app
"""

from __future__ import annotations

import os

import msgspec

from aiostream_kafka import App, Consumer, Messages

PRIMARY = os.environ.get("AIOSTREAM_KAFKA_PRIMARY", "127.0.0.1:19092")
SECONDARY = os.environ.get("AIOSTREAM_KAFKA_SECONDARY", "127.0.0.1:29092")


class Event(msgspec.Struct):
    id: int
    text: str
    forwarded: bool = False


app = App("multi-cluster-example", kafka={"bootstrap_servers": PRIMARY})
app.web.enable()  # status reports to the primary: `aiostream-kafka web examples.multi_cluster:app`
# What on_example sends, for `aiostream-kafka asyncapi examples.multi_cluster:app`.
app.produces("example2", payload=Event, cluster=SECONDARY)


@app.route("example", payload=Event)
async def on_example(messages: Messages[Event]) -> None:
    for message in messages:
        event = message.payload
        print(f"[{messages.cluster}] {messages.topic}@{message.offset}: #{event.id} {event.text!r}")
        # An inline cluster is named after its servers; its producer is there like any other.
        forwarded = msgspec.structs.replace(event, forwarded=True)
        await app.producers[SECONDARY].produce("example2", forwarded, key=str(event.id))


class Example2Consumer(Consumer):
    async def consume(self, messages: Messages[Event]) -> None:
        for message in messages:
            event = message.payload
            origin = "forwarded from the primary" if event.forwarded else "produced directly"
            print(f"[{self.cluster}] {self.topic}@{message.offset}: #{event.id} {event.text!r} ({origin})")


app.routes.topic("example2", consumer=Example2Consumer, payload=Event, kafka={"bootstrap.servers": SECONDARY})
