"""The authorization matrix: every role × every interaction × labelled and unlabelled data.

For each role the expected view of the data set is written out below (``VIEW``): ``ok`` (served),
``hidden`` (404 / absent: the caller cannot tell it exists) or ``forbidden`` (the type is outside
its scopes: 403). Then every read path must agree with that view — read, vread, search, history
(instance, type, system), batch GET — and nothing outside it may appear through ``_include``,
``_revinclude``, chains or ``_has``. Writes follow in a second table.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from security_data import CLIENTS, DATASET, LABELLED, consent, seed
from security_helpers import bearer, get_token, register, secure_client

from fhir_gateway.store.db import Database

OK, HIDDEN, FORBIDDEN = "ok", "hidden", "forbidden"
EVERYTHING = {ref: OK for ref in DATASET}
_PARTNER_TYPES = ("Task", "ServiceRequest", "Patient", "Organization", "HealthcareService")
_HOSPITAL_TYPES = ("Patient", "Condition", "Encounter", "Observation")


def _view(ok: set[str], types: tuple[str, ...] | None = None) -> dict[str, str]:
    out = {}
    for ref in DATASET:
        res_type = ref.split("/")[0]
        out[ref] = (
            FORBIDDEN
            if types is not None and res_type not in types
            else OK
            if ref in ok
            else HIDDEN
        )
    return out


DIRECTORY = {
    "Organization/hope",
    "Organization/prairie",
    "HealthcareService/hs-hope",
    "HealthcareService/hs-prairie",
}
VIEW: dict[str, dict[str, str]] = {
    "admin": EVERYTHING,
    "case-manager": EVERYTHING,
    "ehr": _view(set(DATASET - LABELLED)),
    "hospital": _view(set(DATASET - LABELLED), _HOSPITAL_TYPES),
    "partner-hope": _view(
        {
            "Task/t-hope",
            "Task/t-open-housing",
            "ServiceRequest/sr-housing",
            "Patient/pat-psy",
            *DIRECTORY,
        },
        _PARTNER_TYPES,
    ),
    "partner-prairie": _view(set(DIRECTORY), _PARTNER_TYPES),
}
PRAIRIE_WITH_CONSENT = _view(
    {"Task/t-prairie", "Task/t-open-sud", "ServiceRequest/sr-sud", "Patient/pat-sud", *DIRECTORY},
    _PARTNER_TYPES,
)
STATUS = {OK: 200, HIDDEN: 404, FORBIDDEN: 403}


class _Headers(dict[str, dict[str, str]]):
    """Each client of ``CLIENTS`` registered, and its token issued, when a test first uses it."""

    def __init__(self, client: TestClient, database: Database) -> None:
        super().__init__()
        self.client, self.database = client, database

    def __missing__(self, name: str) -> dict[str, str]:
        role, scopes, organization = CLIENTS[name]
        ck = register(self.database, role, scopes, organization)
        self[name] = bearer(get_token(self.client, ck))
        return self[name]


@pytest.fixture
def world(database, database_url) -> Iterator[tuple[TestClient, dict[str, dict[str, str]]]]:  # type: ignore[no-untyped-def]
    # What each role sees, not how fast: every read path (a partner's whole-system
    # `_history?_count=1000` among them) must answer under the parallel load of the test run, where
    # PostgreSQL's default 10 s budget was once exceeded.
    with secure_client(database, database_url, search_timeout=60) as client:
        seed(database)  # after the app exists: its write hooks label what is stored
        yield client, _Headers(client, database)


def _refs(bundle: dict[str, Any]) -> set[str]:
    out = set()
    for entry in bundle.get("entry", []):
        resource = entry.get("resource") or {}
        if resource.get("resourceType") not in (None, "OperationOutcome") and resource.get("id"):
            out.add(f"{resource['resourceType']}/{resource['id']}")
    return out & DATASET


def _everything_seen(client: TestClient, headers: dict[str, str]) -> set[str]:
    """Every data-set resource any search, include, revinclude or history shows this caller."""
    queries = [
        "/_history?_count=1000",
        "/Task?_include=Task:focus&_include=Task:patient&_include=Task:owner&_count=100",
        "/ServiceRequest?_revinclude=Task:focus&_include=ServiceRequest:subject&_include=ServiceRequest:patient",
        "/Patient?_revinclude=Condition:patient&_revinclude=Task:patient&_revinclude=Encounter:patient"
        "&_revinclude=ServiceRequest:patient&_revinclude=Observation:patient&_revinclude=CarePlan:patient",
        "/Encounter?_include=Encounter:diagnosis&_revinclude=Observation:encounter",
        "/Observation?_include=Observation:encounter&_include:iterate=Encounter:diagnosis",
        "/CarePlan?_include=CarePlan:condition",
        "/HealthcareService?_include=HealthcareService:organization",
        "/Condition?_revinclude=Encounter:diagnosis&_revinclude=CarePlan:condition&_include=Condition:patient",
        *(
            f"/{t}/_history"
            for t in ("Task", "ServiceRequest", "Patient", "Condition", "Encounter", "Observation")
        ),
        *(
            f"/{t}"
            for t in (
                "Task",
                "ServiceRequest",
                "Patient",
                "Condition",
                "Encounter",
                "Observation",
                "CarePlan",
            )
        ),
    ]
    seen: set[str] = set()
    for query in queries:
        response = client.get(query, headers=headers)
        if response.status_code == 403:
            continue
        assert response.status_code == 200, (query, response.text)
        seen |= _refs(response.json())
    return seen


def _check_reads(
    client: TestClient, headers: dict[str, str], view: dict[str, str], who: str
) -> None:
    batch: dict[str, Any] = {"resourceType": "Bundle", "type": "batch", "entry": []}
    for ref, expected in sorted(view.items()):
        res_type, res_id = ref.split("/")
        where = f"{who}: {ref} should be {expected}"
        assert client.get(f"/{ref}", headers=headers).status_code == STATUS[expected], where
        assert client.get(f"/{ref}/_history/1", headers=headers).status_code == STATUS[expected], (
            where
        )
        found = client.get(f"/{res_type}?_id={res_id}", headers=headers)
        history = client.get(f"/{ref}/_history", headers=headers)
        if expected == FORBIDDEN:
            assert found.status_code == 403 and history.status_code == 403, where
        else:
            assert _refs(found.json()) == ({ref} if expected == OK else set()), where
            assert bool(_refs(history.json())) == (expected == OK), where
        batch["entry"].append({"request": {"method": "GET", "url": ref}})
    answer = client.post("/", json=batch, headers=headers)
    assert answer.status_code == 200, answer.text
    for entry, (ref, expected) in zip(answer.json()["entry"], sorted(view.items()), strict=True):
        assert entry["response"]["status"].startswith(str(STATUS[expected])), (
            f"{who}: batch GET {ref}"
        )


def _check_no_leaks(
    client: TestClient, headers: dict[str, str], view: dict[str, str], who: str
) -> None:
    visible = {ref for ref, v in view.items() if v == OK}
    seen = _everything_seen(client, headers)
    assert seen <= visible, (
        f"{who} saw {sorted(seen - visible)} through searches, includes or history"
    )
    assert visible - DIRECTORY <= seen, f"{who} missed {sorted(visible - DIRECTORY - seen)}"
    # _has and chains match only through what the caller may see
    has = client.get("/Patient?_has:Condition:patient:code=F10.20", headers=headers)
    chain = client.get("/Observation?encounter:Encounter._security=ETH", headers=headers)
    tasks = client.get("/Task?focus:ServiceRequest.code=addiction-treatment", headers=headers)
    expect_has = (
        {"Patient/pat-sud"}
        if view["Condition/c-sud"] == OK and view["Patient/pat-sud"] == OK
        else set()
    )
    expect_chain = (
        {"Observation/o-1"}
        if view["Encounter/e-sud"] == OK and view["Observation/o-1"] == OK
        else set()
    )
    expect_tasks = {t for t in ("Task/t-prairie", "Task/t-open-sud") if view[t] == OK}
    if view["ServiceRequest/sr-sud"] != OK:
        expect_tasks = set()
    for response, expected in ((has, expect_has), (chain, expect_chain), (tasks, expect_tasks)):
        assert response.status_code in (200, 403), response.text
        assert (_refs(response.json()) if response.status_code == 200 else set()) == expected, (
            who,
            response.url,
        )


@pytest.mark.parametrize("who", list(VIEW))
def test_every_read_path_shows_each_role_its_view_and_nothing_else(world, who):  # type: ignore[no-untyped-def]
    client, headers = world
    _check_reads(client, headers[who], VIEW[who], who)
    _check_no_leaks(client, headers[who], VIEW[who], who)


def test_a_consent_opens_part2_referrals_to_that_partner_only_until_revoked(world):  # type: ignore[no-untyped-def]
    client, headers = world
    assert (
        client.post(
            "/Consent",
            json=consent("pat-sud", "Organization/prairie"),
            headers=headers["partner-prairie"],
        ).status_code
        == 403
    )  # not theirs to give
    created = client.post(
        "/Consent", json=consent("pat-sud", "Organization/prairie"), headers=headers["case-manager"]
    )
    assert created.status_code == 201, created.text
    _check_reads(client, headers["partner-prairie"], PRAIRIE_WITH_CONSENT, "prairie with consent")
    _check_no_leaks(
        client, headers["partner-prairie"], PRAIRIE_WITH_CONSENT, "prairie with consent"
    )
    _check_no_leaks(
        client, headers["partner-hope"], VIEW["partner-hope"], "hope, prairie's consent"
    )
    _check_no_leaks(client, headers["ehr"], VIEW["ehr"], "ehr, prairie's consent")

    revoked = {**created.json(), "status": "inactive"}
    assert (
        client.put(
            f"/Consent/{revoked['id']}", json=revoked, headers=headers["case-manager"]
        ).status_code
        == 200
    )
    _check_reads(
        client, headers["partner-prairie"], VIEW["partner-prairie"], "prairie after revocation"
    )


def test_what_a_partner_receives_is_the_minimum_with_obligations(world):  # type: ignore[no-untyped-def]
    client, headers = world
    client.post(
        "/Consent", json=consent("pat-sud", "Organization/prairie"), headers=headers["case-manager"]
    )
    patient = client.get("/Patient/pat-psy", headers=headers["partner-hope"]).json()
    assert set(patient) <= {
        "resourceType",
        "id",
        "meta",
        "name",
        "birthDate",
        "telecom",
        "address",
        "communication",
    }
    assert (
        patient["name"][0]["family"] == "Moss"
        and patient["communication"][0]["language"]["coding"][0]["code"] == "es"
    )
    assert "SUBSETTED" in {t["code"] for t in patient["meta"]["tag"]}
    searched = client.get(
        "/Task?_id=t-hope&_include=Task:patient", headers=headers["partner-hope"]
    ).json()
    included = [
        e["resource"] for e in searched["entry"] if e["resource"]["resourceType"] == "Patient"
    ]
    assert included and "identifier" not in included[0] and "gender" not in included[0]
    history = client.get("/Patient/pat-psy/_history", headers=headers["partner-hope"]).json()
    assert all("identifier" not in e["resource"] for e in history["entry"])

    for ref in ("Task/t-prairie", "ServiceRequest/sr-sud"):
        served = client.get(f"/{ref}", headers=headers["partner-prairie"]).json()
        assert "NORDSCLCD" in {s["code"] for s in served["meta"]["security"]}, ref
        internal = client.get(f"/{ref}", headers=headers["case-manager"]).json()
        assert "NORDSCLCD" not in {s["code"] for s in internal["meta"]["security"]}, ref
    full = client.get("/Patient/pat-psy", headers=headers["case-manager"]).json()
    assert full["identifier"][0]["value"] == "MRN-1"


def test_labels_come_from_the_diagnosis_and_reach_what_derives_from_it(world):  # type: ignore[no-untyped-def]
    client, headers = world
    cm = headers["case-manager"]

    def codes(ref: str) -> set[str]:
        return {
            s["code"]
            for s in client.get(f"/{ref}", headers=cm).json().get("meta", {}).get("security", [])
        }

    assert codes("Condition/c-sud") >= {"R", "ETH", "42CFRPart2"}
    assert codes("Condition/c-psy") == {"PSY"}
    for ref in ("Encounter/e-sud", "ServiceRequest/sr-sud", "Task/t-prairie"):
        assert codes(ref) >= {"R", "ETH", "42CFRPart2"}, ref
    assert "ETH" not in codes("Observation/o-1")  # one level only: it references the Encounter
    # a partner cannot strip a label by sending the resource back without it
    client.post("/Consent", json=consent("pat-sud", "Organization/prairie"), headers=cm)
    task = client.get("/Task/t-prairie", headers=headers["partner-prairie"]).json()
    stripped = {**{k: v for k, v in task.items() if k != "meta"}, "status": "accepted"}
    answer = client.put("/Task/t-prairie", json=stripped, headers=headers["partner-prairie"])
    assert answer.status_code == 200, answer.text
    assert client.get("/Task/t-prairie", headers=cm).json()["status"] == "accepted"
    assert codes("Task/t-prairie") >= {"R", "ETH", "42CFRPart2"}


WRITES: list[tuple[str, str, str, dict[str, Any] | None, dict[str, int]]] = [
    # (what, method, path, body, expected status per role)
    (
        "create a Patient",
        "POST",
        "/Patient",
        {"resourceType": "Patient", "name": [{"family": "New"}]},
        {
            "admin": 201,
            "case-manager": 201,
            "ehr": 403,
            "hospital": 201,
            "partner-hope": 403,
            "partner-prairie": 403,
        },
    ),
    (
        "update an unlabelled Condition",
        "PUT",
        "/Condition/c-psy",
        {
            "resourceType": "Condition",
            "id": "c-psy",
            "subject": {"reference": "Patient/pat-psy"},
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "F32.1"}]},
        },
        {
            "admin": 200,
            "case-manager": 200,
            "ehr": 403,
            "hospital": 200,
            "partner-hope": 403,
            "partner-prairie": 403,
        },
    ),
    (
        "update a Part 2 Condition",
        "PUT",
        "/Condition/c-sud",
        {
            "resourceType": "Condition",
            "id": "c-sud",
            "subject": {"reference": "Patient/pat-sud"},
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "F10.21"}]},
        },
        {
            "admin": 200,
            "case-manager": 200,
            "ehr": 403,
            "hospital": 403,
            "partner-hope": 403,
            "partner-prairie": 403,
        },
    ),
    (
        "accept the hope Task",
        "PATCH",
        "/Task/t-hope",
        None,
        {
            "admin": 403,
            "case-manager": 403,
            "ehr": 403,
            "hospital": 403,
            "partner-hope": 200,
            "partner-prairie": 404,
        },
    ),
    (
        "accept the Part 2 Task",
        "PATCH",
        "/Task/t-prairie",
        None,
        {
            "admin": 403,
            "case-manager": 403,
            "ehr": 403,
            "hospital": 403,
            "partner-hope": 404,
            "partner-prairie": 404,
        },
    ),
    (
        "delete a CarePlan",
        "DELETE",
        "/CarePlan/cp-psy",
        None,
        {
            "admin": 200,
            "case-manager": 200,
            "ehr": 403,
            "hospital": 403,
            "partner-hope": 403,
            "partner-prairie": 403,
        },
    ),
]
_ACCEPT = [{"op": "replace", "path": "/status", "value": "accepted"}]


@pytest.mark.parametrize(("what", "who"), [(w[0], who) for w in WRITES for who in w[4]])
def test_writes_per_role(world, what, who):  # type: ignore[no-untyped-def]
    client, headers = world
    _, method, path, body, expected = next(w for w in WRITES if w[0] == what)
    if method == "PATCH":
        response = client.patch(
            path,
            json=_ACCEPT,
            headers={**headers[who], "Content-Type": "application/json-patch+json"},
        )
    else:
        response = client.request(method, path, json=body, headers=headers[who])
    assert response.status_code == expected[who], response.text
    if response.status_code >= 400:
        assert response.json()["resourceType"] == "OperationOutcome"


def test_a_transaction_is_checked_entry_by_entry(world):  # type: ignore[no-untyped-def]
    client, headers = world
    hope = headers["partner-hope"]
    task = client.get("/Task/t-hope", headers=headers["case-manager"]).json()
    hidden_write = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {**task, "status": "accepted"},
                "request": {"method": "PUT", "url": "Task/t-hope"},
            },
            {
                "resource": {
                    **task,
                    "id": "t-prairie",
                    "owner": {"reference": "Organization/hope"},
                },
                "request": {"method": "PUT", "url": "Task/t-prairie"},
            },
        ],
    }
    refused = client.post("/", json=hidden_write, headers=hope)
    assert refused.status_code == 403, refused.text
    assert (
        client.get("/Task/t-hope", headers=hope).json()["status"] == "requested"
    )  # all or nothing
    forbidden_type = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {
                    "resourceType": "Condition",
                    "subject": {"reference": "Patient/pat-psy"},
                },
                "request": {"method": "POST", "url": "Condition"},
            },
        ],
    }
    assert client.post("/", json=forbidden_type, headers=hope).status_code == 403
    searches = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"request": {"method": "GET", "url": "Task?_include=Task:focus"}},
            {"request": {"method": "GET", "url": "Condition?code=F10.20"}},
        ],
    }
    answer = client.post("/", json=searches, headers=hope).json()["entry"]
    assert _refs(answer[0]["resource"]) <= {
        ref for ref, v in VIEW["partner-hope"].items() if v == OK
    }
    assert answer[1]["response"]["status"].startswith("403")


def test_a_partner_cannot_hand_a_task_to_another_organization(world):  # type: ignore[no-untyped-def]
    client, headers = world
    move = [{"op": "replace", "path": "/owner", "value": {"reference": "Organization/prairie"}}]
    response = client.patch(
        "/Task/t-hope",
        json=move,
        headers={**headers["partner-hope"], "Content-Type": "application/json-patch+json"},
    )
    assert response.status_code == 403


def test_a_partner_claims_an_open_task_it_is_eligible_for(world):  # type: ignore[no-untyped-def]
    client, headers = world
    claim = [
        {"op": "add", "path": "/owner", "value": {"reference": "Organization/hope"}},
        {"op": "replace", "path": "/status", "value": "accepted"},
    ]
    patch_headers = {"Content-Type": "application/json-patch+json", "If-Match": 'W/"1"'}
    assert (
        client.patch(
            "/Task/t-open-housing",
            json=claim,
            headers={**headers["partner-prairie"], **patch_headers},
        ).status_code
        == 404
    )
    claimed = client.patch(
        "/Task/t-open-housing", json=claim, headers={**headers["partner-hope"], **patch_headers}
    )
    assert claimed.status_code == 200, claimed.text
    assert claimed.json()["owner"]["reference"] == "Organization/hope"
