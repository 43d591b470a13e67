"""aiostream-kafka inside a FastAPI service: an endpoint that produces, a route that consumes.

    uvicorn examples.fastapi_app:api

The Kafka app starts and stops with the web app through its lifespan; here it is nested in
the service's own lifespan, which is how it composes with other resources. ``POST
/greetings`` takes the payload Struct itself as its JSON body (``struct_body``); the lifespan
sets logging up as the CLI's (``configure_logging``), since uvicorn sets up only its own.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import msgspec
from fastapi import Depends, FastAPI

from aiostream_kafka import App, Messages, configure_logging
from aiostream_kafka.fastapi import struct_body

PRIMARY = os.environ.get("AIOSTREAM_KAFKA_PRIMARY", "127.0.0.1:19092")


class Greeting(msgspec.Struct):
    name: str


def create_api(topic: str = "greetings", group_id: str = "fastapi-example") -> FastAPI:
    kafka = App("fastapi-example", kafka={"bootstrap_servers": PRIMARY}, group_id=group_id)
    greeted: list[str] = []

    @kafka.route(topic, payload=Greeting)
    async def on_greeting(messages: Messages[Greeting]) -> None:
        greeted.extend(message.payload.name for message in messages)

    @asynccontextmanager
    async def lifespan(api: FastAPI) -> AsyncIterator[None]:
        configure_logging(level="INFO")  # uvicorn leaves the framework's lines without a handler
        async with kafka.lifespan(api):
            yield

    api = FastAPI(lifespan=lifespan)
    api.state.kafka = kafka

    @api.post("/greet/{name}", status_code=202)
    async def greet(name: str) -> dict[str, int]:
        delivered = await kafka.producer.produce(topic, Greeting(name), key=name)
        return {"partition": delivered.partition, "offset": delivered.offset}

    @api.post("/greetings", status_code=202)
    async def greet_with_a_body(
        greeting: Annotated[Greeting, Depends(struct_body(Greeting))],
    ) -> dict[str, int]:
        delivered = await kafka.producer.produce(topic, greeting, key=greeting.name)
        return {"partition": delivered.partition, "offset": delivered.offset}

    @api.get("/greeted")
    async def who_was_greeted() -> list[str]:
        return greeted

    return api


api = create_api()
