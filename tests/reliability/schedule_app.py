"""A recurring job ticking every minute of a clock running 60 times faster (the same in every
process of the scenario): each run appends its tick to a file shared by the processes."""

from __future__ import annotations

import os

from aiostream_kafka import App
from aiostream_kafka.jobs import current_job
from tests.helpers import FastClock

RUNS = os.environ["SCHEDULE_RUNS"]

app = App(
    "schedule-scenario",
    kafka={
        "bootstrap_servers": os.environ["SCHEDULE_BOOTSTRAP"],
        "session_timeout_ms": 6000,
        "heartbeat_interval_ms": 1000,
    },
    group_id=os.environ["SCHEDULE_GROUP"],
)
app.clock = FastClock(float(os.environ["SCHEDULE_ORIGIN"]), speed=60.0)


@app.job(topic=os.environ["SCHEDULE_JOBS"], name="minutely", schedule="* * * * *")
async def minutely() -> None:
    envelope = current_job()
    assert envelope is not None
    line = f"{os.getpid()} {envelope.tick:.0f} {envelope.missed}\n"
    appending = os.open(RUNS, os.O_WRONLY | os.O_APPEND | os.O_CREAT)  # one write a line: stays whole
    try:
        os.write(appending, line.encode())
    finally:
        os.close(appending)


app.jobs.consume(os.environ["SCHEDULE_JOBS"])
