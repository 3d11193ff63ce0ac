"""Searches of a simple shape (one type; token and reference equality) run a statement built once
per shape and caller with their values bound (store.search_shapes): they must find exactly what
the general path finds, whatever other values of the same shape ran before, for every caller's
row policy, in match_ids (the engines, conditional interactions) and in the REST Bundle."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from fhir_gateway.context import SYSTEM, Caller
from fhir_gateway.search import plan as p
from fhir_gateway.security import partner_caller
from fhir_gateway.security._roles import TokenCaller
from fhir_gateway.store import repository, search_shapes
from fhir_gateway.store.quick_search import quick_search
from fhir_gateway.store.search import match_ids, search_bundle

PART2 = {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "42CFRPart2"}


def _task(tid: str, status: str, owner: str | None, focus: str, **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "resourceType": "Task",
        "id": tid,
        "status": status,
        "intent": "order",
        "focus": {"reference": focus},
        "for": {"reference": "Patient/p1"},
        **extra,
    }
    if owner:
        doc["owner"] = {"reference": owner}
    return doc


def _plan(pid: str, subject: str, status: str, encounter: str) -> dict[str, Any]:
    return {
        "resourceType": "CarePlan",
        "id": pid,
        "status": status,
        "intent": "plan",
        "subject": {"reference": subject},
        "encounter": {"reference": encounter},
    }


RESOURCES = [
    {"resourceType": "Organization", "id": "org-a", "active": True},
    {"resourceType": "Organization", "id": "org-b", "active": True},
    {"resourceType": "Patient", "id": "p1"},
    {"resourceType": "Patient", "id": "p2"},
    {"resourceType": "ServiceRequest", "id": "sr1", "status": "active", "intent": "order",
     "subject": {"reference": "Patient/p1"}},
    {"resourceType": "ServiceRequest", "id": "sr2", "status": "draft", "intent": "order",
     "subject": {"reference": "Patient/p2"}},
    _task("t1", "requested", "Organization/org-a", "ServiceRequest/sr1",
          identifier=[{"system": "urn:ids", "value": "1"}]),
    _task("t2", "accepted", "Organization/org-a", "ServiceRequest/sr1", identifier=[{"value": "1"}]),
    _task("t3", "requested", "Organization/org-b", "ServiceRequest/sr2"),
    _task("t4", "draft", "Organization/org-a", "ServiceRequest/sr1"),
    _task("t5", "requested", None, "ServiceRequest/sr2"),
    _task("t6", "requested", "Organization/org-a", "ServiceRequest/sr2", meta={"security": [PART2]}),
    _task("t7", "requested", "Organization/org-a", "ServiceRequest/sr2"),
    _plan("cp1", "Patient/p1", "active", "Encounter/e1"),
    _plan("cp2", "Patient/p1", "draft", "Encounter/e2"),
    _plan("cp3", "Patient/p2", "active", "Encounter/e1"),
    _plan("cp4", "Patient/p1", "completed", "Encounter/e1"),
]  # fmt: skip

# Each shape several times with other values: a statement kept from one must not answer another.
SEARCHES: list[tuple[str, list[tuple[str, str]]]] = [
    ("Task", [("owner", "Organization/org-a"), ("status", "requested")]),
    ("Task", [("owner", "Organization/org-b"), ("status", "requested")]),
    ("Task", [("owner", "Organization/org-a"), ("status", "accepted")]),
    ("Task", [("owner", "Organization/org-a"), ("status", "requested,accepted")]),
    ("Task", [("owner", "org-a"), ("status", "requested")]),  # any type
    ("Task", [("owner", "Organization/org-a"), ("status", "http://hl7.org/fhir/task-status|requested")]),
    ("Task", [("owner", "Organization/org-a"), ("status", "urn:other|requested")]),
    ("Task", [("owner", "Organization/org-a"), ("status", "|requested")]),
    ("Task", [("identifier", "urn:ids|1")]),
    ("Task", [("identifier", "1")]),
    ("Task", [("identifier", "|1")]),  # no system: a shape of its own
    ("Task", [("focus", "ServiceRequest/sr1")]),
    ("Task", [("focus", "ServiceRequest/sr2")]),
    ("Task", [("focus", "ServiceRequest/none")]),
    ("Task", [("status", "requested")]),
    ("Task", []),
    ("CarePlan", [("subject", "Patient/p1"), ("status", "draft,active,on-hold")]),
    ("CarePlan", [("subject", "Patient/p2"), ("status", "draft,active,on-hold")]),
    ("CarePlan", [("subject", "Patient/p1"), ("status", "completed")]),
    ("CarePlan", [("encounter", "Encounter/e1")]),
    ("CarePlan", [("encounter", "Encounter/e2")]),
    ("ServiceRequest", [("subject", "Patient/p1")]),
    ("ServiceRequest", [("subject", "Patient/p2"), ("status", "draft")]),
    ("ServiceRequest", [("status", "active")]),
]  # fmt: skip

CALLERS: list[Caller] = [
    SYSTEM,
    partner_caller("Organization/org-a"),
    partner_caller("Organization/org-b"),
    TokenCaller("cm", "case-manager", "Organization/cc", frozenset({"system/*.cruds"})),
]


@pytest.fixture
def stored(database):  # type: ignore[no-untyped-def]
    with database.session() as session:
        for doc in RESOURCES:
            repository.create_resource(session, doc, res_id=doc["id"])
    return database


def _general_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(search_shapes, "template", lambda plan: None)


def _ids_by_search(database, limit: int | None = None) -> dict[Any, list[str]]:  # type: ignore[no-untyped-def]
    found = {}
    with database.session(readonly=True) as session:
        for _ in range(2):  # the second round runs statements kept by the first
            for i, caller in enumerate(CALLERS):
                for res_type, params in SEARCHES:
                    key = (i, res_type, tuple(params))
                    found[key] = match_ids(session, res_type, params, caller=caller, limit=limit)
    return found


def test_every_search_of_the_list_is_of_a_simple_shape():
    for res_type, params in SEARCHES:
        assert search_shapes.template(p.parse(res_type, params, strict=True)) is not None, params


@pytest.mark.parametrize("limit", [None, 1])
def test_match_ids_finds_what_the_general_path_finds(stored, monkeypatch, limit):
    shaped = _ids_by_search(stored, limit)
    _general_only(monkeypatch)
    assert shaped == _ids_by_search(stored, limit)
    # not a comparison of empty answers: values and callers decide what each search finds
    if limit is None:  # CALLERS[0] is the gateway itself, CALLERS[1] the partner org-a

        def system(key: tuple[Any, ...]) -> list[str]:
            return shaped[(0, *key)]

        def partner(key: tuple[Any, ...]) -> list[str]:
            return shaped[(1, *key)]

        owned = ("Task", (("owner", "Organization/org-a"), ("status", "requested")))
        assert system(owned) == ["t1", "t6", "t7"]
        assert partner(owned) == ["t1", "t7"]  # not the Part 2 one without consent
        assert system(("Task", (("owner", "Organization/org-b"), ("status", "requested")))) == [
            "t3"
        ]
        assert system(("Task", (("identifier", "1"),))) == ["t1", "t2"]
        assert system(("Task", (("identifier", "|1"),))) == ["t2"]
        assert system(("CarePlan", (("encounter", "Encounter/e1"),))) == ["cp1", "cp3", "cp4"]
        assert partner(("CarePlan", (("encounter", "Encounter/e1"),))) == []


def _bundle(database, settings, caller: Caller, params: list[tuple[str, str]]) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    with database.session(readonly=True) as session:
        raw = search_bundle(
            session, "Task", params, caller=caller, base_url="http://gw", settings=settings
        )
    return orjson.loads(raw)  # type: ignore[no-any-return]


def _pages(database, settings, caller: Caller, params: list[tuple[str, str]]) -> list[Any]:  # type: ignore[no-untyped-def]
    """Every page of a search, following next links, and back once from the last: entries,
    totals and link relations (a Bundle's id and timestamp differ between runs)."""
    pages: list[Any] = []
    bundle = _bundle(database, settings, caller, params)
    while True:
        links = {link["relation"]: link["url"] for link in bundle.get("link", [])}
        pages.append(([e["fullUrl"] for e in bundle.get("entry", [])], bundle.get("total"), links))
        if "next" not in links:
            break
        cursor = links["next"].split("_cursor=")[1].split("&")[0]
        bundle = _bundle(database, settings, caller, [*params, ("_cursor", cursor)])
    if "previous" in links:
        cursor = links["previous"].split("_cursor=")[1].split("&")[0]
        back = _bundle(database, settings, caller, [*params, ("_cursor", cursor)])
        pages.append([e["fullUrl"] for e in back.get("entry", [])])
    return pages


def test_the_rest_bundle_and_its_pages_are_what_the_general_path_serves(
    stored, settings, monkeypatch
):
    searches = [
        [("owner", "Organization/org-a"), ("status", "requested"), ("_count", "1")],
        [("owner", "Organization/org-a"), ("status", "requested")],  # the page size is shape
        [("owner", "Organization/org-a"), ("status", "requested,accepted,draft"), ("_count", "2")],
        [("owner", "Organization/org-b"), ("status", "requested")],
        [("focus", "ServiceRequest/sr2"), ("_total", "accurate"), ("_count", "2")],
        [("status", "requested"), ("_count", "0")],
    ]
    shaped = [_pages(stored, settings, c, s) for c in CALLERS for s in searches]
    _general_only(monkeypatch)
    assert shaped == [_pages(stored, settings, c, s) for c in CALLERS for s in searches]
    first = shaped[0]  # the system's org-a inbox, one Task a page: three pages, and back
    assert [entries for entries, _, _ in first[:3]] == [
        ["http://gw/Task/t1"],
        ["http://gw/Task/t6"],
        ["http://gw/Task/t7"],
    ]
    assert first[3] == ["http://gw/Task/t6"]


def _quick(database, settings, caller: Caller, params: list[tuple[str, str]], within: float = 5.0):  # type: ignore[no-untyped-def]
    raw = quick_search(
        database,
        "Task",
        params,
        caller=caller,
        base_url="http://gw",
        settings=settings,
        within=within,
    )
    return None if raw is None else orjson.loads(raw)


def _quick_pages(database, settings, caller: Caller, params: list[tuple[str, str]]) -> list[Any]:  # type: ignore[no-untyped-def]
    """``_pages`` through quick_search, every page of it answered there (not None)."""
    pages: list[Any] = []
    bundle = _quick(database, settings, caller, params)
    while True:
        assert bundle is not None, params
        links = {link["relation"]: link["url"] for link in bundle.get("link", [])}
        pages.append(([e["fullUrl"] for e in bundle.get("entry", [])], bundle.get("total"), links))
        if "next" not in links:
            break
        cursor = links["next"].split("_cursor=")[1].split("&")[0]
        bundle = _quick(database, settings, caller, [*params, ("_cursor", cursor)])
    if "previous" in links:
        cursor = links["previous"].split("_cursor=")[1].split("&")[0]
        back = _quick(database, settings, caller, [*params, ("_cursor", cursor)])
        assert back is not None
        pages.append([e["fullUrl"] for e in back.get("entry", [])])
    return pages


def test_a_quick_search_serves_what_the_transaction_serves(stored, settings, database):
    """On SQLite a search of a simple shape, one statement, for a caller served stored copies is
    answered on the driver's connection (store.quick_search): the same pages."""
    if database.is_postgres:
        pytest.skip("the quick search runs on SQLite only")
    searches = [
        [("owner", "Organization/org-a"), ("status", "requested"), ("_count", "1")],
        [("owner", "Organization/org-a"), ("status", "requested,accepted,draft"), ("_count", "2")],
        [("owner", "Organization/org-b"), ("status", "requested")],
        [("focus", "ServiceRequest/sr2")],
    ]
    unrestricted = [CALLERS[0], CALLERS[3]]  # the gateway itself, a case manager
    for _ in range(2):  # the second round runs the statements prepared by the first
        quick = [_quick_pages(stored, settings, c, s) for c in unrestricted for s in searches]
        assert quick == [_pages(stored, settings, c, s) for c in unrestricted for s in searches]
    assert [entries for entries, _, _ in quick[0][:3]] == [
        ["http://gw/Task/t1"],
        ["http://gw/Task/t6"],
        ["http://gw/Task/t7"],
    ]


def test_any_other_search_is_left_to_the_transaction(stored, settings, database):
    owned = [("owner", "Organization/org-a"), ("status", "requested")]
    others = [
        (CALLERS[1], owned),  # a partner: its copies are shaped for it, in a transaction
        (SYSTEM, [*owned, ("_total", "accurate")]),  # a count: a second statement
        (SYSTEM, [*owned, ("_include", "Task:focus")]),
        (SYSTEM, [*owned, ("_sort", "-_lastUpdated")]),  # not of a simple shape
        (SYSTEM, [*owned, ("_lastUpdated", "gt2020-01-01")]),  # a date: not simple either
    ]
    for caller, params in others:
        assert _quick(stored, settings, caller, params) is None, params
    # past its budget, nothing is answered: the search is run again where it may take its time
    assert _quick(stored, settings, SYSTEM, owned, within=0.0) is None
