"""The index probe that lets a consequence skip a search (a first admission: no plan, no
medication names the patient) says "nothing there" exactly when the search finds nothing."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_gateway.context import SYSTEM
from fhir_gateway.store import repository, transaction_memo
from fhir_gateway.store.referrers import may_refer
from fhir_gateway.store.search import match_ids
from fhir_gateway.store.statements import counting


def _plan(pid: str, subject: str) -> dict[str, Any]:
    return {
        "resourceType": "CarePlan",
        "id": pid,
        "status": "active",
        "intent": "plan",
        "subject": {"reference": subject},
    }


def _agree(session, subject: str) -> bool:  # type: ignore[no-untyped-def]
    found = match_ids(session, "CarePlan", [("subject", subject)], caller=SYSTEM)
    probed = may_refer(session, ("CarePlan",), "subject", subject)
    assert probed or not found  # never "nothing there" when the search finds something
    return probed


def test_the_probe_finds_a_plan_naming_the_patient_and_none_for_others(session_factory):
    with session_factory() as session:
        repository.create_resource(session, _plan("p1", "Patient/jane"), res_id="p1")
        assert _agree(session, "Patient/jane") is True
        assert _agree(session, "Patient/john") is False
        assert may_refer(session, ("MedicationDispense",), "subject", "Patient/jane") is False


def test_a_deleted_plan_no_longer_counts(session_factory):
    with session_factory() as session:
        repository.create_resource(session, _plan("p2", "Patient/ann"), res_id="p2")
        repository.delete_resource(session, "CarePlan", "p2")
        assert _agree(session, "Patient/ann") is False


@pytest.mark.parametrize(
    "reference",
    ["http://example.org/fhir/Patient/jane", "urn:uuid:1234", "Patient/jane/_history/1"],
)
def test_a_reference_of_another_form_is_left_to_the_search(session_factory, reference):
    with session_factory() as session:
        assert may_refer(session, ("CarePlan",), "subject", reference) is True


def test_a_patient_minted_in_the_transaction_is_named_by_nothing_until_a_plan_is_written(
    session_factory,
):  # type: ignore[no-untyped-def]
    with session_factory() as session:
        transaction_memo.note_minted(session, "Patient/fresh")
        with counting(session.get_bind()) as seen:
            assert may_refer(session, ("CarePlan",), "subject", "Patient/fresh") is False
        assert seen.total == 0  # answered without a probe
        repository.create_resource(session, _plan("p3", "Patient/fresh"), res_id="p3")
        assert _agree(session, "Patient/fresh") is True  # the plan written since names it


def test_a_minted_id_is_forgotten_with_its_transaction(session_factory):  # type: ignore[no-untyped-def]
    with session_factory() as session:
        repository.create_resource(session, _plan("p4", "Patient/kept"), res_id="p4")
    with session_factory() as session:
        with session.begin_nested():
            transaction_memo.note_minted(session, "Patient/kept")
        assert _agree(session, "Patient/kept") is True  # the savepoint's memo went with it
