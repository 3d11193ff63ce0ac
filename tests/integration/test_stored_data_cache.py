"""Data built from stored resources (templates, partners, instruments, subscriptions, a partner's
endpoint) asks the database once per transaction, for every cache at once, and again only after
the transaction wrote one of its types."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from fhir_gateway.careplans import StoredDataCache
from fhir_gateway.services import lookup
from fhir_gateway.store import repository
from fhir_gateway.store.statements import counting
from fhir_gateway.workflow._partners import endpoint_of


def _questionnaire(q_id: str, title: str) -> dict[str, Any]:
    return {"resourceType": "Questionnaire", "id": q_id, "status": "active", "title": title}


def _titles(session: Session) -> list[str]:
    found = repository.read_many(session, "Questionnaire", ["q1", "q2"])
    return sorted(s.content["title"] for s in found if not s.deleted)


def test_a_second_get_in_one_transaction_asks_nothing(database):
    titles = StoredDataCache(("Questionnaire",), _titles)
    with database.session() as session:
        lookup.save(session, _questionnaire("q1", "PHQ-9"))
    with database.session() as session:
        assert titles.get(session) == ["PHQ-9"]
        with counting(database.engine) as seen:
            assert titles.get(session) == ["PHQ-9"]
        assert seen.total == 0, seen.by_table
    with database.session() as session, counting(database.engine) as seen:
        assert titles.get(session) == ["PHQ-9"]  # a new transaction asks again (and keeps it)
    assert seen.by_verb == {"SELECT": 1}, seen.by_table


def test_a_write_in_the_transaction_is_seen_by_the_next_get(database):
    titles = StoredDataCache(("Questionnaire",), _titles)
    with database.session() as session:
        lookup.save(session, _questionnaire("q1", "PHQ-9"))
    with database.session() as session:
        assert titles.get(session) == ["PHQ-9"]
        lookup.save(session, {"resourceType": "Basic", "id": "b1", "code": {"text": "other"}})
        with counting(database.engine) as seen:
            assert titles.get(session) == ["PHQ-9"]  # another type: nothing asked
        assert seen.total == 0
        lookup.save_all(session, [_questionnaire("q1", "PHQ-A"), _questionnaire("q2", "GAD-7")])
        assert titles.get(session) == ["GAD-7", "PHQ-A"]
        repository.delete_resource(session, "Questionnaire", "q2")
        assert titles.get(session) == ["PHQ-A"]


def _basic_codes(session: Session) -> list[str]:
    found = repository.read_many(session, "Basic", ["b1"])
    return [s.content["code"]["text"] for s in found if not s.deleted]


def _basic(text: str) -> dict[str, Any]:
    return {"resourceType": "Basic", "id": "b1", "code": {"text": text}}


def test_caches_of_different_types_ask_once_between_them_per_transaction(database):
    # A discharge uses four such caches (templates, directory, instruments, subscriptions): one
    # statement tells each whether what it holds is still current (issue 21), not one each.
    titles = StoredDataCache(("Questionnaire",), _titles)
    codes = StoredDataCache(("Basic",), _basic_codes)
    with database.session() as session:
        lookup.save_all(session, [_questionnaire("q1", "PHQ-9"), _basic("intake")])
    with database.session() as session:
        assert (titles.get(session), codes.get(session)) == (["PHQ-9"], ["intake"])
    with database.session() as session, counting(database.engine) as seen:
        assert (titles.get(session), codes.get(session)) == (["PHQ-9"], ["intake"])
    assert seen.by_verb == {"SELECT": 1}, seen.by_table
    with database.session() as session:  # another transaction changes one of the types
        lookup.save(session, _basic("follow-up"))
    with database.session() as session:
        assert (titles.get(session), codes.get(session)) == (["PHQ-9"], ["follow-up"])


def _endpoint(address: str) -> dict[str, Any]:
    return {
        "resourceType": "Endpoint",
        "id": "ep1",
        "status": "active",
        "connectionType": {
            "system": "http://terminology.hl7.org/CodeSystem/endpoint-connection-type",
            "code": "hl7-fhir-rest",
        },
        "managingOrganization": {"reference": "Organization/o1"},
        "payloadType": [{"text": "FHIR"}],
        "address": address,
    }


def test_a_partners_endpoint_is_looked_up_once_per_transaction(database):
    with database.session() as session:
        lookup.save(session, {"resourceType": "Organization", "id": "o1", "name": "Partner"})
        lookup.save(session, _endpoint("https://partner.example/fhir"))
    with database.session() as session:
        assert endpoint_of(session, "Organization/o1") == "https://partner.example/fhir"
        with counting(database.engine) as seen:
            assert endpoint_of(session, "Organization/o1") == "https://partner.example/fhir"
        assert seen.total == 0, seen.by_table
        lookup.save(session, _endpoint("https://moved.example/fhir"))
        assert endpoint_of(session, "Organization/o1") == "https://moved.example/fhir"
