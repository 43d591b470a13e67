"""``struct_body``: a msgspec Struct as a FastAPI request body, a bad one answered with a 422."""

from __future__ import annotations

from typing import Annotated, Any

import httpx
import msgspec
from fastapi import Depends, FastAPI

from aiostream_kafka.fastapi import struct_body


class Line(msgspec.Struct):
    sku: str
    quantity: int


class Order(msgspec.Struct):
    id: int
    lines: list[Line] = []


def service() -> FastAPI:
    api = FastAPI()

    @api.post("/orders")
    async def create(order: Annotated[Order, Depends(struct_body(Order))]) -> dict[str, Any]:
        return {
            "type": type(order).__name__,
            "id": order.id,
            "quantities": [line.quantity for line in order.lines],
        }

    return api


async def post(body: bytes) -> httpx.Response:
    transport = httpx.ASGITransport(app=service())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.post("/orders", content=body, headers={"content-type": "application/json"})


async def test_a_body_is_decoded_into_the_struct() -> None:
    response = await post(b'{"id": 7, "lines": [{"sku": "a", "quantity": 2}]}')

    assert response.status_code == 200
    assert response.json() == {"type": "Order", "id": 7, "quantities": [2]}


async def test_a_wrong_field_is_a_422_naming_where_it_is() -> None:
    response = await post(b'{"id": 7, "lines": [{"sku": "a", "quantity": "two"}]}')

    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert problem["loc"] == ["body", "lines", 0, "quantity"]
    assert problem["msg"] == "Expected `int`, got `str`"
    assert problem["type"] == "value_error"


async def test_a_missing_field_is_a_422() -> None:
    response = await post(b'{"lines": []}')

    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert (problem["loc"], problem["msg"]) == (["body"], "Object missing required field `id`")


async def test_a_body_that_is_not_json_is_a_422() -> None:
    response = await post(b"{not json")

    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert problem["type"] == "json_invalid"
    assert problem["msg"].startswith("JSON is malformed")
