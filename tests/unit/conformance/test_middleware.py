"""The ASGI middleware that checks what an app emits."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import Response
from fastapi.testclient import TestClient

from conformance.middleware import EmittedViolations, ValidatingMiddleware

SDOH_TASK = (
    "http://hl7.org/fhir/us/sdoh-clinicalcare/StructureDefinition/SDOHCC-TaskForReferralManagement"
)


def app_sending(
    body: bytes, media_type: str = "application/fhir+json"
) -> tuple[FastAPI, EmittedViolations]:
    app = FastAPI()

    @app.get("/thing")
    def thing() -> Response:
        return Response(body, media_type=media_type)

    violations = EmittedViolations()
    app.add_middleware(ValidatingMiddleware, violations=violations)
    return app, violations


def test_valid_fhir_passes_through_untouched():
    body = b'{"resourceType":"Patient","gender":"female"}'
    app, violations = app_sending(body)
    with TestClient(app) as client:
        assert client.get("/thing").content == body
    assert violations.items == [] and violations.responses == 1


def test_schema_violations_are_recorded_with_the_request():
    app, violations = app_sending(b'{"resourceType":"Patient","gender":"robot"}')
    with TestClient(app) as client:
        assert client.get("/thing?x=1").status_code == 200  # the response itself is not changed
    [item] = violations.items
    assert item.startswith("GET /thing?x=1 → 200: Patient.gender:")


def test_profile_rules_apply_to_resources_that_claim_them():
    task = (
        b'{"resourceType":"Task","id":"t","meta":{"profile":["%s"]},"status":"ready","intent":"order"}'
        % SDOH_TASK.encode()
    )
    app, violations = app_sending(task)
    with TestClient(app) as client:
        client.get("/thing")
    assert any("status-binding" in v for v in violations.items)
    assert any("focus" in v for v in violations.items)


def test_other_media_types_are_not_checked():
    app, violations = app_sending(b"not json at all", media_type="text/plain")
    with TestClient(app) as client:
        client.get("/thing")
    assert violations.items == [] and violations.responses == 0


def test_broken_json_claiming_to_be_fhir_is_recorded():
    app, violations = app_sending(b'{"resourceType":')
    with TestClient(app) as client:
        client.get("/thing")
    assert violations.items == ["GET /thing → 200: the application/fhir+json body is not JSON"]
