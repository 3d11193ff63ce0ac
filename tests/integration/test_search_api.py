"""FHIR search through the real app, on the database the suite runs on (SQLite or PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest

from fhir_gateway import clock

FHIR = {"Content-Type": "application/fhir+json"}


@pytest.fixture
def ticking_clock():  # type: ignore[no-untyped-def]
    """Each write happens one minute after the previous one, from 2024-01-01T00:00Z."""
    state = {"now": datetime(2024, 1, 1, tzinfo=UTC)}

    def now() -> datetime:
        state["now"] += timedelta(minutes=1)
        return state["now"]

    clock.set_clock(now)
    yield state
    clock.reset_clock()


def put(client, resource: dict[str, Any]) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    response = client.put(
        f"/{resource['resourceType']}/{resource['id']}", json=resource, headers=FHIR
    )
    assert response.status_code in (200, 201), response.text
    return response.json()


def search(client, query: str, **headers: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    response = client.get(f"/{query}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def ids(bundle: dict[str, Any], mode: str = "match") -> list[str]:
    return [
        f"{e['resource']['resourceType']}/{e['resource']['id']}"
        for e in bundle.get("entry", [])
        if e["search"]["mode"] == mode
    ]


def link(bundle: dict[str, Any], relation: str) -> str | None:
    for item in bundle.get("link", []):
        if item["relation"] == relation:
            url = urlsplit(item["url"])
            return f"{url.path.lstrip('/')}?{url.query}"
    return None


def task(
    tid: str, status: str = "requested", owner: str = "Organization/o1", **extra: Any
) -> dict[str, Any]:
    return {
        "resourceType": "Task",
        "id": tid,
        "status": status,
        "intent": "order",
        "owner": {"reference": owner},
        **extra,
    }


@pytest.fixture
def referral_world(client):  # type: ignore[no-untyped-def]
    put(client, {"resourceType": "Organization", "id": "o1", "name": "Food Bank"})
    put(client, {"resourceType": "Organization", "id": "o2", "name": "Housing Hub"})
    put(
        client,
        {
            "resourceType": "Patient",
            "id": "p1",
            "identifier": [{"system": "urn:mrn", "value": "MRN-1"}],
            "name": [{"family": "Müller", "given": ["Zoë"]}],
            "birthDate": "1980-05-17",
        },
    )
    put(
        client,
        {
            "resourceType": "Patient",
            "id": "p2",
            "identifier": [{"system": "urn:mrn", "value": "MRN-2"}],
            "name": [{"family": "Mullins", "given": ["Al"]}],
            "birthDate": "1992",
        },
    )
    for sid, patient, code in (("sr1", "p1", "410606002"), ("sr2", "p2", "464131000124100")):
        put(
            client,
            {
                "resourceType": "ServiceRequest",
                "id": sid,
                "status": "active",
                "intent": "order",
                "subject": {"reference": f"Patient/{patient}"},
                "category": [{"coding": [{"system": "http://snomed.info/sct", "code": code}]}],
            },
        )
    put(
        client,
        task(
            "t1",
            focus={"reference": "ServiceRequest/sr1"},
            **{"for": {"reference": "Patient/p1"}},
            authoredOn="2024-03-05T10:00:00Z",
        ),
    )
    put(
        client,
        task(
            "t2",
            "accepted",
            focus={"reference": "ServiceRequest/sr1"},
            **{"for": {"reference": "Patient/p1"}},
            authoredOn="2024-03-06T10:00:00Z",
        ),
    )
    put(
        client,
        task(
            "t3",
            owner="Organization/o2",
            focus={"reference": "ServiceRequest/sr2"},
            **{"for": {"reference": "Patient/p2"}},
            authoredOn="2024-04-01",
        ),
    )
    put(
        client,
        task(
            "t4",
            "cancelled",
            meta={
                "tag": [{"system": "urn:tags", "code": "vip"}],
                "security": [
                    {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "PSY"}
                ],
                "profile": ["http://example.org/sdoh-task"],
            },
        ),
    )
    return client


# -- parameter types -----------------------------------------------------------------------------


def test_owner_and_status_together(referral_world):
    assert ids(search(referral_world, "Task?owner=Organization/o1&status=requested")) == ["Task/t1"]
    assert ids(search(referral_world, "Task?owner=o1&status=requested,accepted")) == [
        "Task/t1",
        "Task/t2",
    ]
    assert ids(search(referral_world, "Task?owner=http://testserver/Organization/o2")) == [
        "Task/t3"
    ]
    assert ids(search(referral_world, "Task?owner:Organization=o2")) == ["Task/t3"]


def test_token_modifiers_and_meta_parameters(referral_world):
    assert ids(search(referral_world, "Task?status:not=requested")) == ["Task/t2", "Task/t4"]
    assert ids(search(referral_world, "Task?focus:missing=true")) == ["Task/t4"]
    assert ids(search(referral_world, "Task?focus:missing=false")) == [
        "Task/t1",
        "Task/t2",
        "Task/t3",
    ]
    assert ids(search(referral_world, "Task?_tag=urn:tags|vip")) == ["Task/t4"]
    assert ids(search(referral_world, "Task?_tag=other|vip")) == []
    assert ids(search(referral_world, "Task?_security=PSY")) == ["Task/t4"]
    assert ids(search(referral_world, "Task?_profile=http://example.org/sdoh-task")) == ["Task/t4"]
    assert ids(search(referral_world, "Task?_id=t3,t1")) == ["Task/t1", "Task/t3"]
    assert ids(search(referral_world, "Patient?identifier=urn:mrn|MRN-2")) == ["Patient/p2"]
    assert ids(search(referral_world, "Patient?identifier=|MRN-2")) == []  # has a system
    assert ids(search(referral_world, "ServiceRequest?category=http://snomed.info/sct|")) == [
        "ServiceRequest/sr1",
        "ServiceRequest/sr2",
    ]


def test_token_text(client):
    put(
        client,
        {
            "resourceType": "Condition",
            "id": "c1",
            "subject": {"reference": "Patient/p1"},
            "code": {
                "coding": [
                    {
                        "system": "http://hl7.org/fhir/sid/icd-10-cm",
                        "code": "F32.9",
                        "display": "Major depressive disorder",
                    }
                ]
            },
        },
    )
    assert ids(search(client, "Condition?code:text=major depr")) == ["Condition/c1"]
    assert ids(search(client, "Condition?code:text=anxiety")) == []


def test_string_search_folds_case_and_accents(referral_world):
    assert ids(search(referral_world, "Patient?name=MULL")) == ["Patient/p1", "Patient/p2"]
    assert ids(search(referral_world, "Patient?family=muller")) == ["Patient/p1"]
    assert ids(search(referral_world, "Patient?given=zoe")) == ["Patient/p1"]
    assert ids(search(referral_world, "Patient?family:exact=Müller")) == ["Patient/p1"]
    assert ids(search(referral_world, "Patient?family:exact=muller")) == []
    assert ids(search(referral_world, "Patient?family:contains=LIN")) == ["Patient/p2"]
    assert ids(search(referral_world, "Patient?family=50%25")) == []  # LIKE wildcards are literal


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("authored-on=2024-03", ["Task/t1", "Task/t2"]),
        ("authored-on=2024-03-05", ["Task/t1"]),
        ("authored-on=ne2024-03-05", ["Task/t2", "Task/t3"]),
        ("authored-on=gt2024-03-05", ["Task/t2", "Task/t3"]),
        ("authored-on=ge2024-03-06", ["Task/t2", "Task/t3"]),
        ("authored-on=lt2024-03-06", ["Task/t1"]),
        ("authored-on=le2024-03-06", ["Task/t1", "Task/t2"]),
        ("authored-on=sa2024-03", ["Task/t3"]),
        ("authored-on=eb2024-04", ["Task/t1", "Task/t2"]),
        ("authored-on=2024-03-05T10:00:00%2B00:00", ["Task/t1"]),
        ("authored-on=2024-03-05T12:00:00%2B02:00", ["Task/t1"]),
        ("authored-on=ge2024-03-01&authored-on=lt2024-03-06", ["Task/t1"]),
    ],
)
def test_date_prefixes_with_precision(referral_world, query, expected):
    assert ids(search(referral_world, f"Task?{query}")) == expected


def test_period_overlaps_and_open_ends(client):
    put(
        client,
        {
            "resourceType": "CarePlan",
            "id": "closed",
            "status": "active",
            "intent": "plan",
            "subject": {"reference": "Patient/p1"},
            "period": {"start": "2024-01-10", "end": "2024-02-10"},
        },
    )
    put(
        client,
        {
            "resourceType": "CarePlan",
            "id": "open",
            "status": "active",
            "intent": "plan",
            "subject": {"reference": "Patient/p1"},
            "period": {"start": "2024-02-01"},
        },
    )
    assert ids(search(client, "CarePlan?date=2024-01")) == []  # neither lies within January
    assert ids(search(client, "CarePlan?date=ge2024-02-05")) == ["CarePlan/closed", "CarePlan/open"]
    assert ids(search(client, "CarePlan?date=gt2030-01-01")) == ["CarePlan/open"]
    assert ids(search(client, "CarePlan?date=lt2024-01-31")) == ["CarePlan/closed"]
    assert ids(search(client, "CarePlan?date=sa2024-02-10")) == []
    assert ids(search(client, "CarePlan?date=eb2024-02-11")) == ["CarePlan/closed"]


def _at(when: str) -> None:
    moment = datetime.fromisoformat(when).replace(tzinfo=UTC)
    clock.set_clock(lambda: moment)


def test_last_updated(client):
    try:
        for tid, when, owner in (
            ("t1", "2024-01-01T08:00:00", "o1"),
            ("t2", "2024-01-01T09:00:00", "o1"),
            ("t3", "2024-01-01T09:30:00", "o2"),
            ("t4", "2024-01-01T10:00:00.250", "o1"),
        ):
            _at(when)
            put(client, task(tid, owner=f"Organization/{owner}"))
    finally:
        clock.reset_clock()
    assert ids(search(client, "Task?owner=o1&_lastUpdated=gt2024-01-01T08:30:00Z")) == [
        "Task/t2",
        "Task/t4",
    ]
    assert ids(search(client, "Task?owner=o1&_lastUpdated=gt2024-01-01T09:00:00Z")) == ["Task/t4"]
    assert ids(
        search(
            client, "Task?_lastUpdated=ge2024-01-01T09:00:00Z&_lastUpdated=lt2024-01-01T10:00:00Z"
        )
    ) == ["Task/t2", "Task/t3"]
    assert (
        client.get("/Task?_lastUpdated=2024-01-01T09").status_code == 400
    )  # hour-only is not a FHIR date
    assert ids(search(client, "Task?_lastUpdated=2024-01-01T10:00")) == [
        "Task/t4"
    ]  # within that minute
    assert ids(search(client, "Task?_lastUpdated=eb2024-01-01T09:00:00Z")) == ["Task/t1"]
    assert ids(search(client, "Task?_lastUpdated=le2024-01-01T09:00:00Z")) == ["Task/t1", "Task/t2"]


def test_quantity_number_and_composite(client):
    for oid, value in (("bp1", 118), ("bp2", 142.5)):
        put(
            client,
            {
                "resourceType": "Observation",
                "id": oid,
                "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                "valueQuantity": {
                    "value": value,
                    "unit": "mmHg",
                    "system": "http://unitsofmeasure.org",
                    "code": "mm[Hg]",
                },
            },
        )
    put(
        client,
        {
            "resourceType": "Observation",
            "id": "hr",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "valueQuantity": {"value": 142, "unit": "/min"},
        },
    )
    assert ids(search(client, "Observation?value-quantity=gt140")) == [
        "Observation/bp2",
        "Observation/hr",
    ]
    assert ids(
        search(client, "Observation?value-quantity=gt140|http://unitsofmeasure.org|mm[Hg]")
    ) == ["Observation/bp2"]
    assert ids(search(client, "Observation?value-quantity=142||/min")) == ["Observation/hr"]
    assert ids(search(client, "Observation?value-quantity=118")) == ["Observation/bp1"]
    assert ids(search(client, "Observation?value-quantity=le118")) == ["Observation/bp1"]
    assert ids(search(client, "Observation?code-value-quantity=http://loinc.org|8480-6$gt140")) == [
        "Observation/bp2"
    ]
    assert (
        ids(search(client, "Observation?code-value-quantity=http://loinc.org|8867-4$lt100")) == []
    )


def test_uri_and_canonical_references(client):
    put(
        client,
        {
            "resourceType": "PlanDefinition",
            "id": "pd",
            "status": "active",
            "url": "http://example.org/fhir/PlanDefinition/discharge",
        },
    )
    put(
        client,
        {
            "resourceType": "CarePlan",
            "id": "cp",
            "status": "active",
            "intent": "plan",
            "subject": {"reference": "Patient/p1"},
            "instantiatesCanonical": ["http://example.org/fhir/PlanDefinition/discharge|1.0"],
        },
    )
    assert ids(
        search(client, "PlanDefinition?url=http://example.org/fhir/PlanDefinition/discharge")
    ) == ["PlanDefinition/pd"]
    assert ids(search(client, "PlanDefinition?url=http://example.org/fhir/PlanDefinition")) == []
    assert ids(search(client, "PlanDefinition?url:below=http://example.org/fhir/")) == [
        "PlanDefinition/pd"
    ]
    assert ids(
        search(
            client,
            "CarePlan?instantiates-canonical=http://example.org/fhir/PlanDefinition/discharge",
        )
    ) == ["CarePlan/cp"]


def test_reference_identifier_modifier(client):
    put(client, task("t1", owner="Organization/o1"))
    put(
        client,
        {
            "resourceType": "Task",
            "id": "t2",
            "status": "requested",
            "intent": "order",
            "owner": {
                "identifier": {"system": "http://hl7.org/fhir/sid/us-npi", "value": "1234567893"}
            },
        },
    )
    assert ids(
        search(client, "Task?owner:identifier=http://hl7.org/fhir/sid/us-npi|1234567893")
    ) == ["Task/t2"]


# -- chains and _has -----------------------------------------------------------------------------


def test_chained_parameters(referral_world):
    put(
        referral_world,
        {
            "resourceType": "CarePlan",
            "id": "cp1",
            "status": "active",
            "intent": "plan",
            "subject": {"reference": "Patient/p1"},
        },
    )
    assert ids(
        search(
            referral_world, "Task?focus:ServiceRequest.category=http://snomed.info/sct|410606002"
        )
    ) == ["Task/t1", "Task/t2"]
    assert ids(search(referral_world, "CarePlan?subject:Patient.identifier=urn:mrn|MRN-1")) == [
        "CarePlan/cp1"
    ]
    assert ids(search(referral_world, "CarePlan?subject:Patient.identifier=urn:mrn|MRN-2")) == []
    assert ids(
        search(referral_world, "Task?focus:ServiceRequest.subject:Patient.name=mullins")
    ) == ["Task/t3"]
    assert ids(search(referral_world, "Task?patient.birthdate=lt1990")) == ["Task/t1", "Task/t2"]


def test_reverse_chaining(referral_world):
    assert ids(search(referral_world, "ServiceRequest?_has:Task:focus:status=requested")) == [
        "ServiceRequest/sr1",
        "ServiceRequest/sr2",
    ]
    assert ids(search(referral_world, "ServiceRequest?_has:Task:focus:status=accepted")) == [
        "ServiceRequest/sr1"
    ]
    assert ids(search(referral_world, "Patient?_has:Task:patient:owner=Organization/o2")) == [
        "Patient/p2"
    ]
    # nested: patients with a service request that has an accepted task
    assert ids(
        search(
            referral_world, "Patient?_has:ServiceRequest:subject:_has:Task:focus:status=accepted"
        )
    ) == ["Patient/p1"]


# -- _include and _revinclude --------------------------------------------------------------------


def _care_plan_world(client):  # type: ignore[no-untyped-def]
    put(client, {"resourceType": "Patient", "id": "p1"})
    for gid in ("g1", "g2"):
        put(
            client,
            {
                "resourceType": "Goal",
                "id": gid,
                "lifecycleStatus": "active",
                "description": {"text": gid},
                "subject": {"reference": "Patient/p1"},
            },
        )
    put(
        client,
        {
            "resourceType": "CarePlan",
            "id": "cp1",
            "status": "active",
            "intent": "plan",
            "subject": {"reference": "Patient/p1"},
            "goal": [{"reference": "Goal/g1"}, {"reference": "Goal/g2"}],
        },
    )
    put(
        client,
        {
            "resourceType": "CarePlan",
            "id": "cp2",
            "status": "active",
            "intent": "plan",
            "subject": {"reference": "Patient/other"},
            "goal": [{"reference": "Goal/g2"}],
        },
    )
    put(
        client,
        {
            "resourceType": "Task",
            "id": "t1",
            "status": "requested",
            "intent": "order",
            "basedOn": [{"reference": "CarePlan/cp1"}],
            "for": {"reference": "Patient/p1"},
        },
    )


def test_include_and_revinclude(client):
    _care_plan_world(client)
    bundle = search(client, "CarePlan?patient=p1&_include=CarePlan:goal")
    assert ids(bundle) == ["CarePlan/cp1"]
    assert sorted(ids(bundle, "include")) == ["Goal/g1", "Goal/g2"]
    assert bundle["total"] == 1  # includes are not counted
    typed = search(client, "CarePlan?_id=cp1&_include=CarePlan:subject:Patient")
    assert ids(typed, "include") == ["Patient/p1"]
    everything = search(client, "CarePlan?_id=cp1&_include=*")
    assert sorted(ids(everything, "include")) == ["Goal/g1", "Goal/g2", "Patient/p1"]
    rev = search(client, "CarePlan?_id=cp1&_revinclude=Task:based-on")
    assert ids(rev, "include") == ["Task/t1"]
    assert ids(search(client, "CarePlan?_id=cp2&_revinclude=Task:based-on"), "include") == []


def test_include_iterate_follows_included_resources(client):
    _care_plan_world(client)
    flat = search(client, "Task?_id=t1&_include=Task:based-on&_include=CarePlan:goal")
    assert ids(flat, "include") == ["CarePlan/cp1"]  # CarePlan:goal applies to matches only
    deep = search(client, "Task?_id=t1&_include=Task:based-on&_include:iterate=CarePlan:goal")
    assert sorted(ids(deep, "include")) == ["CarePlan/cp1", "Goal/g1", "Goal/g2"]


def test_deleted_resources_never_match_nor_are_included(client):
    _care_plan_world(client)
    assert client.delete("/Goal/g2").status_code in (200, 204)
    assert client.delete("/CarePlan/cp2").status_code in (200, 204)
    assert ids(search(client, "Goal")) == ["Goal/g1"]
    assert ids(search(client, "CarePlan?goal=Goal/g2")) == ["CarePlan/cp1"]
    assert ids(search(client, "CarePlan?_id=cp1&_include=CarePlan:goal"), "include") == ["Goal/g1"]


# -- sorting, paging, totals ---------------------------------------------------------------------


def test_sort_on_several_keys(referral_world):
    assert ids(search(referral_world, "Task?_sort=status,-authored-on")) == [
        "Task/t2",
        "Task/t4",
        "Task/t3",
        "Task/t1",
    ]
    # t4 has no authoredOn: missing values go last in both directions
    assert ids(search(referral_world, "Task?_sort=authored-on")) == [
        "Task/t1",
        "Task/t2",
        "Task/t3",
        "Task/t4",
    ]
    assert ids(search(referral_world, "Task?_sort=-authored-on")) == [
        "Task/t3",
        "Task/t2",
        "Task/t1",
        "Task/t4",
    ]
    assert ids(search(referral_world, "Task?_sort=-_id")) == [
        "Task/t4",
        "Task/t3",
        "Task/t2",
        "Task/t1",
    ]
    assert ids(search(referral_world, "Patient?_sort=family")) == ["Patient/p1", "Patient/p2"]


def _walk(client, query: str) -> tuple[list[str], list[str]]:  # type: ignore[no-untyped-def]
    """Every match following next links, then again following previous links back."""
    forward: list[str] = []
    page: str | None = query
    bundle: dict[str, Any] = {}
    while page:
        bundle = search(client, page)
        forward += ids(bundle)
        page = link(bundle, "next")
    backward = ids(bundle)
    page = link(bundle, "previous")
    while page:
        bundle = search(client, page)
        backward = ids(bundle) + backward
        page = link(bundle, "previous")
    return forward, backward


@pytest.mark.parametrize(
    "sort",
    [
        "",
        "&_sort=-authored-on",
        "&_sort=authored-on",
        "&_sort=status,-authored-on,_id",
        "&_sort=-_lastUpdated",
    ],
)
def test_paging_visits_every_match_once_both_ways(client, ticking_clock, sort):
    for i in range(8):
        dated = {"authoredOn": f"2024-03-0{1 + i % 3}"} if i % 4 else {}  # some have no date
        put(client, task(f"t{i}", "requested" if i % 3 else "accepted", **dated))
    expected = ids(search(client, f"Task?_count=100{sort}"))
    assert len(expected) == 8
    assert _walk(client, f"Task?_count=3{sort}") == (expected, expected)


def test_pages_stay_stable_while_resources_come_and_go(client):
    for i in range(9):
        put(client, task(f"t{i}"))
    first = search(client, "Task?_count=3&_sort=_id")
    assert ids(first) == ["Task/t0", "Task/t1", "Task/t2"]
    assert link(first, "previous") is None
    put(client, task("t00"))  # sorts into the page already shown
    client.delete("/Task/t1")  # deleted from the page already shown
    second = search(client, link(first, "next"))
    assert ids(second) == ["Task/t3", "Task/t4", "Task/t5"]
    client.delete("/Task/t6")  # deleted from the page ahead
    third = search(client, link(second, "next"))
    assert ids(third) == ["Task/t7", "Task/t8"]
    assert link(third, "next") is None
    back = search(client, link(third, "previous"))
    assert ids(back) == ["Task/t3", "Task/t4", "Task/t5"]
    back_again = search(client, link(back, "previous"))
    assert ids(back_again) == ["Task/t0", "Task/t00", "Task/t2"]
    assert link(back_again, "previous") is None
    assert link(back_again, "first") is not None


def test_links_keep_the_query_and_base(referral_world):
    bundle = search(referral_world, "Task?status=requested&_count=1")
    assert bundle["link"][0] == {
        "relation": "self",
        "url": "http://testserver/Task?status=requested&_count=1",
    }
    assert urlsplit(link(bundle, "next") or "").query.startswith(
        "status=requested&_count=1&_cursor="
    )


def test_count_total_and_summary(referral_world):
    page = search(referral_world, "Task?_count=2")
    assert len(ids(page)) == 2 and "total" not in page
    assert search(referral_world, "Task?_count=2&_total=accurate")["total"] == 4
    assert "total" not in search(referral_world, "Task?_total=none")
    assert search(referral_world, "Task?_count=10")["total"] == 4
    counted = search(referral_world, "Task?status=requested&_summary=count")
    assert counted["total"] == 2 and "entry" not in counted
    zero = search(referral_world, "Task?_count=0")
    assert ids(zero) == [] and zero["total"] == 4


def test_elements_and_summary_subset_and_tag(referral_world):
    bundle = search(referral_world, "Task?_id=t1&_elements=status,owner")
    resource = bundle["entry"][0]["resource"]
    assert set(resource) == {"resourceType", "id", "meta", "status", "owner"}
    assert {
        "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
        "code": "SUBSETTED",
    }.items() <= resource["meta"]["tag"][-1].items()
    summary = search(referral_world, "Task?_id=t1&_summary=true")["entry"][0]["resource"]
    assert "status" in summary and "authoredOn" not in summary
    assert summary["meta"]["tag"][-1]["code"] == "SUBSETTED"
    full = search(referral_world, "Task?_id=t1")["entry"][0]["resource"]
    assert "authoredOn" in full and "tag" not in full["meta"]


# -- handling, errors, POST, system search -------------------------------------------------------


def test_unknown_parameter_strict_and_lenient(referral_world):
    lenient = search(referral_world, "Task?colour=red&status=accepted")
    assert ids(lenient) == ["Task/t2"]
    (outcome,) = [e for e in lenient["entry"] if e["search"]["mode"] == "outcome"]
    assert outcome["resource"]["issue"][0]["severity"] == "warning"
    assert "colour" in outcome["resource"]["issue"][0]["diagnostics"]
    strict = referral_world.get("/Task?colour=red", headers={"Prefer": "handling=strict"})
    assert strict.status_code == 400
    assert strict.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize(
    "query",
    [
        "Task?authored-on=2024-99",
        "Task?authored-on=zz2024",
        "Task?_count=lots",
        "Task?_sort=nope",
        "Task?owner=Nope/1",
        "Task?_include=Task:nope",
        "Task?status:exact=x",
        "Task?_cursor=%00%01",
        "Task?_has:Task",
        "Task?focus.nothing=1",
        "Observation?value-quantity=abc",
        "Task?_summary=all",
        "Task?_total=maybe",
        "Task?status:missing=perhaps",
        f"Task?_id={'x' * 5000}",
        "Patient?birthdate=0001-01-01T00:00:00%2B14:00",
        "Task?authored-on=ap9999-12-31",
    ],
)
def test_bad_input_is_a_400_never_a_500(client, query):
    response = client.get(f"/{query}")
    assert response.status_code in (200, 400), response.text
    assert response.json()["resourceType"] in ("OperationOutcome", "Bundle")


def test_search_by_post_form(referral_world):
    response = referral_world.post(
        "/Task/_search",
        content="owner=Organization/o1&status=accepted",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200
    assert ids(response.json()) == ["Task/t2"]


def test_system_search_across_types(referral_world):
    bundle = search(referral_world, "?_type=Patient,Organization&_id=p1,o2")
    assert ids(bundle) == ["Organization/o2", "Patient/p1"]
    assert search(referral_world, "?_type=Patient,Organization&_id=p1,o2")["link"][0][
        "url"
    ].startswith("http://testserver?_type=")


def test_system_search_keeps_types_that_define_the_parameter(referral_world):
    bundle = search(referral_world, "?_type=Patient,Organization&name=food")
    assert ids(bundle) == ["Organization/o1"]
    bundle = search(referral_world, "?_type=Patient,Organization&family=mullins")
    assert ids(bundle) == ["Patient/p2"]
    assert not [e for e in bundle.get("entry", []) if e["search"]["mode"] == "outcome"]
