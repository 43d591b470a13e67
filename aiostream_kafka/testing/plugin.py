"""The pytest plugin (registered as the ``aiostream_kafka`` entry point): two fixtures.

- ``kafka_app``: the App under test. Set ``aiostream_kafka_app = module:app`` in your pytest
  ini options, or define a ``kafka_app`` fixture of your own that returns the App.
- ``kafka_testing``: that app running on in-memory clusters for one test (``TestApp``).

``kafka_testing`` is an async fixture; it needs pytest-asyncio (any mode).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from aiostream_kafka.app import App
from aiostream_kafka.testing.harness import TestApp

try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - only without pytest-asyncio
    pytest_asyncio = None  # type: ignore[assignment]

INI_OPTION = "aiostream_kafka_app"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(INI_OPTION, "the App the kafka_app fixture loads, as module:attribute", default="")


@pytest.fixture
def kafka_app(request: pytest.FixtureRequest) -> App:
    """The App under test, from the ``aiostream_kafka_app`` ini option (or your own fixture)."""
    from aiostream_kafka.cli import CliError, load_app

    path = str(request.config.getini(INI_OPTION))
    if not path:
        pytest.fail(
            f"the kafka_app fixture needs your App: set {INI_OPTION} = module:app in your pytest "
            f"ini options, or define a fixture named kafka_app that returns it",
            pytrace=False,
        )
    try:
        return load_app(path)
    except CliError as error:
        pytest.fail(f"{INI_OPTION} = {path}: {error}", pytrace=False)


if pytest_asyncio is not None:

    @pytest_asyncio.fixture
    async def kafka_testing(kafka_app: App) -> AsyncIterator[TestApp]:
        """``kafka_app`` running on in-memory clusters for this test."""
        async with kafka_app.testing() as harness:
            yield harness

else:  # pragma: no cover - only without pytest-asyncio

    @pytest.fixture
    def kafka_testing() -> None:
        pytest.fail("the kafka_testing fixture is async: pip install pytest-asyncio", pytrace=False)
