"""When to try a delivery again (pure): exponential backoff with jitter, ``Retry-After`` honoured on
429, no retry for a refusal (another 4xx, but 408), and a dead letter once the retry window (72 h by
default) or the attempt limit is used up."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

__all__ = ["RetryPolicy", "Decision", "decide", "backoff", "retry_after"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base: float = 5.0  # seconds before the first retry
    cap: float = 3600.0  # longest wait
    max_age: float = 72 * 3600.0  # the retry window
    max_attempts: int | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: str  # delivered | retry | dead
    next_attempt_at: datetime | None = None
    reason: str | None = None


def backoff(policy: RetryPolicy, attempt: int, rng: random.Random) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based): base·2^(n−1), capped, with
    "equal jitter" (half fixed, half random) so retries spread out but still grow."""
    delay = min(policy.cap, policy.base * 2 ** max(attempt - 1, 0))
    return delay / 2 + rng.uniform(0, delay / 2)


def retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - now).total_seconds())


def decide(
    policy: RetryPolicy,
    *,
    status: int | None,
    attempt: int,
    retry_since: datetime,
    now: datetime,
    rng: random.Random,
    retry_after_header: str | None = None,
) -> Decision:
    """What to do after attempt number ``attempt``; ``status`` None means no HTTP answer at all."""
    if status is not None and 200 <= status < 300:
        return Decision("delivered")
    if status is not None and 400 <= status < 500 and status not in (408, 429):
        return Decision("dead", reason=f"refused with HTTP {status}")
    wait = retry_after(retry_after_header, now) if status == 429 else None
    if wait is None:
        wait = backoff(policy, attempt, rng)
    at = now + timedelta(seconds=wait)
    if policy.max_attempts is not None and attempt >= policy.max_attempts:
        return Decision("dead", reason=f"gave up after {attempt} attempts")
    if at > retry_since + timedelta(seconds=policy.max_age):
        return Decision(
            "dead", reason=f"gave up after {attempt} attempts over {policy.max_age / 3600:g} h"
        )
    return Decision("retry", next_attempt_at=at)
