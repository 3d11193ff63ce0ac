"""transaction and batch Bundles: urn:uuid references, atomicity, ifNoneExist, response shape."""

from __future__ import annotations

import uuid
from typing import Any

from conformance._context import Context
from conformance._registry import check
from conformance.checks._data import patient


def _urn() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def _post_entry(
    ctx: Context, full_url: str, resource: dict[str, Any], **request: str
) -> dict[str, Any]:
    return {
        "fullUrl": full_url,
        "resource": ctx.stamp(resource),
        "request": {"method": "POST", "url": resource["resourceType"], **request},
    }


def _response_ref(entry: dict[str, Any]) -> str:
    """``Type/id`` from an entry's response.location (``…/Type/id/_history/n``)."""
    location = (entry.get("response") or {}).get("location", "")
    parts = location.split("/_history")[0].rstrip("/").split("/")
    return "/".join(parts[-2:]) if len(parts) >= 2 else ""


def _track(ctx: Context, response_bundle: dict[str, Any]) -> None:
    for entry in response_bundle.get("entry") or []:
        ref = _response_ref(entry)
        if "/" in ref:
            ctx.track(*ref.split("/", 1))


def _count(ctx: Context, ident: dict[str, str], res_type: str = "Patient") -> int:
    found = ctx.search(res_type, {"identifier": f"{ident['system']}|{ident['value']}"})
    return len(found.get("entry") or [])


@check(
    "transaction.urn_uuid",
    "a transaction creates entries and rewrites urn:uuid references to the new ids",
)
def urn_uuid(ctx: Context) -> None:
    ctx.require_system("transaction")
    ctx.require("Encounter", "read")
    p_urn, e_urn = _urn(), _urn()
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            _post_entry(
                ctx,
                e_urn,
                {
                    "resourceType": "Encounter",
                    "status": "finished",
                    "class": {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                        "code": "IMP",
                    },
                    "subject": {"reference": p_urn},
                },
            ),
            _post_entry(ctx, p_urn, patient(ctx)),
        ],
    }
    response = ctx.expect_status(ctx.client.post("", bundle), 200, what="POST transaction")
    ctx.expect(
        response.get("type") == "transaction-response",
        f"answered a {response.get('type')!r} Bundle, not transaction-response",
    )
    _track(ctx, response)
    entries = response.get("entry") or []
    ctx.expect(len(entries) == 2, f"the response has {len(entries)} entries for 2 requests")
    statuses = [(e.get("response") or {}).get("status", "") for e in entries]
    ctx.expect(
        all(s.startswith("201") for s in statuses),
        f"entry statuses are {statuses}, expected 201 each",
    )
    encounter_ref, patient_ref = (_response_ref(e) for e in entries)
    ctx.expect(
        encounter_ref.startswith("Encounter/") and patient_ref.startswith("Patient/"),
        f"response entries are out of request order: {encounter_ref}, {patient_ref}",
    )
    stored = ctx.expect_status(ctx.client.get(encounter_ref), 200, what="read the new Encounter")
    subject = (stored.get("subject") or {}).get("reference", "")
    ctx.expect(
        subject == patient_ref or subject.endswith("/" + patient_ref),
        f"Encounter.subject is {subject!r}, not {patient_ref}",
    )


@check(
    "transaction.atomic",
    "a transaction with one failing entry is refused whole and leaves nothing behind",
)
def atomic(ctx: Context) -> None:
    ctx.require_system("transaction")
    ctx.require_param("Patient", "identifier")
    good = patient(ctx, "atomic")
    missing_id = ctx.unique("absent").lower()
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            _post_entry(ctx, _urn(), good),
            {
                "resource": ctx.stamp(patient(ctx) | {"id": missing_id}),
                "request": {"method": "PUT", "url": f"Patient/{missing_id}", "ifMatch": 'W/"7"'},
            },
        ],
    }
    response = ctx.client.post("", bundle)
    ctx.expect_outcome(
        response, 400, 404, 409, 412, 422, what="a transaction whose second entry fails"
    )
    ctx.expect(
        _count(ctx, good["identifier"][0]) == 0,
        "the first entry of the failed transaction was stored",
    )
    invalid = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            _post_entry(ctx, _urn(), patient(ctx, "atomic2") | {"identifier": good["identifier"]}),
            _post_entry(
                ctx, _urn(), patient(ctx) | {"active": "yes"}
            ),  # invalid by structure, not by terminology
        ],
    }
    ctx.expect_outcome(
        ctx.client.post("", invalid), 400, 422, what="a transaction with an invalid resource"
    )
    ctx.expect(
        _count(ctx, good["identifier"][0]) == 0,
        "the valid entry of the refused transaction was stored",
    )


@check(
    "transaction.if_none_exist",
    "a transaction entry with ifNoneExist reuses the match instead of creating",
)
def if_none_exist(ctx: Context) -> None:
    ctx.require_system("transaction")
    ctx.require_param("Patient", "identifier")
    existing = ctx.create(patient(ctx))
    ident = existing["identifier"][0]
    p_urn = _urn()
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            _post_entry(
                ctx,
                p_urn,
                patient(ctx) | {"identifier": [ident]},
                ifNoneExist=f"identifier={ident['system']}|{ident['value']}",
            ),
            _post_entry(
                ctx,
                _urn(),
                {
                    "resourceType": "Encounter",
                    "status": "planned",
                    "class": {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                        "code": "AMB",
                    },
                    "subject": {"reference": p_urn},
                },
            ),
        ],
    }
    response = ctx.expect_status(
        ctx.client.post("", bundle), 200, what="transaction with ifNoneExist"
    )
    _track(ctx, response)
    first = (response.get("entry") or [{}])[0]
    ctx.expect(
        (first.get("response") or {}).get("status", "").startswith("200"),
        f"the ifNoneExist entry answered {(first.get('response') or {}).get('status')!r}, expected 200",
    )
    ctx.expect(_count(ctx, ident) == 1, "ifNoneExist created a duplicate")
    enc_ref = _response_ref(response["entry"][1])
    stored = ctx.expect_status(ctx.client.get(enc_ref), 200, what="read the Encounter")
    ctx.expect(
        (stored.get("subject") or {}).get("reference", "").endswith(f"Patient/{existing['id']}"),
        "the urn:uuid of an ifNoneExist entry was not resolved to the existing match",
    )


@check(
    "transaction.batch", "a batch runs entries independently: one failure does not undo the others"
)
def batch(ctx: Context) -> None:
    ctx.require_system("batch")
    good = patient(ctx, "batch")
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"resource": ctx.stamp(good), "request": {"method": "POST", "url": "Patient"}},
            {"request": {"method": "GET", "url": f"Patient/{ctx.unique('missing')}"}},
        ],
    }
    response = ctx.expect_status(ctx.client.post("", bundle), 200, what="POST batch")
    ctx.expect(
        response.get("type") == "batch-response",
        f"answered a {response.get('type')!r} Bundle, not batch-response",
    )
    _track(ctx, response)
    statuses = [(e.get("response") or {}).get("status", "") for e in response.get("entry") or []]
    ctx.expect(
        len(statuses) == 2 and statuses[0].startswith("201") and statuses[1].startswith("404"),
        f"batch entry statuses are {statuses}, expected 201 then 404",
    )
    failed = response["entry"][1]
    outcome = (failed.get("response") or {}).get("outcome") or failed.get("resource") or {}
    ctx.expect(
        outcome.get("resourceType") == "OperationOutcome",
        "the failed batch entry carries no OperationOutcome",
    )
    if ctx.claims.param("Patient", "identifier"):
        ctx.expect(
            _count(ctx, good["identifier"][0]) == 1, "the successful batch entry was not stored"
        )
