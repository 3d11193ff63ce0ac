"""Create, read, update (also create-on-update) and delete on Patient."""

from __future__ import annotations

import re

from conformance._context import Context
from conformance._registry import CheckSkipped, check
from conformance.checks._data import etag_version, patient, version_of

FHIR_JSON = "application/fhir+json"


@check(
    "crud.create",
    "POST answers 201 with Location, ETag, Last-Modified and the stored resource",
    needs=(("Patient", "create"),),
)
def create(ctx: Context) -> None:
    response = ctx.client.post("Patient", ctx.stamp(patient(ctx, gender="female")))
    body = ctx.expect_status(response, 201, what="POST Patient")
    ctx.expect(isinstance(body, dict) and body.get("id"), "the 201 body has no id")
    ctx.track("Patient", body["id"])
    location = response.headers.get("location", "")
    ctx.expect(
        re.search(rf"Patient/{re.escape(body['id'])}(/_history/[^/]+)?$", location),
        f"Location {location!r} does not name Patient/{body['id']}",
    )
    ctx.expect(response.headers.get("etag"), "the 201 has no ETag")
    ctx.expect(response.headers.get("last-modified"), "the 201 has no Last-Modified")
    ctx.expect(
        FHIR_JSON in response.headers.get("content-type", ""),
        f"Content-Type is {response.headers.get('content-type')!r}, not {FHIR_JSON}",
    )
    ctx.expect(body.get("gender") == "female", "the returned resource lost gender")
    meta = body.get("meta") or {}
    ctx.expect(
        meta.get("versionId") and meta.get("lastUpdated"),
        f"meta lacks versionId or lastUpdated: {meta}",
    )


@check(
    "crud.read",
    "GET Type/id returns the resource with its ETag and Last-Modified",
    needs=(("Patient", "create"), ("Patient", "read")),
)
def read(ctx: Context) -> None:
    created = ctx.create(patient(ctx, birthDate="1970-01-02"))
    response = ctx.client.get(f"Patient/{created['id']}")
    body = ctx.expect_status(response, 200, what="read")
    ctx.expect(
        body.get("id") == created["id"] and body.get("birthDate") == "1970-01-02",
        f"read returned {body}",
    )
    ctx.expect(
        etag_version(response.headers.get("etag")) == version_of(body),
        f"ETag {response.headers.get('etag')!r} does not match meta.versionId {version_of(body)!r}",
    )
    ctx.expect(response.headers.get("last-modified"), "no Last-Modified on read")


@check(
    "crud.update",
    "PUT Type/id stores the change as a new version",
    needs=(("Patient", "create"), ("Patient", "update"), ("Patient", "read")),
)
def update(ctx: Context) -> None:
    created = ctx.create(patient(ctx, gender="male"))
    changed = {**created, "gender": "other"}
    response = ctx.client.put(f"Patient/{created['id']}", changed)
    body = ctx.expect_status(response, 200, what="PUT of an existing resource")
    ctx.expect(
        body is None or version_of(body) != version_of(created),
        "the update did not change meta.versionId",
    )
    read_back = ctx.expect_status(
        ctx.client.get(f"Patient/{created['id']}"), 200, what="read after update"
    )
    ctx.expect(
        read_back.get("gender") == "other",
        f"read after update shows gender {read_back.get('gender')!r}",
    )
    ctx.expect(
        etag_version(response.headers.get("etag")) == version_of(read_back),
        "the update's ETag is not the new version",
    )


@check(
    "crud.update_create",
    "PUT with a new client-chosen id creates the resource (201)",
    needs=(("Patient", "update"),),
)
def update_create(ctx: Context) -> None:
    claims = ctx.claims.types["Patient"]
    if not claims.update_create:
        raise CheckSkipped("the server does not claim updateCreate on Patient")
    new_id = ctx.unique("kit").lower()
    response = ctx.client.put(f"Patient/{new_id}", ctx.stamp({**patient(ctx), "id": new_id}))
    body = ctx.expect_status(response, 201, what=f"PUT Patient/{new_id} (new)")
    ctx.track("Patient", new_id)
    ctx.expect(
        body is None or body.get("id") == new_id,
        f"the server changed the client's id to {body and body.get('id')}",
    )


@check(
    "crud.delete",
    "DELETE makes the resource gone: read answers 410, search no longer finds it",
    needs=(("Patient", "create"), ("Patient", "delete"), ("Patient", "read")),
)
def delete(ctx: Context) -> None:
    created = ctx.create(patient(ctx))
    ctx.expect_status(ctx.client.delete(f"Patient/{created['id']}"), 200, 202, 204, what="DELETE")
    ctx.expect_outcome(ctx.client.get(f"Patient/{created['id']}"), 410, what="read after delete")
    ident = created["identifier"][0]
    if ctx.claims.param("Patient", "identifier"):
        found = ctx.search("Patient", {"identifier": f"{ident['system']}|{ident['value']}"})
        ctx.expect(not found.get("entry"), "a search still finds the deleted resource")
    again = ctx.client.delete(f"Patient/{created['id']}")
    ctx.expect_status(again, 200, 202, 204, 404, 410, what="a second DELETE (idempotent)")


@check(
    "crud.prefer",
    "Prefer: return=minimal answers without a body; return=OperationOutcome with one",
    level="should",
    needs=(("Patient", "create"),),
)
def prefer(ctx: Context) -> None:
    minimal = ctx.client.post(
        "Patient", ctx.stamp(patient(ctx)), headers={"Prefer": "return=minimal"}
    )
    ctx.expect_status(minimal, 201, what="create with return=minimal")
    _track_location(ctx, minimal.headers.get("location", ""))
    ctx.expect(
        not minimal.content, f"return=minimal still sent a body of {len(minimal.content)} bytes"
    )
    outcome = ctx.client.post(
        "Patient", ctx.stamp(patient(ctx)), headers={"Prefer": "return=OperationOutcome"}
    )
    body = ctx.expect_status(outcome, 201, what="create with return=OperationOutcome")
    _track_location(ctx, outcome.headers.get("location", ""))
    ctx.expect(
        isinstance(body, dict) and body.get("resourceType") == "OperationOutcome",
        "return=OperationOutcome did not answer an OperationOutcome",
    )


def _track_location(ctx: Context, location: str) -> None:
    match = re.search(r"Patient/([A-Za-z0-9\-.]{1,64})", location)
    if match:
        ctx.track("Patient", match.group(1))
