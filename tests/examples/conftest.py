"""The examples are tested with the pytest plugin users get: ``kafka_app`` names the app."""

from __future__ import annotations

import pytest

from aiostream_kafka import App
from examples.multi_cluster import app


@pytest.fixture
def kafka_app() -> App:
    return app
