"""Kafka transactions: which one a task is in, and the one cluster it can cover.

A transaction lives on one cluster: its records (and the consumer offsets sent with it)
commit or abort together there, and nothing on another cluster can join it. ``current``
says which transaction the running task (and every task it starts) is inside of, so that
each producer can tell what to do with a send: the transaction's own producer sends as
usual; another producer of the same cluster hands the send to it (a handler of an
exactly-once route writes ``app.producer.produce(...)`` as ever, and it is part of the
batch's transaction); a producer of another cluster refuses it, naming both clusters.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiokafka.errors import ProducerFenced

from aiostream_kafka.errors import CrossClusterTransactionError, TransactionError

if TYPE_CHECKING:
    from aiostream_kafka.producing.producer import Producer


@dataclass(frozen=True)
class InTransaction:
    """The transaction a task is in: whose producer sends its records, on which cluster."""

    producer: Producer
    #: How errors name what opened it: a route, or ``app.producers['x'].transaction()``.
    owner: str

    @property
    def cluster(self) -> str:
        return self.producer.cluster


_CURRENT: ContextVar[InTransaction | None] = ContextVar("aiostream_kafka_transaction", default=None)


def current() -> InTransaction | None:
    """The transaction the running task is in, if any."""
    return _CURRENT.get()


def enter(transaction: InTransaction) -> object:
    """Make ``transaction`` the running task's; returns what ``leave`` takes."""
    return _CURRENT.set(transaction)


def leave(token: object) -> None:
    _CURRENT.reset(token)  # type: ignore[arg-type]  # the token enter() returned


def redirected(transaction: InTransaction, cluster: str, topic: str) -> Producer:
    """The producer that sends a record for ``topic`` on ``cluster`` inside ``transaction``."""
    if cluster != transaction.cluster:
        raise CrossClusterTransactionError(
            f"{transaction.owner} is a transaction on cluster {transaction.cluster!r}; a produce to "
            f"topic {topic!r} on cluster {cluster!r} cannot be part of it (a Kafka transaction "
            f"covers one cluster). Produce to {cluster!r} outside the transaction, at least once "
            f"with idempotent keys or through an outbox topic on {transaction.cluster!r} "
            f"(docs/exactly-once.md)",
            transaction_cluster=transaction.cluster,
            produce_cluster=cluster,
        )
    return transaction.producer


def transaction_failure(
    error: BaseException, *, cluster: str, transactional_id: str, doing: str
) -> TransactionError:
    """aiokafka's error of a transaction step as a ``TransactionError`` naming the cluster."""
    fenced = isinstance(error, ProducerFenced)
    reason = (
        "another producer with the same transactional id took over (fenced: a newer owner of "
        "this work), so this one stops"
        if fenced
        else f"{type(error).__name__}: {error}"
    )
    failure = TransactionError(
        f"could not {doing} the transaction {transactional_id!r} on cluster {cluster!r}: {reason}",
        cluster=cluster,
        transactional_id=transactional_id,
        fenced=fenced,
    )
    failure.__cause__ = error
    return failure
