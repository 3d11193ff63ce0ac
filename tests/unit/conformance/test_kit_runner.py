"""The kit's runner and report against tiny in-memory servers (httpx.MockTransport)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import httpx

from conformance import run_kit
from conformance._report import FAIL, PASS, SKIP, WARN, CheckResult, Report

STATEMENT = {
    "resourceType": "CapabilityStatement",
    "status": "active",
    "date": "2024-01-01",
    "kind": "instance",
    "fhirVersion": "4.0.1",
    "format": ["json"],
    "rest": [
        {
            "mode": "server",
            "resource": [
                {"type": "Patient", "interaction": [{"code": "create"}, {"code": "read"}]}
            ],
        }
    ],
}


def tiny_server(create_status: int = 201) -> httpx.MockTransport:
    """Answers /metadata; creates Patients (with the given status); reads answer 404."""
    store: dict[str, dict] = {}

    def handle(request: httpx.Request) -> httpx.Response:
        path = request.url.path.rstrip("/")
        headers = {"Content-Type": "application/fhir+json"}
        if path == "/metadata":
            return httpx.Response(200, json=STATEMENT, headers=headers)
        if request.method == "POST" and path == "/Patient":
            body = json.loads(request.content)
            body.update(
                id=str(len(store) + 1),
                meta={"versionId": "1", "lastUpdated": "2024-01-01T00:00:00Z"},
            )
            store[body["id"]] = body
            loc = {
                "Location": f"http://fhir.test/Patient/{body['id']}/_history/1",
                "ETag": 'W/"1"',
                "Last-Modified": "Mon, 01 Jan 2024 00:00:00 GMT",
            }
            return httpx.Response(create_status, json=body, headers={**headers, **loc})
        if request.method == "DELETE":
            return httpx.Response(204)
        outcome = {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": "not-found"}],
        }
        return httpx.Response(404, json=outcome, headers=headers)

    return httpx.MockTransport(handle)


def test_checks_pass_skip_or_fail_on_what_the_server_claims_and_does():
    report = run_kit("http://fhir.test", transport=tiny_server(), jobs=1)
    by_id = {r.id: r for r in report.results}
    assert by_id["crud.create"].status == PASS
    assert by_id["errors.not_found"].status == PASS
    assert by_id["crud.update"].status == SKIP  # not claimed: not judged
    assert "does not claim update on Patient" in by_id["crud.update"].message
    assert by_id["capability.statement"].status == PASS


def test_a_wrong_status_is_a_failure_naming_request_and_answer():
    report = run_kit(
        "http://fhir.test", transport=tiny_server(create_status=200), select=["crud.create"]
    )
    [result] = report.results
    assert result.status == FAIL
    assert "POST http://fhir.test/Patient → 200" in result.message
    assert not report.ok


def test_a_claim_that_fails_is_a_failure():
    # the server claims read, but reading what it just created answers 404
    report = run_kit(
        "http://fhir.test", transport=tiny_server(), select=["capability.Patient.interactions"]
    )
    [result] = report.results
    assert result.status == FAIL
    assert result.message.startswith("1 of ") and "read: " in result.message


def test_an_unreachable_server_is_one_clear_failure():
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    report = run_kit("http://nowhere.test", transport=httpx.MockTransport(refuse))
    assert [(r.id, r.status) for r in report.results] == [("capability.fetch", FAIL)]
    assert "connection refused" in report.results[0].message


def test_selection_by_category_and_glob():
    report = run_kit(
        "http://fhir.test", transport=tiny_server(), select=["errors"], exclude=["errors.no_*"]
    )
    ids = {r.id for r in report.results}
    assert ids and all(i.startswith("errors.") for i in ids)
    assert "errors.no_5xx" not in ids


def test_the_table_and_junit_xml_tell_the_same_story():
    report = Report(
        "http://fhir.test",
        [
            CheckResult("crud.create", "create works", PASS),
            CheckResult("crud.read", "read works", FAIL, "GET /Patient/1 → 500"),
            CheckResult("search.sort", "sorting", WARN, "_sort ignored", level="should"),
            CheckResult("patch.x", "patching", SKIP, "not claimed"),
        ],
    )
    table = report.table()
    assert "FAIL    crud.read" in table and "GET /Patient/1 → 500" in table
    assert "NOT CONFORMANT: 1 passed, 1 failed, 1 warnings, 1 skipped" in table
    suite = ET.fromstring(report.junit_xml())
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("4", "1", "1")
    failed = suite.find("testcase[@name='crud.read']/failure")
    assert failed is not None and "500" in failed.get("message", "")
    assert suite.find("testcase[@name='search.sort']/failure") is None  # a SHOULD only warns
    assert not report.ok
    assert Report("x", [CheckResult("a.b", "t", WARN)]).ok
