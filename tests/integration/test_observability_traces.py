"""Traces (OpenTelemetry SDK, in-memory exporter): one trace from MLLP receive through the commit to
the ACK, HTTP server spans that continue the caller's traceparent, outbox deliveries that hand
theirs to the receiver, database spans named by the SQL verb, and exporting only when OTEL_* say so."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from intake_helpers import adt
from observability_helpers import memory_spans

from fhir_gateway.observability import instrument_database
from fhir_gateway.settings import Settings
from fhir_gateway.store import outbox
from fhir_gateway.store.db import Database
from fhir_gateway.workers.delivery import DeliveryWorker

ROOT = Path(__file__).resolve().parents[2]


def test_one_trace_from_mllp_receive_through_commit_to_ack(
    database: Database, mllp_factory
) -> None:  # type: ignore[no-untyped-def]
    spans = memory_spans()
    instrument_database(database)
    listener = mllp_factory()
    with socket.create_connection(("127.0.0.1", listener.port), timeout=30) as sock:
        sock.sendall(b"\x0b" + adt("A03", "TR-1") + b"\x1c\r")
        assert b"MSA|AA|TR-1" in sock.recv(65536)
    finished = spans.get_finished_spans()
    root = next(s for s in finished if s.name == "mllp receive")
    assert root.parent is None and root.kind.name == "SERVER"
    trace = [s for s in finished if s.context.trace_id == root.context.trace_id]
    intake = next(s for s in trace if s.name == "intake mllp")
    assert intake.parent.span_id == root.context.span_id
    assert intake.attributes["messaging.message.id"] == "TR-1"
    assert intake.attributes["fhir_gateway.ack_code"] == "AA"
    names = [s.name for s in trace]
    # a patient's next message is recorded and applied in one transaction: one COMMIT
    assert "INSERT" in names and names.count("COMMIT") == 1
    commits = [s for s in trace if s.name == "COMMIT"]
    assert all(
        root.start_time <= s.start_time and s.end_time <= intake.end_time <= root.end_time
        for s in commits
    )
    database_spans = [s for s in trace if "db.system" in s.attributes]
    assert database_spans and all(
        set(s.attributes) == {"db.system", "db.operation"} for s in database_spans
    )


def test_http_spans_continue_the_callers_traceparent(client: TestClient) -> None:
    spans = memory_spans()
    caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    parent = f"00-{caller_trace}-00f067aa0ba902b7-01"
    assert (
        client.get(
            "/Patient", params={"family": "Okafor"}, headers={"traceparent": parent}
        ).status_code
        == 200
    )
    server = next(s for s in spans.get_finished_spans() if s.kind.name == "SERVER")
    assert f"{server.context.trace_id:032x}" == caller_trace
    assert f"{server.parent.span_id:016x}" == "00f067aa0ba902b7"
    assert server.name == "GET /{res_type}"
    assert (
        server.attributes["http.route"] == "/{res_type}"
        and server.attributes["http.response.status_code"] == 200
    )
    assert not any("Okafor" in str(v) for v in server.attributes.values())


def test_a_delivery_hands_its_trace_to_the_receiver(database: Database, settings: Settings) -> None:
    spans = memory_spans()
    row = database.write(
        outbox.enqueue,
        channel="rest-hook",
        method="POST",
        url="http://receiver.test/hook",
        body=b"{}",
        content_type="application/fhir+json",
    )
    received: list[httpx.Request] = []
    transport = httpx.MockTransport(lambda request: received.append(request) or httpx.Response(200))
    worker = DeliveryWorker(database, settings, transport=transport)
    try:
        worker.drain()
    finally:
        worker.close()
    delivery = next(s for s in spans.get_finished_spans() if s.name == "outbox deliver rest-hook")
    assert delivery.attributes["fhir_gateway.outbox_id"] == row
    assert delivery.attributes["fhir_gateway.outcome"] == "delivered"
    version, trace_id, span_id, _ = received[0].headers["traceparent"].split("-")
    assert (version, trace_id, span_id) == (
        "00",
        f"{delivery.context.trace_id:032x}",
        f"{delivery.context.span_id:016x}",
    )


@pytest.mark.slow  # subprocesses or a live server
def test_traces_are_exported_only_when_otel_variables_say_so(database_url: str) -> None:
    script = (
        "from fastapi.testclient import TestClient\n"
        "from fhir_gateway.app import create_app\n"
        "from fhir_gateway.settings import Settings\n"
        "import sys\n"
        "from opentelemetry import trace\n"
        "s = Settings(database_url=sys.argv[1], auth_enabled=False, audit_enabled=False, careplan_seed=False)\n"
        "with TestClient(create_app(s)) as c:\n"
        "    c.get('/metadata')\n"
        "print('provider', type(trace.get_tracer_provider()).__name__)\n"
    )  # the SDK provider exports what is left when the process exits
    base = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    base["PYTHONPATH"] = str(ROOT)

    def run(**otel: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", script, database_url],
            env={**base, **otel},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    quiet = run()
    assert "provider ProxyTracerProvider" in quiet and '"name": "GET /metadata"' not in quiet
    exported = run(OTEL_TRACES_EXPORTER="console", OTEL_SERVICE_NAME="gateway-test")
    assert "provider TracerProvider" in exported
    assert '"name": "GET /metadata"' in exported and '"service.name": "gateway-test"' in exported


@pytest.mark.slow  # a subprocess: a process without a tracer provider
def test_without_tracing_a_callers_traceparent_is_still_carried_on() -> None:
    # With no provider the spans are skipped when they would be the invalid one; a traceparent
    # received is still the current trace, handed on by what the request sends.
    script = (
        "from opentelemetry import trace\n"
        "from fhir_gateway.observability.tracing import extract_context, inject_context, span\n"
        "parent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'\n"
        "with span('alone') as alone:\n"
        "    print('alone', alone is trace.INVALID_SPAN, trace.get_current_span() is alone)\n"
        "with span('child', context=extract_context({'traceparent': parent})):\n"
        "    sent = {}\n"
        "    inject_context(sent)\n"
        "    print('carried', sent.get('traceparent') == parent)\n"
        "print('provider', type(trace.get_tracer_provider()).__name__)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split("\n")[:3] == [
        "alone True True",
        "carried True",
        "provider ProxyTracerProvider",
    ]
