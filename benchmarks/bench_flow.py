"""What a route's flow options cost (filter, throttle, expire_after, delay): consume throughput
of a route with each, against the same route without, in the same run.

``BENCH_FLOW_MESSAGES`` messages of 100 bytes (default 200,000) preloaded on 6 partitions of
the local primary cluster, consumed to the end by one route in batches of ``BATCH``, with

(a) no flow option, a no-op handler: the baseline of (b)-(d);
(a') no flow option, a handler that reads every message's value: the baseline of (e), since
     a filter is handed each ``Message`` and so makes them all;
(b) ``expire_after=3600`` (nothing expires), (c) ``delay=0.001`` (everything is due),
(d) ``throttle=Throttle(10**9, per=1)`` (the budget never runs out): each reads every
    record's timestamp, or counts each batch, and makes no ``Message``;
(e) ``filter=`` a predicate reading the message's value (everything passes), the handler
    reading each value too.

Each variant runs ``BENCH_FLOW_RUNS`` times (default 3), alternating; the median is reported
with its ratio to its baseline. Target: at least 0.95 x the baseline.

On a shared machine the broker runs swing more than these options cost, so the deciding
alone is measured too, in-process: nanoseconds per record of ``Flow.admit`` on batches of
``BATCH`` where everything passes, against making each record's ``Message`` (what a handler
that iterates its batch costs) in the same run. Target for the options other than
``filter`` (which is handed each ``Message``): at most ``DECIDE_TARGET`` of that.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import anyio
from aiokafka import ConsumerRecord, TopicPartition

from aiostream_kafka import App, Message, Messages, Throttle
from aiostream_kafka.messages import from_records
from aiostream_kafka.routing.route import Route
from aiostream_kafka.runtime.clock import Clock
from aiostream_kafka.runtime.flow import Flow
from benchmarks.bench_throughput import PARTITIONS, PAYLOAD, preload
from benchmarks.common import PRIMARY, alternate, median, spread, unique, write_results

MESSAGES = int(os.environ.get("BENCH_FLOW_MESSAGES", "200000"))
RUNS = int(os.environ.get("BENCH_FLOW_RUNS", "3"))
BATCH = 2000
TARGET = 0.95
DECIDE_TARGET = 0.5
DECIDE_ROUNDS = 300
PLAIN = "no flow option"
PLAIN_READ = "no flow option, reads each message"


def has_value(message: Message[bytes]) -> bool:
    return message.value is not None


#: Each variant, its route options, whether its handler reads each message, and its baseline.
VARIANTS: dict[str, tuple[dict[str, Any], bool, str | None]] = {
    PLAIN: ({}, False, None),
    PLAIN_READ: ({}, True, None),
    "expire_after=3600": ({"expire_after": 3600}, False, PLAIN),
    "delay=0.001": ({"delay": 0.001}, False, PLAIN),
    "throttle (budget never spent)": ({"throttle": Throttle(10**9, per=1)}, False, PLAIN),
    "filter (reads each message)": ({"filter": has_value}, True, PLAIN_READ),
}


async def consume(topic: str, options: dict[str, Any], reads: bool) -> float:
    app = App(unique("bench-flow"), kafka={"bootstrap_servers": PRIMARY}, statistics_interval=None)
    count, began, done = 0, 0.0, anyio.Event()

    async def handle(messages: Messages[Any]) -> None:
        nonlocal count, began
        began = began or time.perf_counter()
        if reads:
            for message in messages:
                _ = message.value
        count += len(messages)
        if count >= MESSAGES:
            done.set()

    app.routes.topic(topic, handler=handle, max_messages=BATCH, **options)
    async with app.running():
        with anyio.fail_after(600):
            await done.wait()
        return MESSAGES / (time.perf_counter() - began)


def decide() -> dict[str, Any]:
    """Nanoseconds per record of deciding a batch that all passes, per option, and of making its messages."""
    now = time.time()
    records = [
        ConsumerRecord("t", 0, offset, int(now * 1000), 0, None, PAYLOAD, None, 0, len(PAYLOAD), [])
        for offset in range(BATCH)
    ]
    tp = TopicPartition("t", 0)

    async def noop(messages: Messages[Any]) -> None: ...

    def per_record(work: Callable[[], object]) -> float:
        began = time.perf_counter()
        for _ in range(DECIDE_ROUNDS):
            work()
        return (time.perf_counter() - began) / DECIDE_ROUNDS / BATCH * 1e9

    baseline = per_record(lambda: from_records(records, "primary"))
    figures: dict[str, Any] = {"making each Message": {"ns_per_record": round(baseline, 1)}}
    for name, (options, _, _) in VARIANTS.items():
        if not options:
            continue
        flow = Flow(Route("t", handler=noop, **options), Clock(), cluster="primary", decoder=None)
        cost = per_record(partial(flow.admit, tp, records))
        ratio = cost / baseline
        figures[name] = {"ns_per_record": round(cost, 1), "ratio_to_making_messages": round(ratio, 3)}
        if "filter" not in options:
            figures[name]["meets_target"] = ratio <= DECIDE_TARGET
    return figures


async def run() -> dict[str, Any]:
    topic = unique("bench-flow")
    await preload(topic, MESSAGES)
    runs = await alternate(
        {name: partial(consume, topic, options, reads) for name, (options, reads, _) in VARIANTS.items()},
        RUNS,
    )
    variants: dict[str, Any] = {}
    for name, (_, _, baseline) in VARIANTS.items():
        rate = median(runs[name])
        figures: dict[str, Any] = {
            "median_msgs_per_s": round(rate),
            "runs_msgs_per_s": [round(r) for r in runs[name]],
            "spread_msgs_per_s": spread(runs[name]),
        }
        if baseline is not None:
            ratio = rate / median(runs[baseline])
            figures.update(baseline=baseline, ratio_to_baseline=round(ratio, 3), meets_target=ratio >= TARGET)
        variants[name] = figures
    return {
        "messages": MESSAGES,
        "partitions": PARTITIONS,
        "batch": BATCH,
        "runs": RUNS,
        "variants": variants,
        "deciding": decide(),
    }


def main() -> None:
    figures = anyio.run(run)
    path = write_results("flow", figures)
    print(f"flow options, {MESSAGES} messages, batches of {BATCH}, median of {RUNS} runs")
    print(f"  target: at least {TARGET} x the same route without the option")
    print(f"  {'':<40} {'msg/s':>9} {'vs base':>7}  runs")
    for name, f in figures["variants"].items():
        ratio, verdict = "", ""
        if "ratio_to_baseline" in f:
            ratio = f"{f['ratio_to_baseline']:.3f}"
            verdict = "  ok" if f["meets_target"] else f"  BELOW {TARGET}"
        runs = ", ".join(str(r) for r in f["runs_msgs_per_s"])
        print(f"  {name:<40} {f['median_msgs_per_s']:>9} {ratio:>7}  {runs}{verdict}")
    print(f"  deciding a batch that all passes, in-process (target for all but filter: <= {DECIDE_TARGET} x)")
    for name, f in figures["deciding"].items():
        ratio = f.get("ratio_to_making_messages")
        shown = "" if ratio is None else f"{ratio:.3f} x making each Message"
        verdict = "" if "meets_target" not in f else ("  ok" if f["meets_target"] else "  ABOVE")
        print(f"  {name:<40} {f['ns_per_record']:>7} ns/record  {shown}{verdict}")
    print(f"  written to {path}")


if __name__ == "__main__":
    main()
