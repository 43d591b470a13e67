"""The WorkerPool: ``aiostream-kafka run APP --processes N``, N copies of one app under a parent.

Python runs one core per process, so a machine's cores are used by running the app N
times. Every worker is the whole app in the same consumer groups, so Kafka spreads the
partitions over them exactly as it would over N machines; nothing is coordinated here
beyond keeping N of them alive.

Workers are fresh interpreters (the CLI started again in worker mode), never ``fork``:
a forked child inherits the parent's memory as it is, an event loop, sockets, aiokafka
clients with their connections and buffered batches, locks other threads held, and two
processes using one of those corrupt it without a word. A fresh interpreter imports the
app itself and creates its producers and connections after it starts, so nothing
crosses. The parent imports the app only to validate it (that makes no connection) and
never starts it.

The parent restarts a worker that dies (non-zero exit or a signal) after the app's
``restart_backoff``, replaces one whose heartbeat stops (``runtime/heartbeat.py``), and
gives up, stopping the others, when one worker keeps failing (``RestartPolicy``). SIGINT
and SIGTERM are passed on to every worker and the parent waits for their graceful stop,
bounded by ``stop_timeout`` (then kills); a second SIGINT (Ctrl-C) kills at once, and a
second SIGTERM (``REPEAT_WINDOW`` or more after the first) is passed on, so that every
worker stops at once by itself.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import anyio
from anyio.abc import Process

from aiostream_kafka.runtime.backoff import Backoff
from aiostream_kafka.runtime.heartbeat import HeartbeatReader, Liveness
from aiostream_kafka.runtime.signals import REPEAT_WINDOW

log = logging.getLogger("aiostream_kafka.workers")

#: The variable every worker finds its number (1..N) in, e.g. to open its own metrics port.
WORKER_VARIABLE = "AIOSTREAM_KAFKA_WORKER"

#: ``command(number, heartbeat_fd, heartbeat_interval)``: the argv that starts worker ``number``.
WorkerCommand = Callable[[int, int, float], Sequence[str]]


def available_cpus() -> int:
    """The CPUs this process may run on: its affinity mask (taskset, a container's cpuset), which
    may be fewer than the machine's. A CPU quota (``docker --cpus``) is not seen here."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@dataclass(frozen=True)
class RestartPolicy:
    """Restart a failed worker after a backoff; give up once it failed ``max_failures`` times
    within ``window`` seconds: a worker that crashes at every start (a bug, a missing secret)
    would otherwise be restarted for ever while consuming nothing."""

    backoff: Backoff = Backoff(initial=0.5, maximum=30.0)
    max_failures: int = 5
    window: float = 300.0

    def next_restart(self, failures: Sequence[float], now: float) -> float | None:
        """Seconds before restarting a worker that failed at ``failures`` (monotonic times, the
        latest included), or None to give up. Old failures fall out of the window, so a worker
        that fails now and then is always restarted, and its backoff starts over."""
        recent = self.recent(failures, now)
        if recent >= self.max_failures:
            return None
        return self.backoff.delay(recent)

    def recent(self, failures: Sequence[float], now: float) -> int:
        return sum(1 for at in failures if now - at <= self.window)


@dataclass
class Worker:
    number: int
    process: Process
    heartbeat: HeartbeatReader
    ready: bool = False

    @property
    def name(self) -> str:
        return f"worker-{self.number}"

    @property
    def pid(self) -> int:
        return self.process.pid


@dataclass
class _Stop:
    """Why and how the pool is stopping; set once."""

    signal: signal.Signals
    at: float
    deadline: float
    problems: list[str] = field(default_factory=list)
    forced: bool = False  # a second SIGINT: kill now, do not wait for the deadline
    hurried: bool = False  # a second SIGTERM, passed on: the workers stop at once themselves


class WorkerPool:
    """Keeps ``processes`` workers running until a signal, or until one keeps failing.

    ``run()`` returns None after a clean stop, or the reason the pool did not end cleanly
    (the CLI prints it and exits 1).
    """

    def __init__(
        self,
        command: WorkerCommand,
        processes: int,
        *,
        liveness: Liveness = Liveness(),
        restarts: RestartPolicy = RestartPolicy(),
        stop_timeout: float = 40.0,
        tick: float = 0.25,
    ) -> None:
        if processes < 1:
            raise ValueError(f"a pool needs at least one process, not {processes}")
        self._command = command
        self.processes = processes
        self._liveness = liveness
        self._restarts = restarts
        self._stop_timeout = stop_timeout
        self._tick = tick
        self._workers: dict[int, Worker] = {}
        self._stopping = anyio.Event()
        self._stop: _Stop | None = None
        self._gave_up: str | None = None

    async def run(self) -> str | None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with anyio.create_task_group() as pool:

                async def on_signals() -> None:
                    async for received in signals:
                        if self._stop is None:
                            log.info("%s: stopping %d worker(s)", received.name, len(self._workers))
                            self.request_stop(received)
                        elif received == signal.SIGINT:  # Ctrl-C again: a person in a hurry
                            log.warning("SIGINT again: killing the workers now")
                            self._kill_all("killed on a second SIGINT")
                        elif self._stop.hurried or time.monotonic() - self._stop.at < REPEAT_WINDOW:
                            # tools repeat SIGTERM (timeout(1) signals the child and its group)
                            log.info("%s again: already stopping", received.name)
                        else:
                            log.warning("%s again: telling the workers to stop at once", received.name)
                            self._hurry(received)

                pool.start_soon(on_signals)
                async with anyio.create_task_group() as slots:
                    for number in range(1, self.processes + 1):
                        slots.start_soon(self._keep, number)
                pool.cancel_scope.cancel()
        problems = [self._gave_up] if self._gave_up else []
        problems += self._stop.problems if self._stop else []
        return "; ".join(problems) or None

    # --- what the parent's probes read (any thread) ------------------------------------------

    def worker(self, number: int) -> Worker | None:
        """Worker ``number`` (1..N) while it runs; None while it is being (re)started."""
        return self._workers.get(number)

    @property
    def gave_up(self) -> str | None:
        """Why the pool gave up on a worker that kept failing, once it has."""
        return self._gave_up

    @property
    def stopping(self) -> bool:
        return self._stop is not None

    # --- one slot: start, watch, restart ---------------------------------------------------

    async def _keep(self, number: int) -> None:
        """Keep worker ``number`` running until the pool stops, restarting it when it fails."""
        failures: list[float] = []
        while self._stop is None:
            try:
                worker = await self._spawn(number, restart=bool(failures))
            except OSError as error:
                reason: str | None = f"could not be started: {error}"
            else:
                try:
                    reason = await self._watch(worker)
                finally:
                    del self._workers[number]
                    worker.heartbeat.close()
                    await worker.process.aclose()
            if self._stop is not None:
                return
            name = f"worker-{number}"
            if reason is None:
                _log(
                    logging.WARNING,
                    name,
                    "ended on its own with exit status 0 (its app ended); not restarted",
                )
                return
            now = time.monotonic()
            failures.append(now)
            delay = self._restarts.next_restart(failures, now)
            if delay is None:
                self._give_up(number, reason, self._restarts.recent(failures, now))
                return
            _log(
                logging.ERROR,
                name,
                "%s; restarting it in %.1fs (failure %d of %d allowed within %gs)",
                reason,
                delay,
                self._restarts.recent(failures, now),
                self._restarts.max_failures,
                self._restarts.window,
            )
            with anyio.move_on_after(delay):
                await self._stopping.wait()

    async def _spawn(self, number: int, *, restart: bool) -> Worker:
        read_fd, write_fd = os.pipe()
        try:
            process = await anyio.open_process(
                list(self._command(number, write_fd, self._liveness.interval)),
                stdin=subprocess.DEVNULL,
                stdout=None,  # the parent's own output: worker lines carry a worker-N prefix
                stderr=None,
                pass_fds=(write_fd,),
                # Its own session: a Ctrl-C in a terminal reaches the parent only, which passes
                # it on once (not twice, as to a shared process group).
                start_new_session=True,
                env={**os.environ, WORKER_VARIABLE: str(number)},
            )
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)  # the worker holds its own copy; ours would hide its exit
        worker = Worker(number, process, HeartbeatReader(read_fd, time.monotonic()))
        self._workers[number] = worker
        _log(logging.INFO, worker.name, "%s (pid %d)", "restarted" if restart else "started", worker.pid)
        if self._stop is not None:  # the stop came while it was being started
            self._signal(worker, self._stop.signal)
        return worker

    async def _watch(self, worker: Worker) -> str | None:
        """Until the worker exits (or is killed): None if that was fine, else why it was not."""
        while worker.process.returncode is None:
            with anyio.move_on_after(self._tick):
                await worker.process.wait()
            now = time.monotonic()
            worker.heartbeat.drain(now)
            if worker.process.returncode is not None:
                break
            if self._stop is not None:
                if self._stop.forced or now > self._stop.deadline:
                    await self._kill_unstopped(worker)
                    return None
                continue
            if not worker.ready and worker.heartbeat.joined_at is not None:
                worker.ready = True
                _log(logging.INFO, worker.name, "ready (pid %d): joined its consumer groups", worker.pid)
            hung = self._liveness.verdict(worker.heartbeat, now)
            if hung is not None:
                _log(logging.ERROR, worker.name, "(pid %d) %s; killing it", worker.pid, hung)
                # SIGKILL, not SIGTERM: a loop that does not run cannot act on SIGTERM either.
                # What it had not committed is delivered again to the partitions' next owner.
                worker.process.kill()
                await worker.process.wait()
                return hung
        return self._exited(worker)

    async def _kill_unstopped(self, worker: Worker) -> None:
        assert self._stop is not None
        if not self._stop.forced:
            problem = f"{worker.name} did not stop within {self._stop_timeout:g}s and was killed"
            self._stop.problems.append(problem)
            _log(logging.ERROR, worker.name, "(pid %d) did not stop in time; killing it", worker.pid)
        worker.process.kill()
        await worker.process.wait()

    def _exited(self, worker: Worker) -> str | None:
        code = worker.process.returncode
        assert code is not None
        if self._stop is not None:
            stop = self._stop.signal
            _log(logging.INFO, worker.name, "stopped (%s)", _status(code))
            # 128+n: the CLI's status for an interrupt that came before the app's own handling.
            if code not in (0, -stop, 128 + stop):
                self._stop.problems.append(f"{worker.name} stopped with {_status(code)}")
            return None
        if code == 0:
            return None
        return f"{_status(code)}{'' if worker.heartbeat.ready_at is not None else ' before its app started'}"

    # --- stopping --------------------------------------------------------------------------

    def request_stop(self, received: signal.Signals = signal.SIGTERM) -> None:
        """Pass ``received`` on to every worker and stop restarting them; what SIGTERM to the parent does."""
        if self._stop is not None:
            return
        now = time.monotonic()
        self._stop = _Stop(received, now, now + self._stop_timeout)
        self._stopping.set()
        for worker in list(self._workers.values()):
            self._signal(worker, received)

    def _hurry(self, received: signal.Signals) -> None:
        """Pass a second SIGTERM on: each worker's ``App.serve`` then stops at once (exit 1),
        committing what is done, which a kill would not."""
        assert self._stop is not None
        self._stop.hurried = True
        for worker in list(self._workers.values()):
            self._signal(worker, received)

    def _give_up(self, number: int, reason: str, failures: int) -> None:
        self._gave_up = (
            f"worker-{number} failed {failures} times within {self._restarts.window:g}s "
            f"(last: {reason}); stopped the other workers"
        )
        log.error("giving up: %s", self._gave_up)
        self.request_stop(signal.SIGTERM)

    def _kill_all(self, problem: str) -> None:
        assert self._stop is not None
        if not self._stop.forced:
            self._stop.problems.append(problem)
            self._stop.forced = True  # every watcher kills its worker on its next tick

    def _signal(self, worker: Worker, sig: signal.Signals) -> None:
        if worker.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):  # exited meanwhile; its watcher reports it
                worker.process.send_signal(sig)


def _log(level: int, worker: str, message: str, *args: object) -> None:
    """``worker-N <message>``, with ``record.worker`` for formatters that want fields."""
    log.log(level, f"{worker} {message}", *args, extra={"worker": worker})


def _status(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit status {returncode}"
