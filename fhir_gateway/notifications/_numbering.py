"""Notifications numbered and queued when their transaction commits, not when their resource is
written.

A subscription's event counter is one row, locked from the moment it is advanced until the commit.
Numbered at the write, every transaction that notifies the same subscriber (every ADT message of a
hospital, for an EHR subscribed to its encounters) waited for the others' whole care plans. Each
notification is therefore noted with what it shows (as the subscriber may see it at the write)
and numbered, built and queued before the commit, after the other end-of-transaction rules
(which may write what notifies). A rolled-back savepoint takes the notifications noted in it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from fhir_gateway.store import outbox, transaction_memo

__all__ = ["defer", "flush_notifications", "forget_notifications"]

_NOTED = "fhir_gateway.notifications.pending"

# given the session and the notification's event number: queue it (its outbox row)
Enqueue = Callable[[Session, int], None]


@dataclass(frozen=True, slots=True)
class _Pending:
    subscription: str
    enqueue: Enqueue
    savepoints: tuple[Any, ...]


def defer(session: Session, subscription: str, enqueue: Enqueue) -> None:
    """Note a notification for ``subscription``, queued with its number before the commit."""
    noted = session.info.setdefault(_NOTED, [])
    noted.append(_Pending(subscription, enqueue, transaction_memo.savepoints(session)))


def flush_notifications(session: Session) -> None:
    """before_commit: number and queue what was noted, subscription by subscription in a fixed
    order (two transactions never wait for each other's counters crosswise), one counter update
    for each."""
    if session.in_nested_transaction():
        return  # a savepoint released: wait for the real commit
    by_subscription: dict[str, list[_Pending]] = {}
    for pending in session.info.pop(_NOTED, None) or []:
        by_subscription.setdefault(pending.subscription, []).append(pending)
    for subscription in sorted(by_subscription):
        noted = by_subscription[subscription]
        first = outbox.next_event_numbers(session, subscription, len(noted))
        for offset, pending in enumerate(noted):
            pending.enqueue(session, first + offset)


def forget_notifications(session: Session, transaction: Any) -> None:
    """A rollback: a savepoint's takes its own notifications with it, the transaction's all."""
    transaction_memo.forget_noted(session, _NOTED, transaction)
