"""MLLP intake benchmark: ADT messages per second, end to end (sent → stored, converted, applied,
committed → ACK received), with 1 and with 8 concurrent senders, against a baseline listener that
answers a canned ACK without touching a database (same framing code, same run).

    python bench/bench_mllp.py                       # SQLite in a temp dir
    FHIR_GATEWAY_BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1/bench python bench/bench_mllp.py
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench._harness import ROOT, free_port, table  # noqa: E402
from bench._rows import Row, row, run_context, write_results  # noqa: E402

SB, END = b"\x0b", b"\x1c\x0d"
_BASELINE = """
import asyncio, sys
from adapters.mllp import ListenerConfig, MLLPListener
ACK = b"MSH|^~\\\\&|GW|GW|B|B|20240101||ACK|1|P|2.5\\rMSA|AA|1\\r"
async def handler(message, peer):
    return ACK
async def main():
    listener = MLLPListener(handler, ListenerConfig(port=int(sys.argv[1])))
    await listener.serve_forever()
asyncio.run(main())
"""


def message(run: str, i: int) -> bytes:
    when = time.strftime("%Y%m%d%H%M%S", time.gmtime(1_700_000_000 + i))
    return "\r".join(
        [
            f"MSH|^~\\&|BENCH|HOSP|GW|GW|{when}+0000||ADT^A01^ADT_A01|{run}-{i}|P|2.5",
            f"EVN|A01|{when}+0000",
            f"PID|1||{run}-{i}^^^HOSP^MR||DOE^JANE||19800101|F",
            f"PV1|1|I|WARD^1^1||||||||PSY|||||||||V{run}-{i}^^^HOSP^VN",
        ]
    ).encode()


@contextmanager
def _process(args: list[str], port: int, env: dict[str, str]) -> Iterator[None]:
    proc = subprocess.Popen(args, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise RuntimeError(f"{args} did not start")
        yield
    finally:
        proc.terminate()
        proc.wait(30)


def _gateway(url: str, port: int) -> Any:
    cli = [sys.executable, "-c", "from fhir_gateway.cli import main; main()"]
    subprocess.run(
        [*cli, "db", "upgrade"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        env={**os.environ, "FHIR_GATEWAY_DATABASE_URL": url},
    )
    return _process(
        [*cli, "mllp", "--port", str(port), "--no-migrate"],
        port,
        {"FHIR_GATEWAY_DATABASE_URL": url, "FHIR_GATEWAY_LOG_LEVEL": "WARNING"},
    )


def _send_all(port: int, messages: list[bytes]) -> int:
    accepted = 0
    with socket.create_connection(("127.0.0.1", port)) as sock:
        for raw in messages:
            sock.sendall(SB + raw + END)
            reply = b""
            while not reply.endswith(END):
                reply += sock.recv(4096)
            accepted += b"MSA|AA|" in reply
    return accepted


def throughput(port: int, run: str, total: int, senders: int) -> tuple[float, int]:
    """Messages per second with ``senders`` connections, each sending its share in turn."""
    batches = [[message(run, i) for i in range(s, total, senders)] for s in range(senders)]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(senders) as pool:
        accepted = sum(pool.map(lambda batch: _send_all(port, batch), batches))
    return total / (time.perf_counter() - t0), accepted


def run(total: int = 800, database_url: str | None = None) -> dict[str, Any]:
    url = database_url or os.environ.get("FHIR_GATEWAY_BENCH_DATABASE_URL")
    tmp = None
    if not url:
        tmp = tempfile.mkdtemp(prefix="bench-mllp-")
        url = f"sqlite:///{tmp}/bench.db"
    backend = url.split(":", 1)[0].split("+", 1)[0]
    results: dict[str, Any] = {"database": backend, "messages": total}
    port = free_port()
    with _process([sys.executable, "-c", _BASELINE, str(port)], port, {}):
        for senders in (1, 8):
            results[f"baseline_{senders}"], _ = throughput(port, "base", total, senders)
    port = free_port()
    with _gateway(url, port):
        throughput(port, f"warm-{uuid.uuid4().hex[:6]}", 40, 4)
        for senders in (1, 8):
            rate, accepted = throughput(port, uuid.uuid4().hex[:8], total, senders)
            results[f"gateway_{senders}"] = rate
            results[f"accepted_{senders}"] = accepted
    results["rows"] = rows(results)
    return results


def rows(results: dict[str, Any]) -> list[Row]:
    """ADT^A01 per second end to end, against the bare listener, with 1 and 8 senders."""
    return [
        row(
            f"MLLP intake of ADT^A01, {s} sender{'s' if s > 1 else ''} ({results['database']})",
            results[f"gateway_{s}"],
            "/s",
            baseline=results[f"baseline_{s}"],
            baseline_is="bare MLLP listener, canned ACK",
        )
        for s in (1, 8)
    ]


def main() -> None:
    context = run_context()
    r = run(int(sys.argv[1]) if len(sys.argv) > 1 else 800)
    rows = [
        (
            f"{s} sender{'s' if s > 1 else ''}",
            f"{r[f'gateway_{s}']:.0f}",
            f"{r[f'baseline_{s}']:.0f}",
            f"{r[f'gateway_{s}'] / r[f'baseline_{s}']:.3f}",
            f"{r[f'accepted_{s}']}/{r['messages']}",
        )
        for s in (1, 8)
    ]
    print(f"MLLP intake, {r['messages']} ADT^A01 per case, database: {r['database']}")
    print(table(rows, ("case", "gateway msg/s", "bare listener msg/s", "ratio", "AA")))
    print(f"written: {write_results('mllp', r, context=context)}", file=sys.stderr)


if __name__ == "__main__":
    main()
