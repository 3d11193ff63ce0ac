"""Searches have bounds (issue #15, item 6; DESIGN decision 15): string sorts read an index,
sort keys, parameters, repeats and OR values are limited, and a search past its time budget, or
whose client left, stops in the database and answers 400 too-costly naming the limit."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, text

from fhir_gateway.app import create_app
from fhir_gateway.context import SYSTEM
from fhir_gateway.search import plan as p
from fhir_gateway.services import resources as svc
from fhir_gateway.settings import Settings
from fhir_gateway.store import search as store_search
from fhir_gateway.store import search_order
from fhir_gateway.store.db import Database
from fhir_gateway.store.tables import idx_string, resources

FHIR = {"Content-Type": "application/fhir+json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
_LONG = "a" * 250  # a stored name that a long :contains pattern scans slowly (LIKE '%…%')


def _settings(database_url: str, **limits: Any) -> Settings:
    return Settings(database_url=database_url, auth_enabled=False, audit_enabled=False, **limits)


@pytest.fixture
def limited(database_url: str, database: Database) -> Iterator[TestClient]:
    settings = _settings(
        database_url,
        search_max_sort_keys=2,
        search_max_parameters=6,
        search_max_repeats=3,
        search_max_values=4,
    )
    with TestClient(create_app(settings, database=database)) as client:
        yield client


def _too_costly(response: httpx.Response, limit: str) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    issue = outcome["issue"][0]
    assert issue["code"] == "too-costly"
    assert limit in issue["diagnostics"]
    return issue


def _patients(database: Database, families: list[str]) -> None:
    def create(session) -> None:  # type: ignore[no-untyped-def]
        for family in families:
            svc.create(
                session,
                "Patient",
                {"resourceType": "Patient", "name": [{"family": family}]},
                SYSTEM,
            )

    database.write(create)


def _long_names(database: Database, count: int) -> None:
    """``count`` index rows of a 250-character name (the index alone: what the search scans)."""
    rows = [
        {
            "res_type": "Patient",
            "res_id": f"long-{i}",
            "param": "name",
            "value": _LONG,
            "exact": _LONG,
        }
        for i in range(count)
    ]
    # The resources too: with an empty resources table the planner may start there and end at once.
    now = datetime(2026, 1, 1)
    current = [
        {
            "res_type": "Patient",
            "res_id": f"long-{i}",
            "version_id": 1,
            "last_updated": now,
            "deleted": False,
            "content": {"resourceType": "Patient", "id": f"long-{i}"},
        }
        for i in range(count)
    ]
    with database.engine.begin() as conn:
        conn.execute(insert(idx_string), rows)
        conn.execute(insert(resources), current)


# -- string sort: index-backed -------------------------------------------------------------------


def _explain(database: Database, sort: str) -> str:
    from fhir_gateway.store.budget import Budget

    plan = p.parse("Patient", [("_sort", sort)])
    with database.session(readonly=True) as session:
        search = store_search.Search(session, plan, SYSTEM, "http://x", "Patient", Budget(60))
        query = search.page_query(search_order.sort_exprs(plan, search.r), None, True)
        sql = str(query.compile(session.get_bind(), compile_kwargs={"literal_binds": True}))
        if database.is_postgres:
            session.execute(text("ANALYZE idx_string"))
            session.execute(text("SET LOCAL enable_seqscan = off"))  # as with a large table
            return "\n".join(session.execute(text("EXPLAIN " + sql)).scalars())
        return "\n".join(str(row[-1]) for row in session.execute(text("EXPLAIN QUERY PLAN " + sql)))


def test_a_string_sort_looks_up_each_matchs_key_in_an_index(client, database):
    _patients(database, ["Zorn", "adams", "Müller", "Baker"])
    plan = _explain(database, "name")
    # Each match's sort key is one seek in (res_type, res_id, param, value), not a scan of
    # every name of the type per match (quadratic: 75 s at 12k patients).
    assert "ix_idx_string_sort" in plan
    assert "ix_idx_string_value" not in plan
    found = client.get("/Patient?_sort=name").json()
    assert [e["resource"]["name"][0]["family"] for e in found["entry"]] == [
        "adams",
        "Baker",
        "Müller",
        "Zorn",
    ]
    found = client.get("/Patient?_sort=-family&_count=2").json()
    assert [e["resource"]["name"][0]["family"] for e in found["entry"]] == ["Zorn", "Müller"]


# -- limits on the query -------------------------------------------------------------------------


def test_too_many_sort_keys_answer_400_naming_the_limit(limited):
    issue = _too_costly(limited.get("/Patient?_sort=name,name,name"), "search_max_sort_keys")
    assert issue["expression"] == ["_sort"]
    assert limited.get("/Patient?_sort=name,-birthdate").status_code == 200


def test_a_parameter_repeated_too_often_answers_400_naming_the_limit(limited):
    query = "&".join(["name=a"] * 4)
    issue = _too_costly(limited.get(f"/Patient?{query}"), "search_max_repeats")
    assert issue["expression"] == ["name"]
    # the same through POST _search, whose form body may be far longer than a URL
    _too_costly(limited.post("/Patient/_search", content=query, headers=FORM), "search_max_repeats")
    assert limited.get("/Patient?name=a&name=b&name=c").status_code == 200


def test_too_many_parameters_answer_400_naming_the_limit(limited):
    query = "name=a&family=b&given=c&gender=male&birthdate=2000&address=x&_count=1"
    _too_costly(limited.get(f"/Patient?{query}"), "search_max_parameters")


def test_too_many_or_values_answer_400_naming_the_limit(limited):
    _too_costly(limited.get("/Patient?_id=a,b,c,d,e"), "search_max_values")
    _too_costly(limited.get("/Patient?name:contains=a,b,c,d,e"), "search_max_values")
    assert limited.get("/Patient?_id=a,b,c,d").status_code == 200


def test_a_batch_search_entry_is_bounded_too(limited):
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [{"request": {"method": "GET", "url": "Patient?_sort=name,family,given"}}],
    }
    response = limited.post("/", json=bundle, headers=FHIR)
    assert response.status_code == 200
    entry = response.json()["entry"][0]["response"]
    assert entry["status"] == "400"
    assert entry["outcome"]["issue"][0]["code"] == "too-costly"


# -- the time budget: the database stops the statement --------------------------------------------


def _slow_query() -> str:
    # 100 long :contains patterns: LIKE '%aaa…b%' tries every offset of every stored 250-character
    # name for every value, in the database: about 5 ms per row, seconds for a few thousand.
    return "name:contains=" + ",".join("a" * 120 + f"b{i}" for i in range(100))


def _leftover(database: Database) -> list[str]:
    with database.engine.connect() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT query FROM pg_stat_activity WHERE datname = current_database()"
                    " AND state = 'active' AND query LIKE '%idx_string%' AND pid <> pg_backend_pid()"
                )
            ).scalars()
        )


def test_a_search_past_its_time_budget_stops_and_answers_400(database_url, database):
    _long_names(database, 2000)  # 10 s of work or more
    settings = _settings(database_url, search_timeout=0.2)
    with TestClient(create_app(settings, database=database)) as client:
        response = client.post("/Patient/_search", content=_slow_query(), headers=FORM)
    _too_costly(response, "search_timeout")
    if database.is_postgres:
        assert _leftover(database) == []  # statement_timeout ended it in the server


def test_cancelling_the_budget_stops_a_running_search(database_url, database):
    """What a client's leaving does (api.cancel): the statement stops in the database."""
    from fhir_gateway.errors import TooCostly
    from fhir_gateway.store.budget import Budget

    _long_names(database, 2000)
    settings = _settings(database_url, search_timeout=600)
    budget = Budget(settings.search_timeout)
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            with database.session(readonly=True) as session:
                store_search.search_bundle(
                    session,
                    "Patient",
                    [tuple(_slow_query().split("=", 1))],  # type: ignore[list-item]
                    caller=SYSTEM,
                    base_url="http://x",
                    settings=settings,
                    budget=budget,
                )
        except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
            outcome.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    if database.is_postgres:
        _wait_for(lambda: _leftover(database) != [])  # the statement runs on the server
    budget.cancel()
    worker.join(timeout=60)
    assert not worker.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], TooCostly)
    assert "client closed the connection" in outcome[0].message
    if database.is_postgres:
        assert _leftover(database) == []


def _wait_for(condition) -> None:  # type: ignore[no-untyped-def]
    import time

    for _ in range(300):  # a bounded wait (15 s), not a timed assertion
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("condition never held")


def test_a_client_that_leaves_stops_its_search_on_postgresql(database_url, database, serve_app):
    if not database.is_postgres:
        pytest.skip("pg_stat_activity shows the running statement on PostgreSQL only")
    _long_names(database, 8000)  # 40 s of work or more, far beyond the wait below
    settings = _settings(database_url, search_timeout=600)
    base = serve_app(create_app(settings, database=database))
    host, port = base.removeprefix("http://").split(":")
    body = _slow_query().encode()
    request = (
        f"POST /Patient/_search HTTP/1.1\r\nHost: {host}\r\n"
        f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(request + body)
        _wait_for(lambda: _leftover(database) != [])  # the search runs on the server
    # The client is gone: the server cancels the statement rather than run it to the end.
    _wait_for(lambda: _leftover(database) == [])


def test_the_budget_stops_a_statement_that_would_never_end(database):
    """The database itself stops the statement: the deadline is checked inside it (SQLite's
    progress handler) or by the server (PostgreSQL's statement_timeout), not between statements."""
    from fhir_gateway.errors import TooCostly
    from fhir_gateway.store.budget import Budget

    endless = text(
        "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) SELECT count(*) FROM n"
    )
    with pytest.raises(TooCostly) as stopped:
        with database.session(readonly=True) as session, Budget(0.2).applied(session):
            session.execute(endless)
    assert stopped.value.issues[0].code == "too-costly"
    assert "search_timeout" in stopped.value.message
    if database.is_postgres:
        assert _leftover(database) == []
    with database.session(readonly=True) as session:  # the pooled connection works on, unbounded
        assert session.execute(text("SELECT 1")).scalar() == 1


def test_includes_count_against_their_own_limit(client) -> None:  # type: ignore[no-untyped-def]
    """Every _revinclude a CapabilityStatement claims for Patient, at once, is one search (not
    refused by the parameter or repeat limits); past search_max_includes it is too costly."""
    claimed = next(
        r["searchRevInclude"]
        for r in client.get("/metadata").json()["rest"][0]["resource"]
        if r["type"] == "Patient"
    )
    assert len(claimed) > 50
    query = "&".join(f"_revinclude={value}" for value in claimed)
    assert client.get(f"/Patient?{query}").status_code == 200
    too_many = "&".join(f"_revinclude={claimed[0]}" for _ in range(201))
    _too_costly(client.get(f"/Patient?{too_many}"), "search_max_includes")
