"""A closed-loop load generator in client processes (not threads: the GIL would make the clients,
not the gateway, the bottleneck), for ``bench_scale``.

Each process keeps one keep-alive connection and sends its next request as soon as the previous
answer is in, cycling through its share of the URLs. All warm up until a common start time, then
count for the same ``seconds``. Every response must be 200 and carry what the search should find;
anything else fails the run (a fast stream of errors is not a figure).
"""

from __future__ import annotations

import multiprocessing
import time
from dataclasses import dataclass, field

__all__ = ["Run", "run_load"]

_WARMUP = 1.5  # seconds of untimed requests before the clock starts (connections, caches)


@dataclass
class Run:
    seconds: float
    latencies_ms: list[float] = field(repr=False)

    @property
    def rps(self) -> float:
        return len(self.latencies_ms) / self.seconds

    def pct(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p))]

    def figures(self) -> dict[str, float]:
        return {
            "rps": self.rps,
            "p50_ms": self.pct(0.50),
            "p95_ms": self.pct(0.95),
            "p99_ms": self.pct(0.99),
            "requests": float(len(self.latencies_ms)),
        }


def _client(
    args: tuple[list[str], dict[str, str], bytes, float, float],
) -> tuple[list[float], str | None]:
    import httpx

    urls, headers, must_contain, start_at, stop_at = args
    latencies: list[float] = []
    n = 0
    with httpx.Client(timeout=30, headers=headers) as client:
        while True:
            now = time.time()
            if now >= stop_at:
                return latencies, None
            url = urls[n % len(urls)]
            n += 1
            t0 = time.perf_counter()
            response = client.get(url)
            elapsed = (time.perf_counter() - t0) * 1000
            if response.status_code != 200 or must_contain not in response.content:
                return (
                    latencies,
                    f"GET {url} answered {response.status_code}: {response.text[:300]}",
                )
            if now >= start_at:
                latencies.append(elapsed)


def run_load(
    urls: list[str],
    *,
    headers: dict[str, str],
    must_contain: bytes,
    clients: int,
    seconds: float,
    pool: multiprocessing.pool.Pool,
) -> Run:
    """``clients`` processes of ``pool`` (at least that many) hammer ``urls`` for ``seconds``."""
    start_at = time.time() + _WARMUP + 0.5  # 0.5 s for the pool to hand out the work
    shares = [urls[i::clients] or urls for i in range(clients)]
    jobs = [(share, headers, must_contain, start_at, start_at + seconds) for share in shares]
    results = pool.map(_client, jobs)
    failures = [error for _, error in results if error]
    if failures:
        raise RuntimeError(f"{len(failures)} of {clients} clients stopped: {failures[0]}")
    return Run(seconds, [x for lat, _ in results for x in lat])
