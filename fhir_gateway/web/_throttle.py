"""Failed sign-ins per network address (in this process): slows down guessing across many
accounts, where the per-account lock (``_users``) slows down guessing one account's password."""

from __future__ import annotations

import threading
import time
from collections import deque

__all__ = ["AddressThrottle"]


class AddressThrottle:
    def __init__(self, limit: int = 20, window_seconds: float = 900.0) -> None:
        self._limit = limit
        self._window = window_seconds
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def blocked(self, address: str | None) -> bool:
        with self._lock:
            return len(self._recent(address or "-")) >= self._limit

    def failed(self, address: str | None) -> None:
        with self._lock:
            self._recent(address or "-").append(time.monotonic())

    def _recent(self, key: str) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and times[0] < time.monotonic() - self._window:
            times.popleft()
        return times
