"""Shared benchmark plumbing: a server in a subprocess, a bounded load loop, a results table.

Every benchmark measures its baseline in the same run, on the same machine, the same way, and
reports ratios; absolute numbers only say what this machine did today.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def server(app: str, env: dict[str, str] | None = None, *, factory: bool = True, workers: int = 1) -> Iterator[str]:
    """Run ``uvicorn app`` on a free loopback port until the block ends; yields the base URL."""
    port = free_port()
    cmd = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port),
           "--log-level", "warning", "--workers", str(workers)]
    if factory:
        cmd.append("--factory")
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **(env or {})})
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                httpx.get(base + "/_health", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise RuntimeError(f"{app} did not start")
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@dataclass
class LoadResult:
    requests: int
    seconds: float
    latencies_ms: list[float] = field(repr=False)
    errors: int = 0

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def pct(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def load(send: Callable[[httpx.Client], httpx.Response], *, requests: int, concurrency: int = 4) -> LoadResult:
    """``requests`` calls split over ``concurrency`` threads, each with its own keep-alive client."""
    per_thread = requests // concurrency

    def worker(_: int) -> tuple[list[float], int]:
        lat, errors = [], 0
        with httpx.Client(timeout=30) as client:
            for _ in range(per_thread):
                t0 = time.perf_counter()
                response = send(client)
                lat.append((time.perf_counter() - t0) * 1000)
                errors += response.status_code >= 400
        return lat, errors

    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        parts = list(pool.map(worker, range(concurrency)))
    seconds = time.perf_counter() - t0
    latencies = [x for lat, _ in parts for x in lat]
    return LoadResult(len(latencies), seconds, latencies, sum(e for _, e in parts))


def table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True))  # noqa: E731
    return "\n".join([line(header), line(tuple("-" * w for w in widths)), *map(line, rows)])


def median(values: list[float]) -> float:
    return statistics.median(values)
