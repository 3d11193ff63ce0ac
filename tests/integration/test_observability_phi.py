"""No PHI in any log line or span: identifying messages go through every door (MLLP, POST /hl7v2,
refused and failed messages, REST reads, writes and searches with PHI in the query string, an
outbox delivery whose receiver echoes the body, a monitor run), with JSON logs on and uvicorn's
access log written; then every captured log line and every in-memory span is searched for the
patient's name, MRN, birth date and diagnosis."""

from __future__ import annotations

import io
import logging
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest
import uvicorn
from intake_helpers import adt
from observability_helpers import memory_spans, span_texts

from fhir_gateway import monitors
from fhir_gateway.app import create_app
from fhir_gateway.observability.logs import JsonFormatter, setup_logging
from fhir_gateway.settings import Settings
from fhir_gateway.store import outbox
from fhir_gateway.store.db import Database
from fhir_gateway.workers.delivery import DeliveryWorker

FAMILY, MRN, BIRTH = "Hernandez", "MRN778899", "19800101"
DIAGNOSIS = "DG1|1||F32.9^Major depressive disorder single episode^I10|||A"
PHI = [FAMILY, MRN, BIRTH, "1980-01-01", "F32.9", "Major depressive", "1980XX01"]
FHIR = {"Content-Type": "application/fhir+json"}


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Every log line of the process (ours, uvicorn's, the libraries'), formatted as in production."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    loggers = [logging.getLogger(n) for n in ("", "uvicorn", "uvicorn.error", "uvicorn.access")]
    for logger in loggers:
        logger.addHandler(handler)
    yield stream
    for logger in loggers:
        logger.removeHandler(handler)


def _serve(app) -> tuple[str, uvicorn.Server, threading.Thread]:  # type: ignore[no-untyped-def]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="info", access_log=True, log_config=None
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(400):
        if server.started:
            break
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", server, thread


def _phi_adt(event: str, control: str, **kwargs: str) -> bytes:
    return adt(event, control, mrn=MRN, family=FAMILY, extra=DIAGNOSIS, **kwargs)


def _mllp(port: int, message: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(b"\x0b" + message + b"\x1c\r")
        return sock.recv(65536)


def test_identifying_messages_leave_no_phi_in_logs_or_spans(  # type: ignore[no-untyped-def]
    database: Database, database_url: str, mllp_factory, captured: io.StringIO
) -> None:
    spans = memory_spans()
    settings = Settings(
        database_url=database_url, auth_enabled=False, audit_enabled=False, log_format="json"
    )
    app = create_app(settings, database=database)
    setup_logging("INFO", "json")
    base, server, thread = _serve(app)
    try:
        # HL7 v2 over MLLP and over HTTP, accepted, refused (AR) and failed
        assert b"MSA|AA" in _mllp(mllp_factory().port, _phi_adt("A03", "PHI-1"))
        with httpx.Client(base_url=base, timeout=60) as http:
            assert (
                http.post(
                    "/hl7v2",
                    content=_phi_adt("A08", "PHI-2"),
                    headers={"Content-Type": "text/plain"},
                ).status_code
                == 200
            )
            refused = _phi_adt("A03", "PHI-3").replace(b"ADT^A03^ADT_A03", b"QRY^Q99^QRY_Q01")
            assert (
                http.post(
                    "/hl7v2", content=refused, headers={"Content-Type": "text/plain"}
                ).status_code
                >= 400
            )
            bad_date = _phi_adt("A03", "PHI-4").replace(BIRTH.encode(), b"1980XX01")
            http.post("/hl7v2", content=bad_date, headers={"Content-Type": "text/plain"})
            # REST: reads and searches with PHI in the query string, a write, a refused write
            params = {"family": FAMILY, "identifier": MRN, "birthdate": "1980-01-01"}
            found = http.get("/Patient", params=params).json()
            patient_id = found["entry"][0]["resource"]["id"]
            http.get(f"/Patient/{patient_id}")
            http.get("/Condition", params={"code": "F32.9", "patient": patient_id})
            http.get("/Patient", params={"name:contains": FAMILY[:5], "_sort": "birthdate"})
            http.post(
                "/Patient",
                json={
                    "resourceType": "Patient",
                    "name": [{"family": FAMILY}],
                    "birthDate": "1980-01-01",
                    "identifier": [{"value": MRN}],
                },
                headers=FHIR,
            )
            http.post(
                "/Patient",
                json={
                    "resourceType": "Patient",
                    "name": [{"family": FAMILY}],
                    "birthDate": "1980-13-45",
                },
                headers=FHIR,
            )
            http.get(
                "/Patient", params={"birthdate": "1980XX01", "family": FAMILY}
            )  # a refused search
    finally:
        server.should_exit = True
        thread.join(timeout=30)
    # a delivery whose receiver echoes the PHI body in its refusal
    database.write(
        outbox.enqueue,
        channel="rest-hook",
        method="POST",
        url="http://receiver.test/hook",
        body=orjson.dumps({"resourceType": "Patient", "name": [{"family": FAMILY}]}),
        content_type="application/fhir+json",
    )
    echo = httpx.MockTransport(
        lambda request: httpx.Response(400, content=b"refused: " + request.content)
    )
    worker = DeliveryWorker(database, settings, transport=echo)
    try:
        worker.drain()
    finally:
        worker.close()
    monitors.run_all(database, settings)

    lines = [line for line in captured.getvalue().splitlines() if line]
    assert any("uvicorn.access" in line for line in lines)  # the access log was written …
    assert any('"correlation_id": "request:' in line.replace('":"', '": "') for line in lines)
    for line in lines:
        orjson.loads(line)  # … as JSON lines
    texts = span_texts(spans.get_finished_spans())
    assert any(name.startswith("intake mllp") for name in texts)
    leaks = [
        (word, where) for where in lines + texts for word in PHI if word.lower() in where.lower()
    ]
    assert leaks == [], "\n".join(f"{w}: {where[:300]}" for w, where in leaks)


def test_json_lines_carry_the_correlation_id_of_their_message_request_or_delivery(  # type: ignore[no-untyped-def]
    client, database: Database, settings: Settings, captured: io.StringIO
) -> None:
    setup_logging("INFO", "json")
    message = adt("A03", "CORR-1")
    client.post("/hl7v2", content=message, headers={"Content-Type": "text/plain"})
    client.post(
        "/hl7v2", content=message, headers={"Content-Type": "text/plain"}
    )  # a re-send: logged
    answered = client.get("/metadata", headers={"X-Request-ID": "probe-42"})
    assert answered.headers["x-request-id"] == "probe-42"
    row = database.write(
        outbox.enqueue,
        channel="rest-hook",
        method="POST",
        url="http://receiver.test/gone",
        body=b"{}",
        content_type="application/fhir+json",
    )
    worker = DeliveryWorker(
        database, settings, transport=httpx.MockTransport(lambda r: httpx.Response(410))
    )
    try:
        worker.drain()
    finally:
        worker.close()
    lines = [orjson.loads(line) for line in captured.getvalue().splitlines() if line]
    resend = next(line for line in lines if "re-send" in line["message"])
    assert resend["correlation_id"] == "msh10:CORR-1"
    dead = next(line for line in lines if "dead-lettered" in line["message"])
    assert dead["correlation_id"] == f"outbox:{row}"
    assert {"time", "level", "logger", "message"} <= set(dead)
