"""Metrics an operator scrapes: each family moves when its event happens (a message in, a delivery,
a monitor run, a request), queues are read from the database, /metrics is for admins only, and
separate processes add up in multiprocess mode."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from intake_helpers import adt
from monitor_helpers import Monitored
from observability_helpers import sample
from security_helpers import bearer, get_token, register, secure_client
from sqlalchemy import text

from fhir_gateway import monitors
from fhir_gateway.observability.metrics import render
from fhir_gateway.settings import Settings
from fhir_gateway.store import outbox
from fhir_gateway.store.db import Database
from fhir_gateway.workers.delivery import DeliveryWorker

ROOT = Path(__file__).resolve().parents[2]
HL7 = {"Content-Type": "x-application/hl7-v2+er7"}


def scrape(client: TestClient) -> str:
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def test_a_message_in_moves_the_message_counter_and_the_ack_histogram(
    client: TestClient, mllp_factory
) -> None:  # type: ignore[no-untyped-def]
    from intake_helpers import ack_fields

    labels = {"channel": "mllp", "sender": "ADT1|GOOD", "event": "A03", "outcome": "processed"}
    before = scrape(client)
    listener = mllp_factory()
    import socket

    with socket.create_connection(("127.0.0.1", listener.port), timeout=30) as sock:
        sock.sendall(b"\x0b" + adt("A03", "MET-1") + b"\x1c\r")
        answer = sock.recv(65536)
    assert ack_fields(answer.strip(b"\x0b\x1c\r"))["code"] == "AA"
    after = scrape(client)
    assert (
        sample(after, "fhir_gateway_messages_received_total", **labels)
        == sample(before, "fhir_gateway_messages_received_total", **labels) + 1
    )
    assert (
        sample(after, "fhir_gateway_ack_latency_seconds_count", channel="mllp", code="AA")
        == sample(before, "fhir_gateway_ack_latency_seconds_count", channel="mllp", code="AA") + 1
    )
    assert sample(after, "fhir_gateway_inbox_messages", status="processed") == 1


def test_a_failed_message_shows_in_the_inbox_failed_gauge(client: TestClient) -> None:
    before = scrape(client)
    broken = adt("A03", "MET-2").replace(
        b"PID|1||MRN1^^^HOSP^MR", b"PID|1||"
    )  # no patient identifier
    answer = client.post("/hl7v2", content=broken, headers=HL7)
    assert answer.status_code in (400, 422)
    after = scrape(client)
    assert sample(after, "fhir_gateway_inbox_failed") == 1
    assert (
        sample(after, "fhir_gateway_messages_received_total", channel="http", outcome="failed")
        == sample(before, "fhir_gateway_messages_received_total", channel="http", outcome="failed")
        + 1
    )


def test_outbox_depth_age_deliveries_and_dead_letters(
    client: TestClient, database: Database, settings: Settings
) -> None:
    for url in ("http://receiver.test/ok", "http://receiver.test/gone"):
        database.write(
            outbox.enqueue,
            channel="rest-hook",
            method="POST",
            url=url,
            body=b"{}",
            content_type="application/fhir+json",
        )
    queued = scrape(client)
    assert sample(queued, "fhir_gateway_outbox_depth") == 2
    assert sample(queued, "fhir_gateway_outbox_oldest_age_seconds") >= 0
    seen: list[httpx.Request] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200 if request.url.path == "/ok" else 410)

    worker = DeliveryWorker(database, settings, transport=httpx.MockTransport(receiver))
    try:
        worker.drain()
    finally:
        worker.close()
    after = scrape(client)
    for outcome in ("delivered", "dead"):
        assert (
            sample(
                after, "fhir_gateway_outbox_deliveries_total", channel="rest-hook", outcome=outcome
            )
            == sample(
                queued, "fhir_gateway_outbox_deliveries_total", channel="rest-hook", outcome=outcome
            )
            + 1
        )
        assert (
            sample(after, "fhir_gateway_outbox_delivery_seconds_count", outcome=outcome)
            == sample(queued, "fhir_gateway_outbox_delivery_seconds_count", outcome=outcome) + 1
        )
    assert sample(after, "fhir_gateway_outbox_depth") == 0
    assert sample(after, "fhir_gateway_outbox_dead_letters") == 1
    assert sample(after, "fhir_gateway_outbox_oldest_age_seconds") == 0


def test_monitor_runs_and_findings_by_kind(monitored: Monitored) -> None:
    client = monitored.gw.client
    monitored.discharge()
    before = scrape(client)
    monitored.at("20250312140100")  # 48 h after the referrals went out: overdue
    summary = monitors.run_all(monitored.gw.database, monitored.gw.settings)
    after = scrape(client)
    assert summary.flagged >= 1
    assert (
        sample(after, "fhir_gateway_monitor_runs_total", outcome="ok")
        == sample(before, "fhir_gateway_monitor_runs_total", outcome="ok") + 1
    )
    assert (
        sample(after, "fhir_gateway_monitor_findings_total", kind="flagged")
        == sample(before, "fhir_gateway_monitor_findings_total", kind="flagged") + summary.flagged
    )


def test_http_requests_are_counted_by_route_template_never_by_path(client: TestClient) -> None:
    created = client.post(
        "/Patient",
        json={"resourceType": "Patient", "name": [{"family": "Okafor"}]},
        headers={"Content-Type": "application/fhir+json"},
    )
    patient_id = created.json()["id"]
    before = scrape(client)
    assert client.get(f"/Patient/{patient_id}").status_code == 200
    assert client.get("/Patient", params={"family": "Okafor"}).status_code == 200
    after = scrape(client)
    route = {"route": "/{res_type}/{res_id}", "method": "GET", "status": "200"}
    assert (
        sample(after, "fhir_gateway_http_requests_total", **route)
        == sample(before, "fhir_gateway_http_requests_total", **route) + 1
    )
    assert (
        sample(after, "fhir_gateway_http_request_seconds_count", route="/{res_type}", method="GET")
        >= 1
    )
    assert patient_id not in after and "Okafor" not in after


def test_a_request_is_counted_before_its_last_byte_reaches_the_client(database: Database) -> None:
    """Another worker answering /metrics the moment a response arrives must already count it."""
    import anyio

    from fhir_gateway.observability.http import ObservabilityMiddleware

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    label = {"route": "unmatched", "method": "PATCH", "status": "204"}
    before = sample(render(database).decode(), "fhir_gateway_http_requests_total", **label)
    seen_at_last_byte: list[float] = []

    async def client_side(message):  # type: ignore[no-untyped-def]
        if message["type"] == "http.response.body":
            seen_at_last_byte.append(
                sample(render(database).decode(), "fhir_gateway_http_requests_total", **label)
            )

    async def receive():  # type: ignore[no-untyped-def]
        return {"type": "http.request", "body": b""}

    scope = {"type": "http", "method": "PATCH", "path": "/nowhere", "headers": []}
    anyio.run(ObservabilityMiddleware(app, database), scope, receive, client_side)
    assert seen_at_last_byte == [before + 1]
    assert (
        sample(render(database).decode(), "fhir_gateway_http_requests_total", **label) == before + 1
    )


def test_pool_in_use_counts_checked_out_connections(database: Database) -> None:
    from fhir_gateway.observability import instrument_database

    instrument_database(database)
    idle = sample(render(database).decode(), "fhir_gateway_db_pool_in_use")
    with database.session() as session:
        session.execute(text("SELECT 1"))  # a session takes its connection at its first statement
        busy = sample(render(database).decode(), "fhir_gateway_db_pool_in_use")
    assert busy >= idle + 1


def test_metrics_are_for_admins_only(database: Database, database_url: str) -> None:
    with secure_client(database, database_url) as client:
        assert client.get("/metrics").status_code == 401
        partner = register(database, "partner", ["system/Task.rs"], organization="Organization/p1")
        assert client.get("/metrics", headers=bearer(get_token(client, partner))).status_code == 403
        admin = register(database, "admin", ["system/*.*"])
        answer = client.get("/metrics", headers=bearer(get_token(client, admin)))
        assert answer.status_code == 200 and "fhir_gateway_outbox_depth" in answer.text


def test_metrics_port_takes_metrics_off_the_api(database: Database, database_url: str) -> None:
    with secure_client(database, database_url, metrics_port=18899) as client:
        admin = register(database, "admin", ["system/*.*"])
        assert client.get("/metrics", headers=bearer(get_token(client, admin))).status_code != 200


_PROCESS = """
import sys
from fastapi.testclient import TestClient
from sqlalchemy import text
from fhir_gateway.app import create_app
from fhir_gateway.settings import Settings
settings = Settings(database_url=sys.argv[1], auth_enabled=False, audit_enabled=False, careplan_seed=False)
with TestClient(create_app(settings)) as client:
    if sys.argv[2] == "send":
        answer = client.post("/hl7v2", content=sys.argv[3].encode(), headers={"Content-Type": "text/plain"})
        assert answer.status_code == 200, answer.text
    else:
        print(client.get("/metrics").text)
"""


@pytest.mark.slow  # subprocesses or a live server
def test_separate_processes_add_up_in_multiprocess_mode(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}

    def run(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", _PROCESS, database_url, *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    run("send", adt("A03", "MP-1", mrn="MP1").decode())
    run("send", adt("A03", "MP-2", mrn="MP2").decode())
    text = run("scrape")
    assert (
        sample(text, "fhir_gateway_messages_received_total", channel="http", outcome="processed")
        == 2
    )
    assert (
        sample(
            text, "fhir_gateway_http_requests_total", route="/hl7v2", method="POST", status="200"
        )
        == 2
    )
    assert sample(text, "fhir_gateway_inbox_messages", status="processed") == 2


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow  # subprocesses or a live server
def test_serve_with_two_workers_aggregates(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    """`serve --workers 2`: whichever process answers /metrics counts the requests of both."""
    import signal
    import time

    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "FHIR_GATEWAY_DATABASE_URL": database_url,
            "FHIR_GATEWAY_CAREPLAN_SEED": "false",
        }
    )
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from fhir_gateway.cli import main; main()",
            "serve",
            "--workers",
            "2",
            "--port",
            str(port),
            "--insecure-dev",
            "--no-migrate",
        ],
        env=env,
        stdout=log,
        stderr=log,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):  # bounded: two processes import and start
            try:
                if httpx.get(base + "/health/ready", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, (tmp_path / "serve.log").read_text()
            time.sleep(0.1)
        with httpx.Client(base_url=base, timeout=30) as http:
            for _ in range(20):  # new connections: the kernel spreads them over both processes
                http.get("/metadata", headers={"Connection": "close"})
            counts = [
                sample(
                    http.get("/metrics", headers={"Connection": "close"}).text,
                    "fhir_gateway_http_requests_total",
                    route="/metadata",
                    method="GET",
                    status="200",
                )
                for _ in range(4)
            ]
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
        log.close()
    assert counts == [20, 20, 20, 20]
