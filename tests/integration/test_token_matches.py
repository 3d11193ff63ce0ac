"""Many conditional criteria matched at once answer exactly what each search answers alone."""

from __future__ import annotations

from typing import Any

from fhir_gateway.context import SYSTEM
from fhir_gateway.store import repository
from fhir_gateway.store.search import match_ids
from fhir_gateway.store.statements import counting
from fhir_gateway.store.token_matches import match_ids_many


def _patient(pid: str, *identifiers: dict[str, str]) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "identifier": list(identifiers)}


QUERIES: list[tuple[str, list[tuple[str, str]]]] = [
    ("Patient", [("identifier", "urn:mrn|M1")]),
    ("Patient", [("identifier", "urn:mrn|M2")]),  # two patients carry it
    ("Patient", [("identifier", "|4411")]),  # no system: only the one without a system
    ("Patient", [("identifier", "urn:mrn|gone")]),  # deleted
    ("Patient", [("identifier", "urn:other|M1")]),  # another system
    ("Practitioner", [("identifier", "urn:mrn|M1")]),  # another type
    ("Patient", [("identifier", "M1")]),  # any system: searched alone
    ("Patient", [("family", "Rivera")]),  # not a token: searched alone
    ("Patient", [("identifier", "urn:mrn|M1"), ("family", "Rivera")]),
]


def _store(session) -> None:  # type: ignore[no-untyped-def]
    for doc in (
        _patient("a", {"system": "urn:mrn", "value": "M1"}, {"system": "urn:x", "value": "1"}),
        _patient("b", {"system": "urn:mrn", "value": "M2"}),
        _patient("c", {"system": "urn:mrn", "value": "M2"}, {"value": "4411"}),
        _patient("d", {"system": "urn:sys", "value": "4411"}),
        _patient("e", {"system": "urn:mrn", "value": "gone"}),
    ):
        repository.create_resource(session, doc, res_id=doc["id"])
    repository.delete_resource(session, "Patient", "e")


def test_each_answer_is_the_search_of_its_own_criteria(session_factory):  # type: ignore[no-untyped-def]
    with session_factory() as session:
        _store(session)
        alone = [match_ids(session, t, q, caller=SYSTEM, limit=2) for t, q in QUERIES]
        assert match_ids_many(session, QUERIES, caller=SYSTEM, limit=2) == alone
        assert alone[:4] == [["a"], ["b", "c"], ["c"], []]


def test_the_exact_identifiers_take_one_statement(session_factory):  # type: ignore[no-untyped-def]
    with session_factory() as session:
        _store(session)
        with counting(session.get_bind()) as seen:
            found = match_ids_many(session, QUERIES[:6], caller=SYSTEM, limit=2)
        assert found == [["a"], ["b", "c"], ["c"], [], [], []]
        assert seen.by_verb["SELECT"] == 1
