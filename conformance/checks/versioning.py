"""Versions: vread, ETag on every answer, If-Match (412 on a stale version), If-None-Match."""

from __future__ import annotations

from typing import Any

from conformance._context import Context
from conformance._registry import CheckSkipped, check
from conformance.checks._data import etag_version, patient, version_of


def _two_versions(ctx: Context) -> tuple[dict[str, Any], dict[str, Any]]:
    first = ctx.create(patient(ctx, gender="female"))
    response = ctx.client.put(f"Patient/{first['id']}", {**first, "gender": "male"})
    second = ctx.expect_status(response, 200, what="update")
    if not second:
        second = ctx.expect_status(ctx.client.get(f"Patient/{first['id']}"), 200, what="read")
    return first, second


@check(
    "versioning.vread",
    "vread returns each version as it was",
    needs=(("Patient", "create"), ("Patient", "update"), ("Patient", "vread")),
)
def vread(ctx: Context) -> None:
    first, second = _two_versions(ctx)
    ctx.expect(
        version_of(first) != version_of(second),
        f"both versions have versionId {version_of(first)!r}",
    )
    old = ctx.expect_status(
        ctx.client.get(f"Patient/{first['id']}/_history/{version_of(first)}"),
        200,
        what="vread of version 1",
    )
    ctx.expect(
        old.get("gender") == "female" and version_of(old) == version_of(first),
        f"vread of the first version gave {old}",
    )
    new = ctx.expect_status(
        ctx.client.get(f"Patient/{first['id']}/_history/{version_of(second)}"),
        200,
        what="vread of version 2",
    )
    ctx.expect(
        new.get("gender") == "male",
        f"vread of the second version gave gender {new.get('gender')!r}",
    )
    missing = ctx.client.get(f"Patient/{first['id']}/_history/999999")
    ctx.expect_outcome(missing, 404, what="vread of a version that does not exist")


@check(
    "versioning.etag",
    'ETag is W/"versionId" on create, read and update',
    needs=(("Patient", "create"), ("Patient", "update"), ("Patient", "read")),
)
def etag(ctx: Context) -> None:
    response = ctx.client.post("Patient", ctx.stamp(patient(ctx)))
    created = ctx.expect_status(response, 201, what="create")
    ctx.track("Patient", created["id"])
    tag = response.headers.get("etag", "")
    ctx.expect(
        tag.startswith('W/"') and etag_version(tag) == version_of(created),
        f'create\'s ETag {tag!r} is not W/"{version_of(created)}"',
    )
    updated = ctx.client.put(f"Patient/{created['id']}", {**created, "active": True})
    ctx.expect_status(updated, 200, what="update")
    read = ctx.client.get(f"Patient/{created['id']}")
    body = ctx.expect_status(read, 200, what="read")
    ctx.expect(
        read.headers.get("etag") == updated.headers.get("etag") == f'W/"{version_of(body)}"',
        f"update ETag {updated.headers.get('etag')!r}, read ETag {read.headers.get('etag')!r}, versionId {version_of(body)!r}",
    )


@check(
    "versioning.if_match",
    "If-Match with the current version updates; a stale one gets 412 and changes nothing",
    needs=(("Patient", "create"), ("Patient", "update"), ("Patient", "read")),
)
def if_match(ctx: Context) -> None:
    if ctx.claims.types["Patient"].versioning != "versioned-update":
        raise CheckSkipped("the server does not claim versioned-update (If-Match) on Patient")
    first, second = _two_versions(ctx)
    stale = ctx.client.put(
        f"Patient/{first['id']}",
        {**second, "gender": "unknown"},
        headers={"If-Match": f'W/"{version_of(first)}"'},
    )
    ctx.expect_outcome(stale, 409, 412, what="PUT with a stale If-Match")
    ctx.expect(
        stale.status_code == 412,
        f"a stale If-Match should be 412 Precondition Failed, got {stale.status_code}",
    )
    now = ctx.expect_status(
        ctx.client.get(f"Patient/{first['id']}"), 200, what="read after the refused update"
    )
    ctx.expect(now.get("gender") == "male", "the refused update changed the resource")
    fresh = ctx.client.put(
        f"Patient/{first['id']}",
        {**second, "gender": "unknown"},
        headers={"If-Match": f'W/"{version_of(second)}"'},
    )
    ctx.expect_status(fresh, 200, what="PUT with the current If-Match")


@check(
    "versioning.if_none_match",
    "GET with If-None-Match of the current version answers 304",
    level="should",
    needs=(("Patient", "create"), ("Patient", "read")),
)
def if_none_match(ctx: Context) -> None:
    created = ctx.create(patient(ctx))
    response = ctx.client.get(
        f"Patient/{created['id']}", headers={"If-None-Match": f'W/"{version_of(created)}"'}
    )
    ctx.expect_status(response, 304, what="conditional read")
