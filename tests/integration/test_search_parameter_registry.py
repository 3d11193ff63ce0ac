"""A SearchParameter stored through the API counts from its commit on, in every process: after a
rollback it is unknown, after a restart and in another process it is searchable."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

DEADLINE = {
    "resourceType": "SearchParameter",
    "url": "http://example.org/SearchParameter/task-deadline",
    "name": "deadline",
    "status": "active",
    "code": "deadline",
    "description": "The referral's deadline (Task.restriction.period.end)",
    "base": ["Task"],
    "type": "date",
    "expression": "Task.restriction.period.end",
}
_TASK = {
    "resourceType": "Task",
    "status": "requested",
    "intent": "order",
    "restriction": {"period": {"end": "2024-04-01"}},
}

# Another process: an app of its own on the same database, no state shared with this one.
_OTHER_PROCESS = textwrap.dedent(
    """
    import sys, orjson
    from fastapi.testclient import TestClient
    from fhir_gateway.app import create_app
    from fhir_gateway.settings import Settings

    url, method, path, body = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    settings = Settings(database_url=url, base_url=None, auth_enabled=False, audit_enabled=False)
    with TestClient(create_app(settings)) as client:
        answer = client.request(method, path, content=body or None,
                                headers={"Content-Type": "application/fhir+json",
                                         "Prefer": "handling=strict"})
    print(answer.status_code)
    print(answer.text)
    """
)


def _in_another_process(
    database_url: str, method: str, path: str, body: str = ""
) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-c", _OTHER_PROCESS, database_url, method, path, body],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    status, _, text = done.stdout.partition("\n")
    return int(status), text


_STRICT = {"Prefer": "handling=strict"}  # an unknown parameter is an error, not skipped


def _deadline_search(client) -> int:  # type: ignore[no-untyped-def]
    return client.get("/Task", params={"deadline": "lt2024-05"}, headers=_STRICT).status_code


def test_a_search_parameter_in_a_rolled_back_transaction_stays_unknown(client) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": DEADLINE, "request": {"method": "POST", "url": "SearchParameter"}},
            # Invalid: the whole transaction is refused and rolled back.
            {
                "resource": {"resourceType": "Task", "status": 7},
                "request": {"method": "POST", "url": "Task"},
            },
        ],
    }
    assert client.post("/", json=bundle).status_code == 400
    answer = client.get("/Task", params={"deadline": "lt2024-05"}, headers=_STRICT)
    assert answer.status_code == 400
    assert "deadline" in answer.text
    assert client.get("/SearchParameter").json().get("total", 0) == 0


def test_the_same_query_is_parsed_anew_after_a_search_parameter_comes_and_goes(client) -> None:
    # A query's plan is kept once parsed (store.search._parsed): not past a change of the
    # registry, which the very same query must see at once.
    assert _deadline_search(client) == 400
    created = client.post("/SearchParameter", json=DEADLINE).json()
    assert client.post("/Task", json=_TASK).status_code == 201
    assert _deadline_search(client) == 200
    assert client.delete(f"/SearchParameter/{created['id']}").status_code in (200, 204)
    assert _deadline_search(client) == 400


@pytest.mark.slow  # subprocesses or a live server
def test_a_search_parameter_is_searchable_at_once_and_after_a_restart(client, database_url) -> None:
    assert client.post("/SearchParameter", json=DEADLINE).status_code == 201
    assert client.post("/Task", json=_TASK).status_code == 201
    found = client.get("/Task", params={"deadline": "lt2024-05"}, headers=_STRICT)
    assert found.status_code == 200 and found.json()["total"] == 1
    # A process started afterwards (a restart, or another gateway process) knows it too.
    status, text = _in_another_process(database_url, "GET", "/Task?deadline=lt2024-05")
    assert status == 200, text
    assert '"total":1' in text.replace(" ", "")


@pytest.mark.slow  # subprocesses or a live server
def test_a_search_parameter_stored_by_another_process_is_picked_up(client, database_url) -> None:
    assert _deadline_search(client) == 400  # loaded: this process does not know it yet
    status, text = _in_another_process(database_url, "POST", "/SearchParameter", _json(DEADLINE))
    assert status == 201, text
    # SQLite: the next transaction reads the version; PostgreSQL: a NOTIFY reaches the listener.
    until = time.monotonic() + 15
    while _deadline_search(client) != 200 and time.monotonic() < until:
        time.sleep(0.1)
    assert _deadline_search(client) == 200


@pytest.mark.slow  # subprocesses or a live server
def test_a_deleted_search_parameter_is_forgotten_everywhere(client, database_url) -> None:
    created = client.post("/SearchParameter", json=DEADLINE).json()
    assert _deadline_search(client) == 200
    status, text = _in_another_process(database_url, "DELETE", f"/SearchParameter/{created['id']}")
    assert status in (200, 204), text
    until = time.monotonic() + 15
    while _deadline_search(client) != 400 and time.monotonic() < until:
        time.sleep(0.1)
    assert _deadline_search(client) == 400


def _json(resource: dict) -> str:
    import orjson

    return orjson.dumps(resource).decode()
