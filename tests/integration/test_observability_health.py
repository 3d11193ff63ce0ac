"""Health for load balancers: /health/live and /health/ready without a token, readiness that
follows the database and the migrations, and the worker's --health-port with its heartbeat."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from alembic.script import ScriptDirectory
from fastapi.testclient import TestClient
from sqlalchemy import text

from fhir_gateway.app import create_app
from fhir_gateway.observability.health import Heartbeat, serve_health
from fhir_gateway.settings import Settings
from fhir_gateway.store.db import Database
from fhir_gateway.store.migrate import alembic_config

ROOT = Path(__file__).resolve().parents[2]


def _unreachable_url(database: Database, tmp_path: Path) -> str:
    if database.is_postgres:
        return "postgresql+psycopg://postgres@127.0.0.1:1/nowhere?connect_timeout=2"
    return f"sqlite:///{tmp_path}/no-such-folder/gateway.db"


def test_live_and_ready_answer_without_a_token(database: Database, database_url: str) -> None:
    settings = Settings(
        database_url=database_url, auth_enabled=True, audit_enabled=False, careplan_seed=False
    )
    with TestClient(create_app(settings, database=database)) as client:
        assert client.get("/Patient").status_code == 401  # the gate is on
        live = client.get("/health/live")
        ready = client.get("/health/ready")
        assert (live.status_code, live.json()["status"]) == (200, "live")
        assert ready.status_code == 200
        assert ready.json() == {
            "status": "ready",
            "checks": {"database": "ok", "migrations": "at head"},
        }
        assert client.get("/_health").json() == {"status": "ok"}  # the old path stays an alias


def test_ready_is_503_while_migrations_are_behind_head(
    client: TestClient, database: Database
) -> None:
    head = ScriptDirectory.from_config(alembic_config(database.url)).get_current_head()
    previous = (
        ScriptDirectory.from_config(alembic_config(database.url)).get_revision(head).down_revision
    )
    with database.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": previous})
    try:
        answer = client.get("/health/ready")
        assert answer.status_code == 503
        assert answer.json()["checks"]["migrations"] == f"at {previous}, head is {head}"
        assert client.get("/health/live").status_code == 200  # alive, just not ready
    finally:
        with database.engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": head})
    assert client.get("/health/ready").status_code == 200


def test_ready_is_503_when_the_database_is_unreachable(database: Database, tmp_path: Path) -> None:
    url = _unreachable_url(database, tmp_path)
    gone = Database(url)
    settings = Settings(
        database_url=url, auth_enabled=False, audit_enabled=False, careplan_seed=False
    )
    try:
        with TestClient(create_app(settings, database=gone)) as client:
            answer = client.get("/health/ready")
            assert answer.status_code == 503
            assert answer.json()["checks"]["database"].startswith("unreachable")
            assert client.get("/health/live").status_code == 200
    finally:
        gone.dispose()


def test_health_port_follows_the_heartbeat(database: Database) -> None:
    heartbeat = Heartbeat(max_age=60)
    server = serve_health(database, 0, host="127.0.0.1", heartbeat=heartbeat)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        assert httpx.get(base + "/health/ready").status_code == 200
        heartbeat._last -= 120  # the loop has not turned for two minutes
        stale = httpx.get(base + "/health/ready")
        assert stale.status_code == 503
        assert "stale" in stale.json()["checks"]["heartbeat"]
        assert httpx.get(base + "/health/live").status_code == 200
        heartbeat.beat()
        assert httpx.get(base + "/health/ready").status_code == 200
        assert httpx.get(base + "/nothing").status_code == 404
    finally:
        server.shutdown()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("command", [["worker"], ["mllp", "--port", "0"]])
@pytest.mark.slow  # subprocesses or a live server
def test_worker_and_mllp_serve_health_on_their_port(
    database: Database, database_url: str, command: list[str], tmp_path: Path
) -> None:
    port = _free_port()
    log = (tmp_path / "process.log").open("wb")
    env = {
        **os.environ,
        "FHIR_GATEWAY_DATABASE_URL": database_url,
        "PYTHONPATH": str(ROOT),
        "FHIR_GATEWAY_CAREPLAN_SEED": "false",
        "FHIR_GATEWAY_MONITOR_INTERVAL": "0",
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from fhir_gateway.cli import main; main()",
            *command,
            "--health-port",
            str(port),
        ],
        env=env,
        stdout=log,
        stderr=log,
    )
    try:
        answer = None
        for _ in range(300):  # bounded: the process imports, migrates and starts its loop
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=5)
                if answer.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, (tmp_path / "process.log").read_text()
            time.sleep(0.1)
        assert answer is not None and answer.status_code == 200, answer and answer.text
        if command[0] == "worker":
            assert "heartbeat" in answer.json()["checks"]
        assert httpx.get(f"http://127.0.0.1:{port}/health/live").json() == {"status": "live"}
        assert "fhir_gateway_outbox_depth" in httpx.get(f"http://127.0.0.1:{port}/metrics").text
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        log.close()
