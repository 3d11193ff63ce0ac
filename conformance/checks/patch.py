"""PATCH: JSON Patch and FHIRPath Patch, If-Match, failures, conditional and in a transaction."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence

import httpx

from conformance._context import Context
from conformance._registry import CheckSkipped, check
from conformance.checks._data import patient, version_of

JSON_PATCH = "application/json-patch+json"
FHIR_JSON = "application/fhir+json"


def _require(ctx: Context, fmt: str) -> None:
    ctx.require("Patient", "create", "patch")
    if ctx.claims.patch_formats and fmt not in ctx.claims.patch_formats:
        raise CheckSkipped(f"the server does not list {fmt} in patchFormat")


def _json_patch(
    ctx: Context,
    path: str,
    ops: Sequence[Mapping[str, object]],
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return ctx.client.request(
        "PATCH", path, content=json.dumps(ops), content_type=JSON_PATCH, headers=headers
    )


@check("patch.json_patch", "JSON Patch changes the resource and makes a new version")
def json_patch(ctx: Context) -> None:
    _require(ctx, JSON_PATCH)
    created = ctx.create(patient(ctx, gender="male"))
    ops = [
        {"op": "test", "path": "/gender", "value": "male"},
        {"op": "replace", "path": "/gender", "value": "female"},
        {"op": "add", "path": "/name/0/given/-", "value": "Patched"},
    ]
    body = ctx.expect_status(
        _json_patch(ctx, f"Patient/{created['id']}", ops), 200, what="JSON Patch"
    )
    now = ctx.expect_status(
        ctx.client.get(f"Patient/{created['id']}"), 200, what="read after patch"
    )
    ctx.expect(
        now.get("gender") == "female" and "Patched" in now["name"][0].get("given", []),
        f"the patch was not applied: {now}",
    )
    ctx.expect(version_of(now) != version_of(created), "the patch did not make a new version")
    ctx.expect(
        body is None or body.get("gender") == "female",
        "the PATCH answer is not the patched resource",
    )


@check("patch.fhirpath_patch", "FHIRPath Patch (a Parameters resource) changes the resource")
def fhirpath_patch(ctx: Context) -> None:
    _require(ctx, FHIR_JSON)
    created = ctx.create(patient(ctx, gender="male"))
    params = {
        "resourceType": "Parameters",
        "parameter": [
            {
                "name": "operation",
                "part": [
                    {"name": "type", "valueCode": "replace"},
                    {"name": "path", "valueString": "Patient.gender"},
                    {"name": "value", "valueCode": "other"},
                ],
            },
            {
                "name": "operation",
                "part": [
                    {"name": "type", "valueCode": "add"},
                    {"name": "path", "valueString": "Patient"},
                    {"name": "name", "valueString": "birthDate"},
                    {"name": "value", "valueDate": "1999-09-09"},
                ],
            },
        ],
    }
    ctx.expect_status(
        ctx.client.patch(f"Patient/{created['id']}", params), 200, what="FHIRPath Patch"
    )
    now = ctx.expect_status(
        ctx.client.get(f"Patient/{created['id']}"), 200, what="read after patch"
    )
    ctx.expect(
        now.get("gender") == "other" and now.get("birthDate") == "1999-09-09",
        f"the FHIRPath Patch was not applied: gender {now.get('gender')!r}, birthDate {now.get('birthDate')!r}",
    )


@check("patch.if_match", "PATCH with a stale If-Match answers 412 and changes nothing")
def if_match(ctx: Context) -> None:
    _require(ctx, JSON_PATCH)
    created = ctx.create(patient(ctx, gender="male"))
    ctx.expect_status(
        _json_patch(
            ctx,
            f"Patient/{created['id']}",
            [{"op": "replace", "path": "/gender", "value": "female"}],
        ),
        200,
        what="patch",
    )
    stale = _json_patch(
        ctx,
        f"Patient/{created['id']}",
        [{"op": "replace", "path": "/gender", "value": "other"}],
        headers={"If-Match": f'W/"{version_of(created)}"'},
    )
    ctx.expect_outcome(stale, 412, what="PATCH with a stale If-Match")
    now = ctx.expect_status(ctx.client.get(f"Patient/{created['id']}"), 200, what="read")
    ctx.expect(now.get("gender") == "female", "the refused patch changed the resource")


@check(
    "patch.failing",
    "a patch that cannot apply (failed test, invalid result) is refused with an OperationOutcome",
)
def failing(ctx: Context) -> None:
    _require(ctx, JSON_PATCH)
    created = ctx.create(patient(ctx, gender="male"))
    failed_test = _json_patch(
        ctx,
        f"Patient/{created['id']}",
        [{"op": "test", "path": "/gender", "value": "female"}, {"op": "remove", "path": "/name"}],
    )
    ctx.expect_outcome(failed_test, 409, 412, 422, 400, what="JSON Patch whose test op fails")
    # invalid by structure (a string where FHIR has a boolean), not by a terminology binding a
    # server may leave unchecked
    invalid = _json_patch(
        ctx, f"Patient/{created['id']}", [{"op": "add", "path": "/active", "value": "yes"}]
    )
    ctx.expect_outcome(invalid, 400, 422, what="JSON Patch producing an invalid resource")
    now = ctx.expect_status(ctx.client.get(f"Patient/{created['id']}"), 200, what="read")
    ctx.expect(
        now.get("gender") == "male" and now.get("name") and "active" not in now,
        "a refused patch changed the resource",
    )


@check("patch.conditional", "PATCH Type?identifier=… patches the single match", level="should")
def conditional(ctx: Context) -> None:
    _require(ctx, JSON_PATCH)
    ctx.require_param("Patient", "identifier")
    created = ctx.create(patient(ctx, gender="male"))
    ident = created["identifier"][0]
    response = _json_patch(
        ctx,
        f"Patient?identifier={ident['system']}|{ident['value']}",
        [{"op": "replace", "path": "/gender", "value": "female"}],
    )
    ctx.expect_status(response, 200, what="conditional PATCH")
    now = ctx.expect_status(ctx.client.get(f"Patient/{created['id']}"), 200, what="read")
    ctx.expect(now.get("gender") == "female", "the conditional patch was not applied")


@check(
    "patch.in_transaction",
    "a transaction entry may PATCH (Binary JSON Patch, or Parameters FHIRPath Patch)",
    level="should",
)
def in_transaction(ctx: Context) -> None:
    _require(ctx, JSON_PATCH)
    ctx.require_system("transaction")
    created = ctx.create(patient(ctx, gender="male"))
    ops = json.dumps([{"op": "replace", "path": "/gender", "value": "female"}]).encode()
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {
                    "resourceType": "Binary",
                    "contentType": JSON_PATCH,
                    "data": base64.b64encode(ops).decode(),
                },
                "request": {"method": "PATCH", "url": f"Patient/{created['id']}"},
            }
        ],
    }
    ctx.expect_status(ctx.client.post("", bundle), 200, what="transaction with a PATCH entry")
    now = ctx.expect_status(ctx.client.get(f"Patient/{created['id']}"), 200, what="read")
    ctx.expect(now.get("gender") == "female", "the transaction's PATCH entry was not applied")
