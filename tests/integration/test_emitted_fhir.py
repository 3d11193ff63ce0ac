"""The suite-wide check of emitted FHIR (tests/conftest.py) is really wired into the app."""

from __future__ import annotations

import pytest
from fastapi.responses import Response

SDOH_TASK = (
    "http://hl7.org/fhir/us/sdoh-clinicalcare/StructureDefinition/SDOHCC-TaskForReferralManagement"
)


def test_what_the_app_serves_is_checked(app, client):
    def broken() -> Response:
        task = (
            b'{"resourceType":"Task","meta":{"profile":["%s"]},"status":"ready","intent":"order"}'
            % SDOH_TASK.encode()
        )
        return Response(task, media_type="application/fhir+json")

    app.add_api_route("/_test_broken_task", broken)
    app.router.routes.insert(0, app.router.routes.pop())  # ahead of the catch-all /{res_type}
    violations = app.state.emitted_violations
    assert client.get("/metadata").status_code == 200
    assert violations.items == [] and violations.responses == 1
    client.get("/_test_broken_task")
    assert any("/_test_broken_task" in v and "status-binding" in v for v in violations.items)
    assert any("code-fulfill" in v for v in violations.items), violations.items
    violations.items.clear()  # seen; let teardown pass


@pytest.mark.no_fhir_validation
def test_a_test_can_opt_out(app):
    assert not hasattr(app.state, "emitted_violations")
