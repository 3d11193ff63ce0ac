"""Small builders for the resources the checks write (each with a run-unique identifier)."""

from __future__ import annotations

from typing import Any

from conformance._context import Context

__all__ = ["patient", "etag_version", "version_of"]


def patient(ctx: Context, label: str = "patient", **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [ctx.identifier(label)],
        "name": [{"family": f"Kit{ctx.run_id}", "given": [label]}],
        **extra,
    }


def etag_version(etag: str | None) -> str | None:
    """``W/"3"`` → ``3`` (None when there is no ETag)."""
    if not etag:
        return None
    return etag.strip().removeprefix("W/").strip('"')


def version_of(resource: dict[str, Any]) -> str | None:
    return (resource.get("meta") or {}).get("versionId")
