"""examples/fastapi_app.py under the harness: an HTTP call produces, the route consumes."""

from __future__ import annotations

import httpx

from examples.fastapi_app import Greeting, create_api


async def test_a_greeting_posted_over_http_is_produced_and_consumed() -> None:
    api = create_api()
    kafka = api.state.kafka
    # The harness runs the Kafka app; the FastAPI lifespan (which would start it for real) is not run.
    async with (
        kafka.testing() as t,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://test") as client,
    ):
        response = await client.post("/greet/ada")
        assert response.status_code == 202
        assert response.json() == {"partition": 0, "offset": 0}

        await t.drain()
        assert [m.payload for m in t.produced("greetings")] == [Greeting("ada")]
        assert (await client.get("/greeted")).json() == ["ada"]


async def test_a_greeting_posted_as_a_json_body_is_produced_and_a_bad_one_is_a_422() -> None:
    api = create_api()
    async with (
        api.state.kafka.testing() as t,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://test") as client,
    ):
        assert (await client.post("/greetings", json={"name": "grace"})).status_code == 202
        refused = await client.post("/greetings", json={"name": 42})
        assert refused.status_code == 422
        assert refused.json()["detail"][0]["loc"] == ["body", "name"]

        await t.drain()
        assert [m.payload for m in t.produced("greetings")] == [Greeting("grace")]
