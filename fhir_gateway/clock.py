"""The gateway's one clock: a seam so tests (and monitors) can control time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

__all__ = ["now", "set_clock", "reset_clock", "to_instant", "to_db", "from_db"]

_clock: Callable[[], datetime] = lambda: datetime.now(UTC)  # noqa: E731


def now() -> datetime:
    """The current time, timezone-aware UTC."""
    return _clock()


def set_clock(clock: Callable[[], datetime]) -> None:
    global _clock
    _clock = clock


def reset_clock() -> None:
    set_clock(lambda: datetime.now(UTC))


def to_instant(value: datetime) -> str:
    """FHIR instant text, UTC with microseconds: 2026-11-22T18:30:00.123456Z."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def to_db(value: datetime) -> datetime:
    """Naive UTC, as both databases store it."""
    return value.astimezone(UTC).replace(tzinfo=None)


def from_db(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
