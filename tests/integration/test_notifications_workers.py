"""Two delivery worker processes on PostgreSQL drain one outbox: every notification arrives, signed,
exactly once after its success, and both workers take part (FOR UPDATE SKIP LOCKED)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
from workflow_helpers import Receiver

from fhir_gateway.context import SYSTEM
from fhir_gateway.notifications import SECRET_EXT, verify
from fhir_gateway.services import resources as svc
from fhir_gateway.store import outbox
from fhir_gateway.store.outbox_tables import outbox_attempts

COUNT = 120
FHIR_GATEWAY = Path(sys.executable).with_name("fhir-gateway")


def _seed(session, endpoint: str) -> None:  # type: ignore[no-untyped-def]
    svc.update(
        session,
        "Subscription",
        "s1",
        {
            "resourceType": "Subscription",
            "id": "s1",
            "status": "requested",
            "reason": "all",
            "criteria": "Observation",
            "channel": {
                "type": "rest-hook",
                "endpoint": endpoint,
                "payload": "application/fhir+json",
                "extension": [{"url": SECRET_EXT, "valueString": "pg-secret"}],
            },
        },
        SYSTEM,
    )
    for i in range(COUNT):
        svc.create(
            session,
            "Observation",
            {"resourceType": "Observation", "status": "final", "code": {"text": f"obs {i}"}},
            SYSTEM,
        )


@pytest.mark.slow  # subprocesses or a live server
def test_two_worker_processes_deliver_each_notification_exactly_once(
    app, database, database_url
) -> None:
    if not database.is_postgres:
        pytest.skip(
            "several workers share an outbox on PostgreSQL (SKIP LOCKED); SQLite has one writer"
        )
    receiver = Receiver(
        script=lambda request, nth: (
            (500, {}) if nth == 0 and int(request.delivery or 0) % 3 == 0 else (200, {})
        )
    ).start()
    try:
        database.write(_seed, f"{receiver.url}/hook")
        assert database.read(outbox.counts) == {"pending": COUNT}
        env = {
            **os.environ,
            "FHIR_GATEWAY_DATABASE_URL": database_url,
            "FHIR_GATEWAY_OUTBOX_BACKOFF_BASE": "0.05",
            "FHIR_GATEWAY_OUTBOX_BATCH_SIZE": "5",
            "FHIR_GATEWAY_OUTBOX_CONCURRENCY": "2",
            "FHIR_GATEWAY_OUTBOX_POLL_INTERVAL": "0.05",
            "FHIR_GATEWAY_PARTNER_POLL_INTERVAL": "0",
        }
        procs = [
            subprocess.Popen([str(FHIR_GATEWAY), "worker", "--until-idle", "--no-migrate"], env=env)
            for _ in range(2)
        ]
        for proc in procs:
            assert proc.wait(timeout=180) == 0
    finally:
        receiver.stop()
    assert database.read(outbox.counts) == {"delivered": COUNT}
    by_delivery = defaultdict(list)
    for request in receiver.received:
        assert verify("pg-secret", request.headers.get("x-fhir-gateway-signature"), request.body)
        by_delivery[request.delivery].append(request.answered)
    assert len(by_delivery) == COUNT
    for answers in by_delivery.values():
        assert answers.count(200) == 1 and answers[-1] == 200
    workers = database.read(lambda s: {r.worker for r in s.execute(outbox_attempts.select()).all()})
    assert len(workers) == 2
