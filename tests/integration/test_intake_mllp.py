"""End to end over a real TCP socket, with python-hl7's MLLP client (not ours)."""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from pathlib import Path

import pytest
from hl7.client import MLLPClient
from intake_helpers import (
    ack_fields,
    adt,
    microsoft_messages,
    with_control_id,
)
from tls_helpers import certificates

from adapters.mllp import CR, EB, SB
from fhir_gateway.store import inbox


def _exchange(client: MLLPClient, raw: bytes) -> dict[str, str]:
    """Send one message and read its whole ACK (MLLPClient.send reads one recv only)."""
    reply = client.send_message(raw)
    while not reply.endswith(EB + CR):
        reply += client.socket.recv(4096)
    return ack_fields(reply.strip(SB + EB + CR))


def _history_size(client) -> int:  # type: ignore[no-untyped-def]
    return int(client.get("/_history", params={"_count": 1}).json()["total"])


@pytest.mark.slow  # every corpus message over MLLP, twice
def test_every_microsoft_message_is_answered_and_resends_are_not_reapplied(
    mllp_factory,
    client,
    database,
    recorded_discharges,  # type: ignore[no-untyped-def]
) -> None:
    server = mllp_factory()
    messages = [
        (p.stem, with_control_id(p.read_bytes().lstrip(b"\xef\xbb\xbf"), p.stem))
        for p in microsoft_messages()
    ]
    assert len(messages) == 57
    with MLLPClient("127.0.0.1", server.port) as mllp:
        for name, raw in messages:
            ack = _exchange(mllp, raw)
            assert (ack["code"], ack["control_id"]) == ("AA", name), name
        versions = _history_size(client)
        for name, raw in messages:  # the sender did not get our ACKs and sends everything again
            ack = _exchange(mllp, raw)
            assert (ack["code"], ack["control_id"]) == ("AA", name), name
    assert _history_size(client) == versions  # nothing applied twice: no new version anywhere
    assert database.read(inbox.count, status="processed") == 57
    assert database.read(inbox.count, status="duplicate") == 57
    # ADT-A03-01 finishes visit 40007716 (later samples re-open and cancel it: the history keeps it)
    enc = client.get("/Encounter", params={"identifier": "urn:oid:1.2|40007716"}).json()["entry"][
        0
    ]["resource"]
    history = client.get(f"/Encounter/{enc['id']}/_history", params={"_count": 100}).json()["entry"]
    assert "finished" in {e["resource"].get("status") for e in history}
    assert [d.event for d in recorded_discharges] == ["A03"]


def test_a03s_are_stored_as_finished_encounters(mllp_factory, client) -> None:  # type: ignore[no-untyped-def]
    server = mllp_factory()
    with MLLPClient("127.0.0.1", server.port) as mllp:
        for name in ("ADT-A03-01", "ADT-A03-02"):
            raw = (Path(microsoft_messages()[0]).parent / f"{name}.hl7").read_bytes()
            assert _exchange(mllp, with_control_id(raw, name))["code"] == "AA"
    found = client.get("/Encounter", params={"identifier": "urn:oid:1.2|40007716"}).json()["entry"]
    assert len(found) == 1  # A03-01 and A03-02 describe the same visit: one Encounter
    assert found[0]["resource"]["status"] == "finished"
    assert found[0]["resource"]["period"]["end"] == "2015-02-09T11:34:19+01:10"


def test_ack_mirrors_the_sender_and_answers_ae_with_err_for_unusable_message(mllp_factory) -> None:  # type: ignore[no-untyped-def]
    server = mllp_factory()
    missing_time = adt("A01", "NO-TIME").replace(b"|20240101120000+0000||ADT", b"|||ADT")
    with MLLPClient("127.0.0.1", server.port) as mllp:
        good = _exchange(mllp, adt("A01", "OK-1"))
        bad = _exchange(mllp, missing_time)
    assert good["code"] == "AA" and good["msh"].startswith("MSH|^~\\&|GW|GW|ADT1|GOOD|")
    assert (bad["code"], bad["control_id"], bad["err"]) == ("AE", "NO-TIME", True)


@pytest.mark.parametrize(
    "raw",
    [
        b"EVN|A01|20240101\rPID|1||X^^^H^MR",  # no MSH
        bytes(range(256)) * 4,  # junk bytes inside a frame
        adt("A01", "ORU-1").replace(b"ADT^A01^ADT_A01", b"ORU^R01^ORU_R01"),  # not ADT
        adt("A01", "Z-1").replace(b"ADT^A01^ADT_A01", b"ADT^Z99"),  # not an ADT trigger
    ],
    ids=["no-msh", "junk", "unsupported-message", "unsupported-event"],
)
def test_unacceptable_messages_get_ar_and_the_connection_keeps_serving(
    mllp_factory, raw, caplog, database
) -> None:  # type: ignore[no-untyped-def]
    server = mllp_factory()
    caplog.set_level(logging.WARNING)
    with MLLPClient("127.0.0.1", server.port) as mllp:
        assert _exchange(mllp, raw)["code"] == "AR"
        assert _exchange(mllp, adt("A01", "AFTER"))["code"] == "AA"
    assert "refused (AR)" in caplog.text
    assert database.read(inbox.count, status="failed") == 1  # kept, visible


def test_unknown_sender_gets_ar_when_the_allow_list_is_on(mllp_factory, settings) -> None:  # type: ignore[no-untyped-def]
    server = mllp_factory(
        settings.model_copy(update={"sender_allowlist": {"ADT1|GOOD": "Good Hospital"}})
    )
    with MLLPClient("127.0.0.1", server.port) as mllp:
        assert _exchange(mllp, adt("A01", "R-1", sender="ROGUE^ELSEWHERE"))["code"] == "AR"
        assert _exchange(mllp, adt("A01", "G-1"))["code"] == "AA"


def _closed(sock: socket.socket) -> bool:
    sock.settimeout(10)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def _still_served(port: int) -> None:
    with MLLPClient("127.0.0.1", port) as mllp:
        assert _exchange(mllp, adt("A01", f"OTHER-{time.monotonic_ns()}"))["code"] == "AA"


def test_oversized_frame_closes_the_connection_with_a_log_line(mllp_factory, caplog) -> None:  # type: ignore[no-untyped-def]
    server = mllp_factory(max_frame=64 * 1024)
    caplog.set_level(logging.WARNING)
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        try:
            sock.sendall(SB + b"MSH|" + b"x" * (200 * 1024) + EB + CR)
        except (ConnectionResetError, BrokenPipeError):
            pass
        assert _closed(sock)
        _still_served(server.port)
    assert "frame exceeds 65536 bytes" in caplog.text


def test_frame_that_never_ends_is_cut_off_while_others_are_served(mllp_factory, caplog) -> None:  # type: ignore[no-untyped-def]
    server = mllp_factory(frame_timeout=1.0)
    caplog.set_level(logging.WARNING)
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(SB + adt("A01", "NEVER"))  # no FS CR, ever
        _still_served(server.port)
        assert _closed(sock)
    assert "frame not ended within 1.0s" in caplog.text


def test_one_byte_a_second_client_is_cut_off(mllp_factory, caplog) -> None:  # type: ignore[no-untyped-def]
    server = mllp_factory(frame_timeout=1.5, idle_timeout=5.0)
    caplog.set_level(logging.WARNING)
    wire = SB + adt("A01", "TRICKLE") + EB + CR
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sent = 0
        try:
            for byte in wire:  # each byte arrives well inside the idle timeout
                sock.sendall(bytes([byte]))
                sent += 1
                time.sleep(0.5)
                if "frame not ended" in caplog.text:
                    break
        except (ConnectionResetError, BrokenPipeError):
            pass
        _still_served(server.port)
        assert _closed(sock)
    assert sent < len(wire)
    assert "frame not ended within 1.5s" in caplog.text


def test_junk_outside_frames_is_logged_and_dropped(mllp_factory, caplog) -> None:  # type: ignore[no-untyped-def]
    server = mllp_factory()
    caplog.set_level(logging.WARNING)
    with MLLPClient("127.0.0.1", server.port) as mllp:
        mllp.socket.sendall(b"GET / HTTP/1.1\r\n\r\n")
        assert _exchange(mllp, adt("A01", "AFTER-JUNK"))["code"] == "AA"
    assert "bytes outside any frame discarded" in caplog.text


def test_mllp_over_tls_requires_a_client_certificate(mllp_factory, settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    certs = certificates(tmp_path)
    tls = settings.model_copy(
        update={
            "mllp_tls_cert": str(certs["server.pem"]),
            "mllp_tls_key": str(certs["server.key"]),
            "mllp_tls_client_ca": str(certs["ca.pem"]),
        }
    )
    server = mllp_factory(tls)
    context = ssl.create_default_context(cafile=str(certs["ca.pem"]))
    context.load_cert_chain(str(certs["client.pem"]), str(certs["client.key"]))
    with (
        socket.create_connection(("127.0.0.1", server.port)) as raw_sock,
        context.wrap_socket(raw_sock, server_hostname="localhost") as sock,
    ):
        sock.sendall(SB + adt("A01", "TLS-1") + EB + CR)
        reply = b""
        while not reply.endswith(EB + CR):
            reply += sock.recv(4096)
    assert ack_fields(reply.strip(SB + EB + CR))["code"] == "AA"
    anonymous = ssl.create_default_context(cafile=str(certs["ca.pem"]))
    reply = b""
    with socket.create_connection(("127.0.0.1", server.port)) as raw_sock:
        try:  # TLS 1.3: the refusal may come after the client thinks the handshake is done
            with anonymous.wrap_socket(raw_sock, server_hostname="localhost") as sock:
                sock.sendall(SB + adt("A01", "TLS-2") + EB + CR)
                reply = sock.recv(4096)
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
            pass
    assert reply == b""  # no ACK without a client certificate


def test_a_listener_applies_at_most_mllp_workers_messages_at_once(
    mllp_factory, settings, client, database
) -> None:  # type: ignore[no-untyped-def]
    # Six senders at once, two threads applying (mllp_workers): the others' messages wait their
    # turn (PostgreSQL applies two at a time; SQLite, one writer, one) and all are answered AA.
    server = mllp_factory(settings.model_copy(update={"mllp_workers": 2}))
    lock, active, most, names = threading.Lock(), [0], [0], set()

    def applying(session, message) -> None:  # type: ignore[no-untyped-def]
        with lock:
            active[0] += 1
            most[0] = max(most[0], active[0])
            names.add(threading.current_thread().name.rsplit("_", 1)[0])
        time.sleep(0.2)  # long enough for the others to pile up
        with lock:
            active[0] -= 1

    codes: list[str] = []

    def send(i: int) -> None:
        with MLLPClient("127.0.0.1", server.port) as mllp:
            raw = adt("A01", f"POOL-{i}", mrn=f"P{i}", visit=f"PV{i}")
            codes.append(_exchange(mllp, raw)["code"])

    remove = client.app.state.rules.add("message_applied", applying)
    try:
        senders = [threading.Thread(target=send, args=(i,)) for i in range(6)]
        for t in senders:
            t.start()
        for t in senders:
            t.join(60)
    finally:
        remove()
    assert codes == ["AA"] * 6
    assert most[0] == (2 if database.is_postgres else 1)
    assert names == {"mllp-apply"}
