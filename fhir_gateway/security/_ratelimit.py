"""Per-client rate limits: a token bucket per client id (or address, before authentication), per
process. Several processes each allow the rate: the limit is a guard against a runaway client,
not an accounting tool."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["RateLimiter"]

_MAX_BUCKETS = 10_000


class RateLimiter:
    def __init__(
        self, per_minute: int, burst: int, *, now: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = per_minute / 60.0
        self.burst = max(1, burst)
        self.now = now  # the seam tests replace
        self._buckets: dict[str, tuple[float, float]] = {}  # key → (tokens, at)
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def take(self, key: str) -> float | None:
        """Spend one token; None when allowed, else the seconds until one is available."""
        if not self.enabled:
            return None
        now = self.now()
        with self._lock:
            tokens, at = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - at) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                if len(self._buckets) > _MAX_BUCKETS:
                    self._buckets.pop(next(iter(self._buckets)))
                return None
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate
