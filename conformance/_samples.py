"""Sample resources (``data/samples.json``) to exercise what a server claims, one per type.

References inside the samples point at anchor resources (Organization, Practitioner, Patient,
Encounter, ServiceRequest) that the kit creates once per run; a type the server cannot create
keeps a placeholder id, which a server without referential integrity accepts anyway.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from conformance._context import Context

__all__ = ["sample_types", "anchors", "make_sample", "create_sample"]

SAMPLES_PATH = Path(__file__).parent / "data" / "samples.json"


@cache
def _data() -> dict[str, Any]:
    return json.loads(SAMPLES_PATH.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def sample_types() -> frozenset[str]:
    return frozenset(_data()["samples"])


def _fill(template: Any, values: dict[str, str]) -> Any:
    text = json.dumps(template)
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return json.loads(text)


def anchors(ctx: Context) -> dict[str, str]:
    """Placeholder → id of the run's anchor resources (created on first use)."""

    def build() -> dict[str, str]:
        values = {"run": ctx.run_id}
        for res_type in _data()["anchors"]:
            values[res_type] = f"absent-{ctx.run_id}"  # until (or unless) it is created
        for res_type in _data()["anchors"]:
            if ctx.claims.has(res_type, "create"):
                created = ctx.create(
                    _fill(_data()["samples"][res_type], values),
                    what=f"create the anchor {res_type}",
                )
                values[res_type] = created["id"]
        return values

    return ctx.cached("anchors", build)  # type: ignore[no-any-return]


def make_sample(ctx: Context, res_type: str) -> dict[str, Any]:
    """A fresh copy of the sample of ``res_type`` with the anchors filled in."""
    return _fill(_data()["samples"][res_type], anchors(ctx))  # type: ignore[no-any-return]


def create_sample(ctx: Context, res_type: str) -> dict[str, Any]:
    return ctx.create(make_sample(ctx, res_type), what=f"create a sample {res_type}")
