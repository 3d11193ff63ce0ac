"""No existence oracle: a write on a resource the caller cannot see answers exactly as one on an
id that does not exist (status, body, headers), in every form; and the ids the engines derive
are keyed with the installation's secret, so they cannot be computed from ids a client holds."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from security_data import CLIENTS, seed
from security_helpers import bearer, get_token, register, secure_client

from fhir_gateway.careplans._ids import resource_id
from fhir_gateway.monitors._ids import monitor_id
from fhir_gateway.store.db import Database
from fhir_gateway.store.migrate import upgrade

HIDDEN, MISSING = "t-prairie", "t-nowhere"  # t-prairie: owned by another partner, Part 2
_PER_RESPONSE = {"date", "x-request-id", "content-length"}
JSON_PATCH = "application/json-patch+json"
ACCEPT = [{"op": "replace", "path": "/status", "value": "accepted"}]


@pytest.fixture
def world(database, database_url):  # type: ignore[no-untyped-def]
    with secure_client(database, database_url) as client:
        seed(database)
        headers = {
            name: bearer(get_token(client, register(database, *CLIENTS[name])))
            for name in ("partner-hope", "case-manager")
        }
        yield client, headers


def _seen(response: Any, res_id: str) -> tuple[int, str, dict[str, str]]:
    """What the caller sees, with the id it asked for itself written as <id>."""
    headers = {
        k: v.replace(res_id, "<id>") for k, v in response.headers.items() if k not in _PER_RESPONSE
    }
    return response.status_code, response.text.replace(res_id, "<id>"), headers


def _task(client: Any, headers: dict[str, dict[str, str]], res_id: str) -> dict[str, Any]:
    task = client.get(f"/Task/{HIDDEN}", headers=headers["case-manager"]).json()
    return {**{k: v for k, v in task.items() if k != "meta"}, "id": res_id, "status": "accepted"}


CASES = {
    "PUT": lambda c, h, i: c.put(f"/Task/{i}", json=_task(c, h, i), headers=h["partner-hope"]),
    "PATCH": lambda c, h, i: c.patch(
        f"/Task/{i}", json=ACCEPT, headers={**h["partner-hope"], "Content-Type": JSON_PATCH}
    ),
    "DELETE": lambda c, h, i: c.delete(f"/Task/{i}", headers=h["partner-hope"]),
    "conditional PUT": lambda c, h, i: c.put(
        "/Task", params={"_id": i}, json=_task(c, h, i), headers=h["partner-hope"]
    ),
    "conditional PATCH": lambda c, h, i: c.patch(
        "/Task",
        params={"_id": i},
        json=ACCEPT,
        headers={**h["partner-hope"], "Content-Type": JSON_PATCH},
    ),
    "conditional DELETE": lambda c, h, i: c.delete(
        "/Task", params={"_id": i}, headers=h["partner-hope"]
    ),
    "If-Match PUT": lambda c, h, i: c.put(
        f"/Task/{i}", json=_task(c, h, i), headers={**h["partner-hope"], "If-Match": 'W/"1"'}
    ),
}


@pytest.mark.parametrize("how", list(CASES))
def test_a_write_on_a_hidden_task_answers_as_on_a_missing_one(world, how):  # type: ignore[no-untyped-def]
    client, headers = world
    assert client.get(f"/Task/{HIDDEN}", headers=headers["partner-hope"]).status_code == 404
    hidden = _seen(CASES[how](client, headers, HIDDEN), HIDDEN)
    missing = _seen(CASES[how](client, headers, MISSING), MISSING)
    assert hidden == missing
    assert hidden[0] >= 400 or how.endswith("DELETE")
    after = client.get(f"/Task/{HIDDEN}", headers=headers["case-manager"]).json()
    assert after["status"] == "requested" and after["meta"]["versionId"] == "1"  # untouched


def test_a_transaction_write_on_a_hidden_task_answers_as_on_a_missing_one(world):  # type: ignore[no-untyped-def]
    client, headers = world

    def post(res_id: str) -> Any:
        bundle = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "resource": _task(client, headers, res_id),
                    "request": {"method": "PUT", "url": f"Task/{res_id}"},
                }
            ],
        }
        return client.post("/", json=bundle, headers=headers["partner-hope"])

    assert _seen(post(HIDDEN), HIDDEN) == _seen(post(MISSING), MISSING)


def test_a_conditional_create_does_not_hand_out_a_hidden_match(world, database):  # type: ignore[no-untyped-def]
    client, headers = world
    hospital = bearer(get_token(client, register(database, *CLIENTS["hospital"])))
    criteria = {"If-None-Exist": "identifier=urn:test|sud-1"}
    secret = {
        "resourceType": "Condition",
        "identifier": [{"system": "urn:test", "value": "sud-1"}],
        "subject": {"reference": "Patient/pat-sud"},
        "note": [{"text": "in residential treatment"}],
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "F11.20"}]},
    }
    assert (
        client.post(
            "/Condition", json=secret, headers={**headers["case-manager"], **criteria}
        ).status_code
        == 201
    )
    probe = {k: v for k, v in secret.items() if k != "note"}
    answer = client.post("/Condition", json=probe, headers={**hospital, **criteria})
    assert "residential" not in answer.text and answer.status_code != 200


def _ids(url: str) -> tuple[str, str]:
    database = Database(url)
    try:
        upgrade(database.engine)
        return database.write(
            lambda _: (
                monitor_id("overdue", "past-deadline", "Task/1"),
                resource_id("Encounter/e-1#0", "Task", "addiction-treatment"),
            )
        )
    finally:
        database.dispose()


def test_engine_ids_are_keyed_per_installation_and_stable_across_restarts(
    database, database_url, tmp_path
):  # type: ignore[no-untyped-def]
    here = _ids(database_url)
    assert (
        _ids(database_url) == here
    )  # a restart (a new engine on the same database) derives the same ids
    elsewhere = _ids(f"sqlite:///{tmp_path / 'other.db'}")
    assert set(here).isdisjoint(elsewhere)  # another installation: other ids
    public = uuid.uuid5(
        uuid.UUID("6f1c2a8e-5b0e-4b8f-9a43-2d1f6c0e7a11"),
        "Encounter/e-1#0|Task|addiction-treatment",
    )
    assert here[1] != str(public)  # not derivable from the (public) namespace and the ids


def test_concurrent_first_uses_agree_on_one_secret(database):  # type: ignore[no-untyped-def]
    """Two gateway processes deriving their first id at once: one secret is made, both use it."""
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    start = Barrier(4)

    def derive(_: int) -> str:
        def inside(session: Any) -> str:
            return monitor_id("overdue", "past-deadline", "Task/9")

        # All four begin their transactions at once (SQLite then queues them at BEGIN IMMEDIATE).
        start.wait(timeout=60)
        return database.write(inside)

    with ThreadPoolExecutor(4) as pool:
        ids = set(pool.map(derive, range(4)))
    assert len(ids) == 1
