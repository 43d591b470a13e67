"""The FastAPI example works through its lifespan, producing from an endpoint and consuming."""

from __future__ import annotations

import uuid

import httpx
from asgi_lifespan import LifespanManager

from examples.fastapi_app import create_api
from tests.helpers import eventually_equal


async def test_an_endpoint_produces_and_a_route_consumes_within_the_lifespan(topic_name: str) -> None:
    api = create_api(topic=topic_name, group_id=f"g-{uuid.uuid4().hex[:8]}")

    async with LifespanManager(api) as manager:
        assert api.state.kafka.state == "running"
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.post("/greet/ada")
            assert response.status_code == 202
            assert response.json() == {"partition": 0, "offset": 0}

            async def greeted() -> list[str]:
                names: list[str] = (await client.get("/greeted")).json()
                return names

            await eventually_equal(greeted, ["ada"], what="the greeting consumed")

    assert api.state.kafka.state == "stopped"
