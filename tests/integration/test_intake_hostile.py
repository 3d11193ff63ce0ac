"""Issue #15 at the doors: NUL in HL7 and REST input, lone header segments and empty batches, ACKs
that echo MSH-10, out-of-range ids, recovery past a bad row, and MLLP resource bounds. On SQLite
and PostgreSQL (NUL is the PostgreSQL case: its text cannot hold one)."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from intake_helpers import ack_fields, adt, microsoft_messages
from typer.testing import CliRunner

from adapters.mllp import CR, EB, SB, frame
from fhir_gateway.services import intake_hl7
from fhir_gateway.store import inbox
from fhir_gateway.workers.mllp import start_listener

HL7 = {"content-type": "x-application/hl7-v2+er7"}
NUL_FAMILIES = {"escaped": "DO\\X00\\E", "raw": "DO\x00E"}


def _segments(ack: bytes | str) -> dict[str, list[str]]:
    text = ack.decode() if isinstance(ack, bytes) else ack
    return {
        s[:3]: s.split("|") for s in text.strip(SB.decode() + EB.decode() + "\r").split("\r") if s
    }


def _family(client, mrn: str) -> str:  # type: ignore[no-untyped-def]
    found = client.get("/Patient", params={"identifier": mrn}).json()["entry"]
    return str(found[0]["resource"]["name"][0]["family"])


# --- NUL in HL7 v2: cleaned with a warning, the row processed, the patient never blocked ---------


@pytest.mark.parametrize("family", NUL_FAMILIES.values(), ids=NUL_FAMILIES.keys())
def test_nul_in_pid5_over_http_is_accepted_with_a_warning(client, database, family) -> None:  # type: ignore[no-untyped-def]
    response = client.post("/hl7v2", content=adt("A01", "NUL-1", family=family), headers=HL7)
    assert response.status_code == 200
    ack = _segments(response.content)
    assert ack["MSA"][1:3] == ["AA", "NUL-1"]
    assert ack["ERR"][2] == "PID^1^5" and ack["ERR"][4] == "W"
    assert database.read(inbox.count, status="processed") == 1
    assert _family(client, "MRN1") == "DOE"
    later = client.post("/hl7v2", content=adt("A08", "CLEAN-2", family="ROE"), headers=HL7)
    assert ack_fields(later.content)["code"] == "AA"
    assert database.read(inbox.count, status="processed") == 2
    assert _family(client, "MRN1") == "ROE"
    rows = database.read(inbox.listing)
    assert family.encode() in rows[-1].raw  # the inbox keeps the bytes as received


def test_nul_in_pid5_over_mllp_is_accepted_with_a_warning(mllp_factory, database) -> None:  # type: ignore[no-untyped-def]
    server = mllp_factory()
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
        for control, family in (("MLLP-NUL", NUL_FAMILIES["raw"]), ("MLLP-CLEAN", "ROE")):
            sock.sendall(frame(adt("A01", control, family=family)))
            ack = _segments(_read_frame(sock))
            assert ack["MSA"][1:3] == ["AA", control]
    assert "ERR" not in ack
    assert database.read(inbox.count, status="processed") == 2


# --- recovery: rows a crash left `received` never stop the start ---------------------------------


def _left_received(intake, raw: bytes, control: str) -> int:  # type: ignore[no-untyped-def]
    """A row as an earlier run left it: stored and keyed, never applied."""
    clean = intake_hl7.identify(adt("A01", "X"), intake.options, intake.settings)

    def store(session) -> int:  # type: ignore[no-untyped-def]
        key_text = f"hl7v2|ADT1|GOOD|{control}"
        mid = inbox.add(
            session,
            raw=raw,
            channel="mllp",
            kind="hl7v2",
            sender="ADT1|GOOD",
            control_id=control,
            message_key=inbox.key_hash(key_text),
            patient_key=clean.patient_key,
            event="A01",
        )
        inbox.claim_key(session, inbox.key_hash(key_text), key_text, mid)
        return mid

    return int(intake.db.write(store))


def test_rows_left_received_are_applied_or_failed_at_start_and_the_listener_starts(
    intake,
    database,
    settings,
    monkeypatch,
    caplog,  # type: ignore[no-untyped-def]
) -> None:
    nul = _left_received(intake, adt("A01", "OLD-NUL", family=NUL_FAMILIES["escaped"]), "OLD-NUL")
    broken = _left_received(intake, adt("A01", "OLD-BROKEN"), "OLD-BROKEN")
    clean = _left_received(intake, adt("A08", "OLD-CLEAN", family="ROE"), "OLD-CLEAN")
    convert = intake_hl7.convert

    def adapter_defect(raw, **kwargs):  # type: ignore[no-untyped-def]
        if b"OLD-BROKEN" in raw:  # an adapter bug: not an HL7Error
            raise KeyError("coding")
        return convert(raw, **kwargs)

    monkeypatch.setattr(intake_hl7, "convert", adapter_defect)
    caplog.set_level(logging.WARNING)

    async def start_and_stop() -> None:
        listener = await start_listener(intake, settings, host="127.0.0.1", port=0)
        await listener.close()

    asyncio.run(start_and_stop())
    rows = {mid: database.read(inbox.get, mid) for mid in (nul, broken, clean)}
    assert [rows[m].status for m in (nul, broken, clean)] == ["processed", "failed", "processed"]
    assert rows[broken].answer_code == "AE" and "KeyError" in rows[broken].error["reason"]
    assert any(f"inbox {broken}" in r.getMessage() for r in caplog.records)


# --- NUL in REST input: 400 with an OperationOutcome ---------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body", "ctype"),
    [
        ("GET", "/Patient/ab%00c", None, None),
        ("GET", "/Patient?name=a%00b", None, None),
        ("GET", "/Patient?na%00me=ab", None, None),
        (
            "POST",
            "/Patient",
            b'{"resourceType":"Patient","name":[{"family":"a\\u0000b"}]}',
            "application/fhir+json",
        ),
        (
            "PUT",
            "/Patient/p1",
            b'{"resourceType":"Patient","id":"p1","gender":"\\u0000"}',
            "application/fhir+json",
        ),
        ("POST", "/Patient/_search", b"name=a%00b", "application/x-www-form-urlencoded"),
        (
            "POST",
            "/$process-message",
            b'{"resourceType":"Bundle","id":"\\u0000"}',
            "application/fhir+json",
        ),
    ],
    ids=[
        "id",
        "search-value",
        "search-name",
        "json-string",
        "json-update",
        "form-search",
        "process-message",
    ],
)
def test_nul_in_rest_input_is_refused_with_400(client, method, path, body, ctype) -> None:  # type: ignore[no-untyped-def]
    headers = {"content-type": ctype} if ctype else {}
    response = client.request(method, path, content=body, headers=headers)
    assert response.status_code == 400, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert "NUL" in outcome["issue"][0]["diagnostics"]


# --- odd headers: answered and kept, never a crash ------------------------------------------------


def test_lone_header_segments_are_rejected_and_an_empty_batch_acknowledged(
    client, database
) -> None:  # type: ignore[no-untyped-def]
    for raw in (b"MSH", b"MSH\rPID|1", b"FTS", b"FTS|1"):
        response = client.post("/hl7v2", content=raw, headers=HL7)
        assert response.status_code == 400, raw
        ack = _segments(response.content)
        assert ack["MSA"][1] == "AR" and "ERR" in ack
    response = client.post(
        "/hl7v2", content=b"BHS|^~\\&|ADT1|GOOD|GW|GW|20240101||||B-7\rBTS|0", headers=HL7
    )
    assert response.status_code == 200
    assert _segments(response.content)["MSA"][1:3] == ["AA", "B-7"]
    assert client.post("/hl7v2", content=b"BHS|^~\\&\rBTS|0", headers=HL7).status_code == 200
    assert database.read(inbox.count, status="failed") == 4
    assert database.read(inbox.count, status="processed") == 2


def test_every_ack_echoes_msh10_when_the_header_can_be_read(client) -> None:  # type: ignore[no-untyped-def]
    undecodable = (
        adt("A01", "CHARSET-1")
        .replace(b"|2.5\r", b"|2.5||||||UNICODE UTF-8\r")
        .replace(b"DOE", b"D\xffE")
    )
    ack = _segments(client.post("/hl7v2", content=undecodable, headers=HL7).content)
    assert ack["MSA"][1:3] == ["AR", "CHARSET-1"]
    two = adt("A01", "FIRST-1") + b"\r" + adt("A01", "SECOND-1")
    ack = _segments(client.post("/hl7v2", content=two, headers=HL7).content)
    assert ack["MSA"][1:3] == ["AE", "FIRST-1"]


def test_a_dg1_priority_beyond_2_31_is_an_ae(client) -> None:  # type: ignore[no-untyped-def]
    dg1 = "DG1|1||F20.9^Schizophrenia^I10||20240101|A|||||||||99999999999999999999"
    response = client.post(
        "/hl7v2", content=adt("A01", "RANK-1") + b"\r" + dg1.encode(), headers=HL7
    )
    assert response.status_code == 422
    ack = _segments(response.content)
    assert ack["MSA"][1:3] == ["AE", "RANK-1"] and ack["ERR"][2] == "DG1^1^15"


# --- inbox ids out of range: 404, and a clean CLI error -------------------------------------------


@pytest.mark.parametrize(
    "message_id", ["99999999999999999999999", "9223372036854775808", "-1", "0"]
)
def test_inbox_ids_out_of_range_are_not_found(client, message_id) -> None:  # type: ignore[no-untyped-def]
    response = client.get(f"/inbox/{message_id}")
    assert response.status_code == 404
    assert response.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize(
    "params", [{"_offset": "99999999999999999999999"}, {"_offset": "-1"}, {"_count": "-5"}]
)
def test_inbox_listing_refuses_paging_out_of_range(client, params) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/inbox", params=params)
    assert response.status_code == 400
    assert response.json()["resourceType"] == "OperationOutcome"


def test_the_cli_answers_an_out_of_range_inbox_id_without_a_traceback(
    database, monkeypatch, database_url
) -> None:  # type: ignore[no-untyped-def]
    from fhir_gateway.cli import app as cli
    from fhir_gateway.settings import get_settings

    monkeypatch.setenv("FHIR_GATEWAY_DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        for command in ("show", "replay"):
            result = CliRunner().invoke(cli, ["inbox", command, "99999999999999999999999"])
            assert result.exit_code == 1 and "is not known" in result.output, result.output
            assert not isinstance(result.exception, Exception) or isinstance(
                result.exception, SystemExit
            )
    finally:
        get_settings.cache_clear()


# --- MLLP bounds ----------------------------------------------------------------------------------


def _read_frame(sock: socket.socket) -> bytes:
    """One answer frame, or b"" when the server closed the connection instead."""
    data = b""
    while not data.endswith(EB + CR):
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return b""
        if not chunk:
            return b""
        data += chunk
    return data


def test_junk_is_counted_over_the_connection_and_closed_with_one_line(mllp_factory, caplog) -> None:  # type: ignore[no-untyped-def]
    server = mllp_factory(max_junk=1000)
    caplog.set_level(logging.INFO, logger="adapters.mllp")
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
        try:
            for _ in range(200):  # 3,200 bytes in small writes: each read alone is under the limit
                sock.sendall(b"GET / HTTP/1.1\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert _read_frame(sock) == b""  # closed by the server (the timeout bounds a hang)
    refused = [r for r in caplog.records if "outside any frame (limit 1000" in r.getMessage()]
    assert len(refused) == 1
    assert len([r for r in caplog.records if "outside any frame" in r.getMessage()]) <= 2


def test_connections_over_the_cap_are_closed_and_the_others_served(mllp_factory, caplog) -> None:  # type: ignore[no-untyped-def]
    server = mllp_factory(max_connections=2)
    caplog.set_level(logging.WARNING, logger="adapters.mllp")
    first = socket.create_connection(("127.0.0.1", server.port), timeout=60)
    second = socket.create_connection(("127.0.0.1", server.port), timeout=60)
    try:
        for i, sock in enumerate((first, second)):
            sock.sendall(frame(adt("A01", f"CAP-{i}")))
            assert ack_fields(_read_frame(sock).strip(SB + EB + CR))["code"] == "AA"
        with socket.create_connection(("127.0.0.1", server.port), timeout=60) as third:
            assert _read_frame(third) == b""
        first.sendall(frame(adt("A08", "CAP-2")))
        assert ack_fields(_read_frame(first).strip(SB + EB + CR))["code"] == "AA"
    finally:
        first.close()
        second.close()
    assert "connections open (limit 2, max_connections)" in caplog.text


# --- property: whatever the corpus message turns into, the MLLP handler answers or closes with a line


_SEEDS = [
    p.read_bytes().lstrip(b"\xef\xbb\xbf")
    for p in microsoft_messages()
    if p.name.startswith("ADT-A0")
][:6]
_PIECES = [
    b"MSH",
    b"FTS",
    b"BHS|^~\\&",
    b"BTS|0",
    b"DG1|1|I10|^Alcohol dependence",
    b"\x00",
    b"\\X00\\",
    b"|||",
]


@st.composite
def _mutated(draw: st.DrawFn) -> bytes:
    lines = draw(st.sampled_from(_SEEDS)).replace(b"\r\n", b"\n").replace(b"\n", b"\r").split(b"\r")
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(lines) - 1))
        piece = draw(st.sampled_from(_PIECES) | st.binary(max_size=12))
        if draw(st.booleans()):
            lines.insert(at, piece)
        else:
            fields = lines[at].split(b"|")
            fields[draw(st.integers(0, len(fields) - 1))] = piece
            lines[at] = b"|".join(fields)
    return b"\r".join(lines)


@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(raw=_mutated())
def test_the_mllp_handler_always_answers_or_closes_with_a_log_line(
    mllp_factory, caplog, raw
) -> None:  # type: ignore[no-untyped-def]
    server = mllp_factory()
    caplog.clear()
    caplog.set_level(logging.INFO, logger="adapters.mllp")
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
        sock.sendall(frame(raw.replace(EB + CR, b"")))
        answer = _read_frame(sock)
    if answer:
        assert _segments(answer)["MSA"][1] in ("AA", "AE", "AR")
    else:
        assert any(r.name == "adapters.mllp" for r in caplog.records)
