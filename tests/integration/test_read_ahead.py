"""Rows read ahead are handed out only while nothing may have changed them."""

from __future__ import annotations

from typing import Any

from fhir_gateway.store import repository
from fhir_gateway.store.read_ahead import Prefetched


def _patient(pid: str, family: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "name": [{"family": family}]}


def test_a_row_read_ahead_is_handed_out_until_its_type_is_written(session_factory):  # type: ignore[no-untyped-def]
    with session_factory() as session:
        for pid in ("a", "b"):
            repository.create_resource(session, _patient(pid, "Old"), res_id=pid)
        ahead = Prefetched.read(session, [("Patient", "a"), ("Patient", "b"), ("Patient", "x")])
        stored = ahead.get(session, "Patient", "a")
        assert stored is not None and stored.content["name"][0]["family"] == "Old"
        assert ahead.get(session, "Patient", "x") is None  # not stored: read by the caller
        repository.update_resource(session, _patient("b", "New"), "b")
        assert ahead.get(session, "Patient", "b") is None  # a Patient written since: read again
        assert ahead.get(session, "Patient", "a") is None


def test_a_row_read_ahead_is_dropped_when_a_savepoint_ends(session_factory):  # type: ignore[no-untyped-def]
    with session_factory() as session:
        repository.create_resource(session, _patient("c", "Old"), res_id="c")
        ahead = Prefetched.read(session, [("Patient", "c")])
        with session.begin_nested():
            pass
        assert ahead.get(session, "Patient", "c") is None


def test_a_key_read_ahead_and_not_found_is_known_to_be_absent(session_factory):  # type: ignore[no-untyped-def]
    # A PUT by id of a resource that does not exist yet (a message's MessageHeader) creates it
    # without reading again; a key not read ahead, or of a type written since, is read again.
    with session_factory() as session:
        repository.create_resource(session, _patient("d", "Old"), res_id="d")
        ahead = Prefetched.read(session, [("Patient", "d"), ("Patient", "absent")])
        found = ahead.current(session, "Patient", "d")
        assert isinstance(found, repository.StoredResource) and found.res_id == "d"
        assert ahead.current(session, "Patient", "absent") is None
        assert ahead.current(session, "Patient", "never-asked") is repository.UNREAD
        repository.create_resource(session, _patient("absent", "New"), res_id="absent")
        assert ahead.current(session, "Patient", "absent") is repository.UNREAD
