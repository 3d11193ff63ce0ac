"""The store-level search API: match_ids for conditional interactions, index upkeep, reindex."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from sqlalchemy import func, select

from fhir_gateway.context import SYSTEM
from fhir_gateway.errors import InvalidSearch
from fhir_gateway.store import repository
from fhir_gateway.store.index import reindex
from fhir_gateway.store.search import match_ids, search_bundle
from fhir_gateway.store.tables import idx_date, idx_token


def _task(tid: str, status: str = "requested", **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Task", "id": tid, "status": status, "intent": "order", **extra}


def _create(session_factory, *resources: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    with session_factory() as session:
        for resource in resources:
            repository.create_resource(session, resource, res_id=resource["id"])


def _matches(session_factory, res_type: str, params: list[tuple[str, str]], **kw: Any) -> list[str]:  # type: ignore[no-untyped-def]
    with session_factory() as session:
        return match_ids(session, res_type, params, caller=SYSTEM, **kw)


def test_match_ids_for_conditional_interactions(session_factory):
    _create(
        session_factory,
        {"resourceType": "Patient", "id": "a", "identifier": [{"system": "urn:mrn", "value": "1"}]},
        {"resourceType": "Patient", "id": "b", "identifier": [{"system": "urn:mrn", "value": "1"}]},
        {"resourceType": "Patient", "id": "c", "identifier": [{"system": "urn:mrn", "value": "2"}]},
    )
    assert _matches(session_factory, "Patient", [("identifier", "urn:mrn|1")]) == ["a", "b"]
    assert _matches(session_factory, "Patient", [("identifier", "urn:mrn|1")], limit=1) == ["a"]
    assert _matches(session_factory, "Patient", [("identifier", "urn:mrn|3")]) == []
    # paging and format parameters do not change what matches
    assert _matches(session_factory, "Patient", [("identifier", "urn:mrn|2"), ("_count", "0")]) == [
        "c"
    ]


def test_match_ids_refuses_unknown_parameters(session_factory):
    # Ignoring an unknown criterion would make a conditional update or delete hit everything.
    with pytest.raises(InvalidSearch):
        _matches(session_factory, "Patient", [("identifer", "urn:mrn|1")])


def test_update_replaces_index_rows_and_delete_removes_them(session_factory):
    _create(session_factory, _task("t1", authoredOn="2024-01-01"))
    with session_factory() as session:
        repository.update_resource(session, _task("t1", "accepted"), "t1")
    assert _matches(session_factory, "Task", [("status", "requested")]) == []
    assert _matches(session_factory, "Task", [("status", "accepted")]) == ["t1"]
    assert _matches(session_factory, "Task", [("authored-on:missing", "true")]) == ["t1"]
    with session_factory() as session:
        repository.delete_resource(session, "Task", "t1")
        assert (
            session.execute(
                select(func.count()).select_from(idx_token).where(idx_token.c.res_id == "t1")
            ).scalar()
            == 0
        )
    assert _matches(session_factory, "Task", [("status", "accepted")]) == []


def test_a_new_search_parameter_works_after_reindex(session_factory, settings):
    _create(
        session_factory,
        _task("soon", restriction={"period": {"end": "2024-04-01"}}),
        _task("later", restriction={"period": {"end": "2024-06-30"}}),
        _task("none"),
    )
    definition = {
        "resourceType": "SearchParameter",
        "url": "http://example.org/SearchParameter/task-deadline",
        "name": "deadline",
        "status": "active",
        "code": "deadline",
        "base": ["Task"],
        "type": "date",
        "expression": "Task.restriction.period.end",
    }
    with session_factory() as session:  # stored as the API stores it; counts from the commit on
        repository.create_resource(session, definition, res_id="task-deadline", method="PUT")
    try:
        with session_factory() as session:
            rows = session.execute(
                select(func.count()).select_from(idx_date).where(idx_date.c.param == "deadline")
            )
            assert rows.scalar() == 0  # indexed before the parameter existed
        assert reindex(session_factory, resource_type="Task", batch=2) == 3
        assert _matches(session_factory, "Task", [("deadline", "lt2024-05")]) == ["soon"]
        with session_factory() as session:
            body = search_bundle(
                session,
                "Task",
                [("_sort", "-deadline")],
                caller=SYSTEM,
                base_url="http://h",
                settings=settings,
            )
        order = [e["resource"]["id"] for e in orjson.loads(body)["entry"]]
        assert order == ["later", "soon", "none"]
    finally:
        with session_factory() as session:
            repository.delete_resource(session, "SearchParameter", "task-deadline")
        reindex(session_factory, resource_type="Task")
    with session_factory() as session:
        rows = session.execute(
            select(func.count()).select_from(idx_date).where(idx_date.c.param == "deadline")
        )
        assert rows.scalar() == 0


def test_intersections_of_index_criteria_match_what_each_criterion_matches(session_factory):
    # store.semi_join writes the nested sets of an intersection per dialect (a correlated EXISTS
    # on SQLite): whatever the order and the sizes of the sets, the matches are the resources in
    # every set, each once, deleted ones never.
    statuses, owners = ("requested", "accepted", "completed"), ("o1", "o2", "o3")
    tasks = []
    for i in range(36):
        extra: dict[str, Any] = {
            "identifier": [{"system": "urn:t", "value": v} for v in {f"k{i % 4}", f"k{i % 5}"}]
        }
        if i % 7:
            extra["owner"] = {"reference": f"Organization/{owners[i % 3]}"}
        tasks.append(_task(f"t{i:02}", statuses[i % 2 if i % 5 else 2], **extra))
    _create(session_factory, *tasks)
    with session_factory() as session:
        repository.delete_resource(session, "Task", "t06")
    live = [t for t in tasks if t["id"] != "t06"]

    def owner_is(t: dict[str, Any], org: str) -> bool:
        return t.get("owner", {}).get("reference") == f"Organization/{org}"

    def has_key(t: dict[str, Any], keys: str) -> bool:
        return any(i["value"] in keys.split(",") for i in t["identifier"])

    for status in ("requested", "completed", "requested,completed"):
        for org in ("o1", "o3"):
            for keys in ("k1", "k2,k4"):
                expected = sorted(
                    t["id"]
                    for t in live
                    if t["status"] in status.split(",") and owner_is(t, org) and has_key(t, keys)
                )
                criteria = [
                    ("status", status),
                    ("owner", f"Organization/{org}"),
                    (
                        "identifier",
                        f"urn:t|{keys.split(',')[0]}"
                        if "," not in keys
                        else ",".join(f"urn:t|{k}" for k in keys.split(",")),
                    ),
                ]
                assert _matches(session_factory, "Task", criteria) == expected
                assert _matches(session_factory, "Task", criteria[::-1]) == expected
                two = [
                    t["id"] for t in live if t["status"] in status.split(",") and owner_is(t, org)
                ]
                assert _matches(session_factory, "Task", criteria[1::-1]) == sorted(two)
