"""`fhir-gateway mllp --processes N`: N listeners on one port, started, stopped and failed as one."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from intake_helpers import ack_fields, adt

from adapters.mllp import CR, EB, SB

pytestmark = pytest.mark.slow  # subprocesses

CLI = [sys.executable, "-c", "from fhir_gateway.cli import main; main()"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(database_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "FHIR_GATEWAY_DATABASE_URL": database_url,
        "FHIR_GATEWAY_LOG_LEVEL": "WARNING",
    }


def _children(pid: int) -> set[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as fh:
        return {int(p) for p in fh.read().split()}


def _start(database_url: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        group = subprocess.Popen(
            [*CLI, "mllp", "--processes", "2", "--port", str(port), "--no-migrate"],
            env=_env(database_url),
            stdout=out,
            stderr=out,
        )
    deadline = time.monotonic() + 120  # bounded: two interpreters import and start
    while time.monotonic() < deadline:
        assert group.poll() is None, log.read_text()
        try:
            if len(_children(group.pid)) == 2:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return group
        except OSError:
            pass
        time.sleep(0.1)
    group.kill()
    raise AssertionError(f"the group did not start: {log.read_text()}")


def _send(port: int, messages: list[bytes]) -> list[dict[str, str]]:
    acks = []
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        for raw in messages:
            sock.sendall(SB + raw + EB + CR)
            reply = b""
            while not reply.endswith(EB + CR):
                chunk = sock.recv(4096)
                assert chunk, "the listener closed the connection"
                reply += chunk
            acks.append(ack_fields(reply.strip(SB + EB + CR)))
    return acks


@pytest.fixture
def on_postgres(database_url: str) -> str:
    if not database_url.startswith("postgresql"):
        pytest.skip("several listener processes need PostgreSQL")
    return database_url


def test_two_listeners_share_the_port_and_stop_together(
    database,
    on_postgres: str,
    client,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    port = _free_port()
    group = _start(on_postgres, port, tmp_path / "group.log")
    listeners = _children(group.pid)
    try:
        connections = [
            [adt("A01", f"GRP-{c}-{i}", mrn=f"G{c}{i}", visit=f"GV{c}{i}") for i in range(3)]
            for c in range(8)
        ]
        with ThreadPoolExecutor(8) as pool:
            acks = [a for batch in pool.map(lambda m: _send(port, m), connections) for a in batch]
        assert [a["code"] for a in acks] == ["AA"] * 24
    finally:
        group.send_signal(signal.SIGTERM)
        code = group.wait(60)
    assert code == 0
    assert all(not Path(f"/proc/{pid}").exists() for pid in listeners)  # none left behind
    assert client.get("/Patient", params={"identifier": "G00"}).json()["total"] == 1


def test_a_listener_that_dies_takes_the_group_down(
    database,
    on_postgres: str,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    group = _start(on_postgres, _free_port(), tmp_path / "group.log")
    first, second = sorted(_children(group.pid))
    os.kill(first, signal.SIGKILL)
    code = group.wait(60)  # so that the service manager restarts all of it
    assert code != 0
    assert not Path(f"/proc/{second}").exists()


def test_several_listeners_are_refused_on_sqlite(tmp_path: Path) -> None:
    done = subprocess.run(
        [*CLI, "mllp", "--processes", "2", "--port", str(_free_port())],
        env=_env(f"sqlite:///{tmp_path}/gw.db"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "--processes above 1 needs PostgreSQL" in done.stderr
