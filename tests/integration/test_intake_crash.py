"""A gateway killed with SIGKILL at random moments loses nothing and applies nothing twice.

A subprocess runs `fhir-gateway mllp`; four client connections send 400 ADT messages (100
patients, four messages each, spread over the connections) and re-send whatever was not ACKed;
the gateway is killed and restarted four times meanwhile, each time after a number of ACKs drawn
from a seeded generator (`CRASH_SEED` to replay a run; the seed is in every failure message).
Wherever a kill falls, up to four messages are in flight (one per connection): a longer stream
adds time between the kills, not kinds of crash (it was 800; 400 halve the test's time).
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from intake_helpers import ack_fields, adt
from sqlalchemy import func, select

from adapters.mllp import CR, EB, SB
from fhir_gateway.store.inbox_tables import inbox_messages

MESSAGES = 400
PATIENTS = 100
CONNECTIONS = 4
KILLS = 4
KILL_WAIT = 120.0  # seconds to wait for the ACKs before one kill (a stuck stream fails the test)
SEND_FOR = 300.0  # seconds a sender has for all its messages (a run takes about a minute)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Gateway:
    def __init__(self, database_url: str, port: int, log: Path) -> None:
        self.port = port
        self.env = {
            **os.environ,
            "FHIR_GATEWAY_DATABASE_URL": database_url,
            "FHIR_GATEWAY_LOG_LEVEL": "WARNING",
        }
        self.log = log.open("ab")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from fhir_gateway.cli import main; main()",
                "mllp",
                "--port",
                str(self.port),
                "--no-migrate",
            ],
            env=self.env,
            stdout=self.log,
            stderr=self.log,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("the gateway did not start")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)
        self.log.close()


def _message(i: int) -> bytes:
    # message i is newer than every earlier message of its patient
    when = time.strftime("%Y%m%d%H%M%S", time.gmtime(1_700_000_000 + i * 60))
    return adt(
        "A08" if i >= PATIENTS else "A01",
        f"CRASH-{i:05d}",
        mrn=f"P{i % PATIENTS:04d}",
        visit=f"V{i % PATIENTS:04d}",
        family=f"F{i:05d}",
        when=when,
    )


def _sender(port: int, indexes: list[int], acked: dict[str, str], problems: list[str]) -> None:
    sock: socket.socket | None = None
    deadline = time.monotonic() + SEND_FOR
    for i in indexes:
        raw = _message(i)
        reply: bytes | None = None
        while reply is None and time.monotonic() < deadline:  # re-send after any failure
            try:
                if sock is None:
                    sock = socket.create_connection(("127.0.0.1", port), timeout=15)
                sock.sendall(SB + raw + EB + CR)
                received = b""
                while not received.endswith(EB + CR):
                    chunk = sock.recv(4096)
                    if not chunk:
                        raise ConnectionError("closed")
                    received += chunk
                reply = received
            except OSError:
                if sock is not None:
                    sock.close()
                sock = None
                time.sleep(0.05)
        if reply is None:  # a gateway that never answers fails the test, rather than hangs it
            problems.append(f"message {i} and those after it: no ACK in {SEND_FOR:.0f} s")
            break
        ack = ack_fields(reply.strip(SB + EB + CR))
        if ack["code"] != "AA" or ack["control_id"] != f"CRASH-{i:05d}":
            problems.append(f"message {i}: {ack}")
        acked[f"CRASH-{i:05d}"] = ack["code"]
    if sock is not None:
        sock.close()


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_nothing_and_applies_nothing_twice(
    database,
    database_url,
    client,
    tmp_path,  # type: ignore[no-untyped-def]
) -> None:
    seed = int(os.environ.get("CRASH_SEED", "20261203"))
    rng = random.Random(seed)
    # Kill after these many ACKs: spread over the stream, the same points for the same seed.
    kill_points = sorted(rng.sample(range(MESSAGES // 10, MESSAGES * 9 // 10), KILLS))
    gateway = Gateway(database_url, _free_port(), tmp_path / "gateway.log")
    gateway.start()
    acked: dict[str, str] = {}
    problems: list[str] = []
    senders = [
        threading.Thread(
            target=_sender,
            args=(gateway.port, list(range(c, MESSAGES, CONNECTIONS)), acked, problems),
        )
        for c in range(CONNECTIONS)
    ]
    for t in senders:
        t.start()
    kills = 0
    try:
        for point in kill_points:
            deadline = time.monotonic() + KILL_WAIT
            while len(acked) < point and time.monotonic() < deadline:
                time.sleep(0.01)
            # a moment inside the processing of the next messages, also drawn from the seed
            time.sleep(rng.uniform(0.0, 0.05))
            gateway.kill()
            kills += 1
            gateway.start()
        for t in senders:
            t.join(300)
    finally:
        gateway.stop()
    assert kills == KILLS, f"seed {seed}: the stream ended before every kill"
    assert problems == [], f"seed {seed}"
    assert len(acked) == MESSAGES

    def rows(session):  # type: ignore[no-untyped-def]
        by_status = dict(
            session.execute(
                select(inbox_messages.c.status, func.count()).group_by(inbox_messages.c.status)
            ).all()
        )
        per_key = session.execute(
            select(inbox_messages.c.control_id, func.count())
            .where(inbox_messages.c.status == "processed")
            .group_by(inbox_messages.c.control_id)
        ).all()
        return by_status, dict(per_key)

    by_status, processed = database.read(rows)
    assert by_status.get("received", 0) == 0 and by_status.get("failed", 0) == 0, by_status
    assert set(processed) == set(acked)  # nothing ACKed is missing
    assert set(processed.values()) == {1}  # and each message was applied exactly once
    patients = client.get("/Patient", params={"_count": 1000}).json()
    assert patients["total"] == PATIENTS  # no patient created twice
    newest = {f"P{p:04d}": f"F{max(range(p, MESSAGES, PATIENTS)):05d}" for p in range(PATIENTS)}
    names = {
        e["resource"]["identifier"][0]["value"]: e["resource"]["name"][0]["family"]
        for e in patients["entry"]
    }
    assert names == newest  # re-sent older messages never overwrote newer data
