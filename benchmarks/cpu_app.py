"""The app ``bench_processes`` runs under ``aiostream-kafka run --processes N``: a CPU-bound
handler, decoding every payload with msgspec and then churning on it, as a parser, a
feature extractor or an enricher would. Configured through ``BENCH_CPU_*`` variables."""

from __future__ import annotations

import os

import msgspec

from aiostream_kafka import App, Messages


class Reading(msgspec.Struct):
    sensor: int
    value: float
    unit: str
    note: str


ROUNDS = int(os.environ.get("BENCH_CPU_ROUNDS", "4000"))

app = App(
    "bench-cpu",
    kafka={"bootstrap_servers": os.environ.get("BENCH_CPU_BOOTSTRAP", "127.0.0.1:19092")},
    group_id=os.environ.get("BENCH_CPU_GROUP", "bench-cpu"),
    statistics_interval=None,
)


def churn(reading: Reading, rounds: int) -> int:
    """Deterministic pure-Python work: it holds the GIL, so only more processes go faster."""
    h = reading.sensor + len(reading.note)
    for i in range(rounds):
        h = (h * 31 + i) % 1_000_003
    return h


@app.route(os.environ.get("BENCH_CPU_TOPIC", "bench-cpu"), payload=Reading, max_messages=100)
async def handle(messages: Messages[Reading]) -> None:
    for reading in messages.payloads():
        churn(reading, ROUNDS)
