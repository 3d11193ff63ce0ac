"""History: instance (newest first, with the deletion), type and system history, _since, _count."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from conformance._context import Context
from conformance._registry import CheckFailed, check
from conformance.checks._data import patient, version_of


def _history(ctx: Context, path: str, params: dict[str, str] | None = None) -> dict[str, Any]:
    body = ctx.expect_status(ctx.client.get(path, params=params), 200, what=f"GET {path}")
    ctx.expect(
        isinstance(body, dict) and body.get("type") == "history",
        f"GET {path} did not answer a history Bundle",
    )
    return body  # type: ignore[no-any-return]


def _three_versions(ctx: Context) -> dict[str, Any]:
    created = ctx.create(patient(ctx, gender="male"))
    ctx.expect_status(
        ctx.client.put(f"Patient/{created['id']}", {**created, "gender": "female"}),
        200,
        what="update",
    )
    ctx.expect_status(ctx.client.delete(f"Patient/{created['id']}"), 200, 202, 204, what="delete")
    return created


@check(
    "history.instance",
    "instance history lists every version newest first, the deletion included",
    needs=(
        ("Patient", "create"),
        ("Patient", "update"),
        ("Patient", "delete"),
        ("Patient", "history-instance"),
    ),
)
def instance(ctx: Context) -> None:
    created = _three_versions(ctx)
    bundle = _history(ctx, f"Patient/{created['id']}/_history")
    entries = bundle.get("entry") or []
    ctx.expect(
        len(entries) == 3,
        f"expected 3 history entries (create, update, delete), got {len(entries)}",
    )
    methods = [(e.get("request") or {}).get("method") for e in entries]
    ctx.expect(
        methods == ["DELETE", "PUT", "POST"],
        f"history request methods are {methods}, expected DELETE, PUT, POST (newest first)",
    )
    ctx.expect("resource" not in entries[0], "the deletion entry should carry no resource")
    versions = [version_of(e.get("resource") or {}) for e in entries[1:]]
    ctx.expect(
        versions[0] != versions[1] and versions[1] == version_of(created),
        f"history versions are {versions}",
    )
    ctx.expect(
        all("response" in e or "request" in e for e in entries),
        "history entries need request/response",
    )
    if "total" in bundle:
        ctx.expect(bundle["total"] == 3, f"history total is {bundle['total']}, not 3")


@check(
    "history.type_since",
    "type history with _since finds this run's changes and nothing older",
    needs=(("Patient", "create"), ("Patient", "history-type")),
)
def type_since(ctx: Context) -> None:
    created = ctx.create(patient(ctx))
    since = _since(created, -2)
    bundle = _history(ctx, "Patient/_history", {"_since": since, "_count": "1000"})
    ids = [(e.get("resource") or {}).get("id") for e in bundle.get("entry") or []]
    ctx.expect(
        created["id"] in ids or _in_later_pages(bundle),
        f"Patient/_history?_since={since} misses Patient/{created['id']}",
    )
    future = _history(ctx, "Patient/_history", {"_since": _since(created, +3600)})
    ctx.expect(not future.get("entry"), "_since in the future still lists entries")


@check(
    "history.count",
    "_count pages history with a next link",
    needs=(("Patient", "create"), ("Patient", "update"), ("Patient", "history-instance")),
)
def count(ctx: Context) -> None:
    created = ctx.create(patient(ctx))
    ctx.expect_status(
        ctx.client.put(f"Patient/{created['id']}", {**created, "active": True}), 200, what="update"
    )
    page = _history(ctx, f"Patient/{created['id']}/_history", {"_count": "1"})
    ctx.expect(
        len(page.get("entry") or []) == 1, f"_count=1 gave {len(page.get('entry') or [])} entries"
    )
    nxt = next(
        (link["url"] for link in page.get("link", []) if link.get("relation") == "next"), None
    )
    if nxt is None:
        raise CheckFailed("no next link on the first of two history pages")
    second = ctx.expect_status(ctx.client.get(nxt), 200, what="history next page")
    ctx.expect(
        len(second.get("entry") or []) == 1,
        "the second history page does not hold the older version",
    )


@check("history.system", "system history with _since finds this run's changes")
def system(ctx: Context) -> None:
    ctx.require_system("history-system")
    ctx.require("Patient", "create")
    created = ctx.create(patient(ctx))
    bundle = _history(ctx, "_history", {"_since": _since(created, -2), "_count": "1000"})
    refs = [
        f"{(e.get('resource') or {}).get('resourceType')}/{(e.get('resource') or {}).get('id')}"
        for e in bundle.get("entry") or []
    ]
    ctx.expect(
        f"Patient/{created['id']}" in refs or _in_later_pages(bundle),
        "system history misses the new Patient",
    )


def _since(resource: dict[str, Any], offset_seconds: int) -> str:
    stamp = (resource.get("meta") or {}).get("lastUpdated")
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00")) if stamp else datetime.now(UTC)
    return (
        (moment + timedelta(seconds=offset_seconds)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    )


def _in_later_pages(bundle: dict[str, Any]) -> bool:
    # a server may page below _count=1000 on a busy shared server; then absence proves nothing
    return any(link.get("relation") == "next" for link in bundle.get("link", []))
