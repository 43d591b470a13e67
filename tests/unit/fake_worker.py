"""A stand-in for a CLI worker in the WorkerPool's tests: no app, no Kafka, one behaviour.

A worker that gets going says at once that its app started and its consumers joined (``rj``).

``python fake_worker.py BEHAVIOUR HEARTBEAT_FD INTERVAL STATE_DIR``; every start appends its
pid to ``STATE_DIR/starts-<worker number>``, so a test can count restarts.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path


def beat_until_sigterm(fd: int, interval: float) -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    os.write(fd, b"rj")
    while True:
        os.write(fd, b"h")
        time.sleep(interval)


def main() -> None:
    behaviour, fd, interval, state = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), Path(sys.argv[4])
    starts = state / f"starts-{os.environ['AIOSTREAM_KAFKA_WORKER']}"
    with starts.open("a") as out:
        out.write(f"{os.getpid()}\n")
    first_start = len(starts.read_text().split()) == 1

    if behaviour == "crash":
        sys.exit(3)
    if behaviour == "done":  # ready, then ends by itself like an app with nothing to consume
        os.write(fd, b"rj")
        sys.exit(0)
    if behaviour == "mute":  # never ready: stuck while starting
        time.sleep(60)
    if behaviour == "stubborn":  # ignores SIGTERM
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        os.write(fd, b"rj")
        while True:
            os.write(fd, b"h")
            time.sleep(interval)
    if behaviour == "drains":  # a graceful stop that takes long; a second SIGTERM cuts it short
        received: list[int] = []

        def on_sigterm(*_: object) -> None:
            received.append(signal.SIGTERM)
            if len(received) > 1:
                sys.exit(1)  # what App.serve does: stop at once, a failure

        signal.signal(signal.SIGTERM, on_sigterm)
        os.write(fd, b"rj")
        while True:
            os.write(fd, b"h")
            time.sleep(interval)
    if behaviour == "hangs-once" and first_start:  # ready, then its "loop" blocks
        os.write(fd, b"rj")
        time.sleep(60)
    beat_until_sigterm(fd, interval)  # "obedient", and "hangs-once" once replaced


if __name__ == "__main__":
    main()
