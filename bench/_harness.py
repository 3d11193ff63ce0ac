"""Shared benchmark plumbing: a server in a subprocess, a bounded load loop, a results table, and a
SMART backend-services client so that benchmarks call the gateway as production clients do.

Every benchmark measures its baseline in the same run, on the same machine, the same way, and
reports ratios; absolute numbers only say what this machine did today. A load whose responses are
not what the benchmark expects raises: a fast stream of 401s is not a figure.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

__all__ = [
    "ROOT",
    "LoadResult",
    "SmartClient",
    "UnexpectedStatus",
    "checked",
    "free_port",
    "load",
    "median",
    "register_client",
    "server",
    "server_cpu",
    "server_pid",
    "settle",
    "table",
]


class UnexpectedStatus(RuntimeError):
    """A response a benchmark did not expect: the figures would measure the wrong thing."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def server(
    app: str, env: dict[str, str] | None = None, *, factory: bool = True, workers: int = 1
) -> Iterator[str]:
    """Run ``uvicorn app`` on a free loopback port until the block ends; yields the base URL."""
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--workers",
        str(workers),
    ]
    if factory:
        cmd.append("--factory")
    with serving(cmd, port, env, name=app) as base:
        yield base


@contextmanager
def serving(
    cmd: list[str],
    port: int,
    env: dict[str, str] | None = None,
    *,
    name: str = "the server",
    timeout: float = 60,
) -> Iterator[str]:
    """Run ``cmd`` (an HTTP server on ``port``) until the block ends, once ``/_health`` answers."""
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **(env or {})})
    base = f"http://127.0.0.1:{port}"
    _PROCESSES[base] = proc
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode} before it served")
            try:
                httpx.get(base + "/_health", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise RuntimeError(f"{name} did not start")
        yield base
    finally:
        _PROCESSES.pop(base, None)
        proc.terminate()
        proc.wait(timeout=60)


_PROCESSES: dict[str, subprocess.Popen[bytes]] = {}


def server_pid(base: str) -> int:
    """The process id of a server started by ``server()`` (e.g. for ``py-spy record --pid``)."""
    return _PROCESSES[base].pid


def server_cpu(base: str) -> float:
    """CPU seconds (user + system) the server has used so far; 0 off Linux. Less disturbed than
    throughput by other work on the machine, so benchmarks report it per request beside rps."""
    return _cpu_seconds(server_pid(base)) if os.path.exists("/proc/self/stat") else 0.0


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def settle(base: str, *, quiet: float = 0.4, poll: float = 0.02, timeout: float = 120.0) -> float:
    """Wait until the server has been idle for ``quiet`` seconds, so that work it deferred (such
    as queued audit events) is done. Returns the CPU seconds it used meanwhile: the work the last
    load left behind, which a benchmark adds to that load's time (its idle waits are not work).
    Idle: under a tenth of a core per ``poll`` interval, from the scheduler's per-thread
    nanoseconds (not 10 ms ticks); ``quiet`` must outlast any pause the server takes on purpose
    (the audit writer gathers events for 0.2 s). 0 off Linux."""
    if not os.path.exists("/proc/self/schedstat"):
        return 0.0
    pid = server_pid(base)
    started = last_busy = time.perf_counter()
    first = used = _run_ns(pid)
    while (now := time.perf_counter()) - last_busy < quiet:
        if now - started > timeout:
            raise RuntimeError(f"the server at {base} was still busy after {timeout} s")
        time.sleep(poll)
        seen = _run_ns(pid)
        if seen - used > poll * 1e8:
            last_busy = time.perf_counter()
        used = seen
    return (used - first) / 1e9


def _run_ns(pid: int) -> int:
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as fh:
                total += int(fh.read().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            continue  # the thread ended
    return total


def _wanted(expect: int | Collection[int] | None) -> Callable[[int], bool]:
    if expect is None:
        return lambda status: status < 400
    allowed = {expect} if isinstance(expect, int) else set(expect)
    return allowed.__contains__


def checked(
    response: httpx.Response, expect: int | Collection[int] | None = None
) -> httpx.Response:
    """The response, or UnexpectedStatus (with the start of its body) when its status is not wanted."""
    if not _wanted(expect)(response.status_code):
        raise UnexpectedStatus(
            f"{response.request.method} {response.request.url.path} answered {response.status_code}, "
            f"expected {expect or '< 400'}: {response.text[:300]}"
        )
    return response


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


def load(
    send: Callable[[httpx.Client], httpx.Response],
    *,
    requests: int,
    concurrency: int = 4,
    expect: int | Collection[int] | None = None,
    warmup: int = 0,
) -> LoadResult:
    """``requests`` calls split over ``concurrency`` threads, each with its own keep-alive client.

    Every response must have an ``expect``ed status (default: any below 400); otherwise, once all
    threads are done, UnexpectedStatus says how many were not and what the first one said.
    ``warmup`` calls per thread go first, untimed (their statuses are checked too); the clock
    starts when every thread is warm.
    """
    per_thread = requests // concurrency
    ok = _wanted(expect)
    first_bad: list[httpx.Response] = []

    def worker(_: int) -> tuple[list[float], int]:
        lat, errors = [], 0
        with httpx.Client(timeout=30) as client:
            try:
                for _ in range(warmup):
                    errors += _tally(send(client), ok, first_bad)
            except BaseException:
                start.abort()  # the others stop waiting; the error surfaces from result()
                raise
            start.wait()
            for _ in range(per_thread):
                t0 = time.perf_counter()
                response = send(client)
                lat.append((time.perf_counter() - t0) * 1000)
                errors += _tally(response, ok, first_bad)
        return lat, errors

    start = threading.Barrier(concurrency + 1)
    with ThreadPoolExecutor(concurrency) as pool:
        futures = [pool.submit(worker, i) for i in range(concurrency)]
        try:
            start.wait()
        except threading.BrokenBarrierError:
            pass
        t0 = time.perf_counter()
        failures = [f.exception() for f in futures]  # waits for every thread
        seconds = time.perf_counter() - t0
    if any(failures):  # the real error, not that of a thread the broken barrier let go
        raise next(
            (e for e in failures if e and not isinstance(e, threading.BrokenBarrierError)),
            next(e for e in failures if e),
        )
    parts = [f.result() for f in futures]
    latencies = [x for lat, _ in parts for x in lat]
    errors = sum(e for _, e in parts)
    if errors:
        bad = first_bad[0]
        raise UnexpectedStatus(
            f"{errors} of {len(latencies)} responses to {bad.request.method} {bad.request.url.path} were not "
            f"{expect or '< 400'}; the first was {bad.status_code}: {bad.text[:300]}"
        )
    return LoadResult(len(latencies), seconds, latencies, errors)


def _tally(
    response: httpx.Response, ok: Callable[[int], bool], first_bad: list[httpx.Response]
) -> int:
    if ok(response.status_code):
        return 0
    if not first_bad:
        first_bad.append(response)
    return 1


def table(rows: Sequence[tuple[str, ...]], header: tuple[str, ...]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True))  # noqa: E731
    return "\n".join([line(header), line(tuple("-" * w for w in widths)), *map(line, rows)])


def median(values: list[float]) -> float:
    return statistics.median(values)


# --- a SMART backend-services client --------------------------------------------------------------

_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_RENEW_BEFORE = 60  # seconds: a token this close to expiry is replaced before the next load


@dataclass
class SmartClient:
    """A registered client with its private key; ``headers(base)`` carries a current access token."""

    client_id: str
    key: Any  # joserfc private key (ES384)
    _token: str | None = field(default=None, repr=False)
    _expires: float = 0.0

    def headers(self, base: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(base)}"}

    def token(self, base: str) -> str:
        """An access token from ``base``'s token endpoint, renewed when it is about to expire."""
        if self._token is None or time.time() > self._expires - _RENEW_BEFORE:
            self._token, self._expires = self._fetch(base)
        return self._token

    def forget(self) -> None:
        """Drop the token (another gateway, e.g. the same database served with other settings)."""
        self._token, self._expires = None, 0.0

    def _fetch(self, base: str) -> tuple[str, float]:
        from joserfc import jwt

        token_url = base.rstrip("/") + "/auth/token"
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": token_url,
            "exp": int(time.time()) + 240,
            "jti": str(uuid.uuid4()),
        }
        signed = jwt.encode(
            {"alg": "ES384", "kid": self.key.kid}, claims, self.key, algorithms=["ES384"]
        )
        form = {
            "grant_type": "client_credentials",
            "client_assertion_type": _ASSERTION_TYPE,
            "client_assertion": signed,
        }
        body = checked(httpx.post(token_url, data=form, timeout=30), 200).json()
        return str(body["access_token"]), time.time() + int(body["expires_in"])


def register_client(
    database_url: str,
    *,
    role: str = "case-manager",
    organization: str | None = "Organization/care-coordination",
    scopes: tuple[str, ...] = ("system/*.cruds",),
) -> SmartClient:
    """Register a fresh client (ES384 key pair) in the gateway database, as ``clients add`` does."""
    from joserfc.jwk import ECKey

    from fhir_gateway.security import add_client
    from fhir_gateway.store.db import Database

    key = ECKey.generate_key("P-384", private=True)
    key.ensure_kid()
    client_id = f"bench-{uuid.uuid4().hex[:8]}"
    database = Database(database_url)
    try:
        with database.session() as session:
            add_client(
                session,
                client_id=client_id,
                role=role,
                organization=organization,
                scopes=list(scopes),
                jwks={"keys": [{**key.as_dict(private=False), "alg": "ES384"}]},
            )
    finally:
        database.dispose()
    return SmartClient(client_id, key)
