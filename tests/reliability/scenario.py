"""What every reliability scenario shares: a known workload, a durable sink, a one-line report."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest
from aiokafka import AIOKafkaProducer

from aiostream_kafka import App, Message, Messages
from tests.helpers import create_topic, eventually

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "tests" / "reliability" / "results.jsonl"


class Item(msgspec.Struct):
    id: int


async def produce_workload(
    bootstrap: str, topic: str, count: int, partitions: int, *, poison: Iterable[int] = ()
) -> list[int]:
    """``count`` items, id i on partition i % partitions (so per-partition order is id order)."""
    await create_topic(bootstrap, topic, partitions)
    poisoned = set(poison)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    try:
        for i in range(count):
            value = b"\xffnot json" if i in poisoned else msgspec.json.encode(Item(i))
            await producer.send(topic, value, key=str(i).encode(), partition=i % partitions)
        await producer.flush()
    finally:
        await producer.stop()
    return list(range(count))


class Sink:
    """Processed messages in a SQLite file, committed per batch: it survives ``kill -9``."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS processed "
                "(id INTEGER, partition INTEGER, offset INTEGER, worker TEXT, seq INTEGER PRIMARY KEY)"
            )

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30)

    def record(self, rows: Sequence[tuple[int, int, int, str]]) -> None:
        with self._connect() as db:
            db.executemany("INSERT INTO processed (id, partition, offset, worker) VALUES (?, ?, ?, ?)", rows)

    def record_handled(self, messages: Iterable[Message[Item]], worker: str) -> None:
        """Record a handled batch of items as done by ``worker``."""
        self.record([(m.payload.id, m.partition, m.offset, worker) for m in messages])

    def rows(self) -> list[tuple[int, int, int, str]]:
        with self._connect() as db:
            return list(db.execute("SELECT id, partition, offset, worker FROM processed ORDER BY seq"))

    def count(self) -> int:
        with self._connect() as db:
            return int(db.execute("SELECT COUNT(DISTINCT id) FROM processed").fetchone()[0])


def app_from_env(name: str, **options: Any) -> App:
    """The app a scenario's child process runs, on the broker and group the scenario hands it
    in ``SINK_BOOTSTRAP`` and ``SINK_GROUP``; ``options`` for what only that app sets."""
    return App(
        name,
        kafka={"bootstrap_servers": os.environ["SINK_BOOTSTRAP"], "session_timeout_ms": 10000},
        group_id=os.environ["SINK_GROUP"],
        concurrency=6,
        **options,
    )


def failing_on(failing: set[int], sink: Sink) -> Callable[[Messages[Item]], Awaitable[None]]:
    """The handler of the failures scenarios: a batch fails at its first item in ``failing``,
    and the items it marked before that are recorded (as worker ``app``) all the same, so a
    retry that repeated any of them would show as a duplicate."""

    async def handle(messages: Messages[Item]) -> None:
        done = []
        try:
            for message in messages:
                if message.payload.id in failing:
                    raise RuntimeError(f"item {message.payload.id} cannot be handled")
                done.append((message.payload.id, message.partition, message.offset, "app"))
                messages.mark_as_consumed(message)
        finally:
            sink.record(done)

    return handle


@dataclass(frozen=True)
class Report:
    scenario: str
    produced: int
    processed: int
    unique: int
    duplicates: int
    lost: int
    dead_lettered: int = 0

    @classmethod
    def of(
        cls, scenario: str, produced: Sequence[int], sink: Sink, dead_lettered: Iterable[int] = ()
    ) -> Report:
        return cls.of_ids(scenario, produced, [row[0] for row in sink.rows()], dead_lettered)

    @classmethod
    def of_ids(
        cls, scenario: str, produced: Sequence[int], ids: Sequence[int], dead_lettered: Iterable[int] = ()
    ) -> Report:
        """The accounting of ``ids`` processed (in any order, repeats included)."""
        unique = set(ids)
        dead = set(dead_lettered)
        lost = len(set(produced) - unique - dead)
        return cls(scenario, len(produced), len(ids), len(unique), len(ids) - len(unique), lost, len(dead))

    def line(self) -> str:
        dlq = f" dead_lettered={self.dead_lettered}" if self.dead_lettered else ""
        return (
            f"[{self.scenario}] produced={self.produced} processed={self.processed} unique={self.unique} "
            f"duplicates={self.duplicates} lost={self.lost}{dlq}"
        )

    def write(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Show the line in the test run's output, and keep it in tests/reliability/results.jsonl."""
        with capsys.disabled():
            print(f"\n{self.line()}")
        with RESULTS.open("a") as out:
            out.write(json.dumps(self.__dict__) + "\n")


def start_worker(
    env: dict[str, str], log: Path, app: str = "tests.reliability.sink_app:app"
) -> subprocess.Popen[bytes]:
    """An app (the sink app unless told) in its own process, run through the CLI like a real
    deployment."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "aiostream_kafka", "run", app],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def start_pool(
    app: str, processes: int, env: dict[str, str], log: Path, *options: str
) -> subprocess.Popen[bytes]:
    """``aiostream-kafka run APP --processes N``: the parent and its workers share ``log``."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "aiostream_kafka", "run", app, "--processes", str(processes), *options],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def worker_pids(log: Path, state: str = "ready") -> dict[str, int]:
    """The latest pid of each worker the parent logged as ``state`` (ready, started, restarted)."""
    pids: dict[str, int] = {}
    for name, pid in re.findall(
        rf"aiostream_kafka.workers: (worker-\d+) {state} \(pid (\d+)\)", log.read_text()
    ):
        pids[name] = int(pid)
    return pids


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def end_pool(parent: subprocess.Popen[bytes], log: Path) -> int:
    """SIGTERM the parent and wait; whatever happened, leave no worker behind."""
    if parent.poll() is None:
        parent.send_signal(signal.SIGTERM)
    try:
        return parent.wait(timeout=60)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        for state in ("started", "restarted"):
            for pid in worker_pids(log, state).values():
                if is_worker(pid):  # a pid from the log may since belong to another process
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)


def is_worker(pid: int) -> bool:
    """Whether ``pid`` is (still) an aiostream-kafka worker process."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"aiostream_kafka" in command and b"--heartbeat-fd" in command


async def crash_then_restart(
    env: dict[str, str], sink: Sink, count: int, logs: Path, app: str = "tests.reliability.sink_app:app"
) -> None:
    """The two lives of a crash scenario: a worker killed with ``kill -9`` a third of the way
    through the ``count`` items, then a second one that finishes them from the committed offsets."""
    first = start_worker({**env, "SINK_WORKER": "first"}, logs / "first.log", app)
    try:
        await eventually(lambda: sink.count() >= count // 3, within=60, what="a third of the workload")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert sink.count() < count, "the crash came too late to be mid-stream"

    second = start_worker({**env, "SINK_WORKER": "second"}, logs / "second.log", app)
    try:
        await eventually(lambda: sink.count() == count, within=90, what="the restart to finish the workload")
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)
