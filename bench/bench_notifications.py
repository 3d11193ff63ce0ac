"""Notification delivery throughput: the outbox worker (claim, sign, POST, record each attempt)
against bare httpx POSTs of the same bodies to the same loopback receiver, same concurrency, in
the same run.

    python bench/bench_notifications.py            # SQLite in a temp dir
    FHIR_GATEWAY_BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1/bench python bench/bench_notifications.py
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench._harness import free_port  # noqa: E402

CONCURRENCY = 8


class _Sink(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    count = 0
    lock = threading.Lock()

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("content-length") or 0))
        with _Sink.lock:
            _Sink.count += 1
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_PUT = do_POST

    def log_message(self, *_: object) -> None:
        pass


def _receiver() -> tuple[ThreadingHTTPServer, str]:
    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), _Sink)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{port}/hook"


def _queue(database, endpoint: str, count: int) -> list[tuple[str, str, bytes]]:  # type: ignore[no-untyped-def]
    from fhir_gateway.context import SYSTEM
    from fhir_gateway.services import resources as svc
    from fhir_gateway.store import outbox

    def seed(session) -> None:  # type: ignore[no-untyped-def]
        svc.update(
            session,
            "Subscription",
            "bench",
            {
                "resourceType": "Subscription",
                "id": "bench",
                "status": "requested",
                "reason": "bench",
                "criteria": "Observation",
                "channel": {
                    "type": "rest-hook",
                    "endpoint": endpoint,
                    "payload": "application/fhir+json",
                },
            },
            SYSTEM,
        )
        for i in range(count):
            svc.create(
                session,
                "Observation",
                {"resourceType": "Observation", "status": "final", "code": {"text": f"bench {i}"}},
                SYSTEM,
            )

    database.write(seed)
    return [
        (r.method, r.url, r.body)
        for r in database.read(outbox.list_rows, status="pending", limit=count)
    ]


def _baseline(requests: list[tuple[str, str, bytes]]) -> float:
    """The same requests (method, URL, body), bare: no database, no signature, no bookkeeping."""
    headers = {"Content-Type": "application/fhir+json"}
    with httpx.Client(timeout=10) as client, ThreadPoolExecutor(CONCURRENCY) as pool:
        start = time.perf_counter()
        list(
            pool.map(lambda r: client.request(r[0], r[1], content=r[2], headers=headers), requests)
        )
        return time.perf_counter() - start


def _outbox(database, settings) -> float:  # type: ignore[no-untyped-def]
    from fhir_gateway.workers.delivery import DeliveryWorker

    worker = DeliveryWorker(database, settings)
    try:
        start = time.perf_counter()
        results = worker.drain()
        elapsed = time.perf_counter() - start
    finally:
        worker.close()
    assert all(r.outcome == "delivered" for r in results), results[:3]
    return elapsed


def run(count: int = 1000) -> dict[str, float]:
    from fhir_gateway.app import install_rules
    from fhir_gateway.settings import Settings
    from fhir_gateway.store.db import Database
    from fhir_gateway.store.migrate import upgrade

    tmp = tempfile.mkdtemp(prefix="bench-notify-")
    url = os.environ.get("FHIR_GATEWAY_BENCH_DATABASE_URL", f"sqlite:///{tmp}/bench.db")
    settings = Settings(
        database_url=url, outbox_concurrency=CONCURRENCY, outbox_batch_size=100, log_level="WARNING"
    )
    database = Database(url)
    upgrade(database.engine)
    install_rules(settings, database)
    server, endpoint = _receiver()
    try:
        bare = _baseline(_queue(database, endpoint, count))
        gateway = _outbox(database, settings)
    finally:
        server.shutdown()
        database.dispose()
    return {
        "notifications": float(count),
        "bare_httpx_per_s": round(count / bare, 1),
        "outbox_worker_per_s": round(count / gateway, 1),
        "ratio_worker_to_bare": round(bare / gateway, 3),
    }


def main() -> None:
    print(json.dumps(run(), indent=2))


if __name__ == "__main__":
    main()
