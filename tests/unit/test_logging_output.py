"""``configure_logging``: an embedded app (under uvicorn, in a script) gets the CLI's lines,
and a failure's traceback is logged once, dead-lettered or not."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from aiostream_kafka import App, ConfigError, DeadLetterQueue, Messages, configure_logging

#: An app served as uvicorn serves it: uvicorn's own logging config, which leaves the root
#: logger without a handler; then the one line the docs give.
UNDER_UVICORN = """
import logging, logging.config

import uvicorn.config

from aiostream_kafka import App, configure_logging

logging.config.dictConfig(uvicorn.config.LOGGING_CONFIG)
configure_logging(level="INFO")

app = App("svc", kafka={"bootstrap_servers": "127.0.0.1:1"})
app.monitor.emit("partitions.assigned", cluster="primary", group="svc", partitions=["orders/0"])
app.monitor.emit("batch.slow", cluster="primary", topic="orders", partition=0, seconds=12.5)
logging.getLogger("aiokafka.consumer.group_coordinator").info("Joined group 'svc' (generation 1)")
logging.getLogger("aiokafka.conn").error("Unable connect to node with id 1")
logging.getLogger("uvicorn.error").info("Application startup complete.")
"""

LINE = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} "


def test_under_uvicorn_the_frameworks_lines_have_time_level_and_logger() -> None:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(UNDER_UVICORN)], capture_output=True, text=True, check=True
    )
    lines = done.stderr.splitlines()
    assert re.fullmatch(LINE + r"INFO    aiostream_kafka: partitions.assigned cluster=primary .*", lines[0])
    assert re.fullmatch(
        LINE + r"WARNING aiostream_kafka: batch.slow cluster=primary topic=orders .*", lines[1]
    )
    assert re.fullmatch(LINE + r"ERROR   aiokafka.conn: Unable connect to node with id 1", lines[2])
    assert lines[3:] == [
        "INFO:     Application startup complete."
    ]  # uvicorn's own, once, as uvicorn prints it
    assert "Joined group" not in done.stderr  # aiokafka's INFO: only at DEBUG


@contextmanager
def bare_root() -> Iterator[logging.Logger]:
    """The root logger without pytest's capture handlers, as a fresh process has it."""
    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers = []
    try:
        yield root
    finally:
        root.handlers = saved


def test_calling_it_again_changes_the_level_and_adds_no_second_handler() -> None:
    with bare_root() as root:
        configure_logging("INFO")
        configure_logging("debug")
        assert len(root.handlers) == 1
    assert logging.getLogger("aiostream_kafka").level == logging.DEBUG
    assert logging.getLogger("aiokafka").level == logging.DEBUG


def test_an_app_that_configured_logging_keeps_its_handlers() -> None:
    own = logging.StreamHandler()
    with bare_root() as root:
        root.addHandler(own)
        configure_logging("WARNING")
        assert root.handlers == [own]
    assert logging.getLogger("aiostream_kafka").level == logging.WARNING


def test_a_level_that_is_not_one_is_refused_naming_the_levels() -> None:
    with pytest.raises(
        ConfigError, match=r"configure_logging\(level='verbose'\): one of debug, info, warning"
    ):
        configure_logging("verbose")


async def test_a_dead_lettered_failure_logs_its_traceback_once(caplog: pytest.LogCaptureFixture) -> None:
    app = App("shop", kafka={"bootstrap_servers": "127.0.0.1:1"})

    @app.route("orders", dead_letter_queue=DeadLetterQueue("orders.dlq", max_retries=0))
    async def on_orders(messages: Messages[bytes]) -> None:
        raise ValueError("no such product")

    caplog.set_level(logging.INFO, logger="aiostream_kafka")
    async with app.testing() as t:
        await t.feed("orders", [b"{}"])
        assert len(t.dead_lettered("orders")) == 1

    with_traceback = [r for r in caplog.records if r.exc_info is not None]
    assert [r.getMessage().split()[0] for r in with_traceback] == ["batch.failed"]
    [dispatched] = [r for r in caplog.records if getattr(r, "event", None) == "dlq.dispatched"]
    assert "error=ValueError: no such product" in dispatched.getMessage()


def test_the_clis_info_is_the_frameworks_not_aiokafkas_group_chatter() -> None:
    from aiostream_kafka.cli import logs

    with bare_root():
        logs.configure("info")
        assert logging.getLogger("aiostream_kafka").isEnabledFor(logging.INFO)
        assert not logging.getLogger("aiokafka.consumer.group_coordinator").isEnabledFor(logging.INFO)
        assert logging.getLogger("aiokafka.consumer.group_coordinator").isEnabledFor(logging.WARNING)
        logs.configure("debug")
        assert logging.getLogger("aiokafka.consumer.group_coordinator").isEnabledFor(logging.DEBUG)
