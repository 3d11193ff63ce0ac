"""The data the search checks share: three Patients, two Encounters, two Observations, created once
per run with run-unique names, identifiers and codes, so results can be compared exactly."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from conformance._context import Context, match_ids

__all__ = ["SearchData", "search_data", "expect_ids"]

UCUM = "http://unitsofmeasure.org"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"


@dataclass(frozen=True, slots=True)
class SearchData:
    prefix: str  # begins every family name of the run
    system: str  # the run's identifier and code system
    p1: dict[str, Any]
    p2: dict[str, Any]
    p3: dict[str, Any]
    e1: dict[str, Any] | None
    e2: dict[str, Any] | None
    o1: dict[str, Any] | None
    o2: dict[str, Any] | None

    def ids(self, *names: str) -> set[str]:
        return {getattr(self, n)["id"] for n in names}


def _system(ctx: Context) -> str:
    return f"http://kit.invalid/{ctx.run_id}/search-ids"  # only the search data uses it


def _patient(ctx: Context, prefix: str, family: str, value: str, **extra: Any) -> dict[str, Any]:
    resource = {
        "resourceType": "Patient",
        "identifier": [{"system": _system(ctx), "value": value}],
        "name": [{"family": f"{prefix}{family}", "given": [family[::-1].capitalize()]}],
        **extra,
    }
    return ctx.create(resource, what=f"create search Patient {value}")


def _encounter(ctx: Context, subject: dict[str, Any], status: str) -> dict[str, Any] | None:
    if not ctx.claims.has("Encounter", "create"):
        return None
    return ctx.create(
        {
            "resourceType": "Encounter",
            "status": status,
            "class": {"system": ACT_CODE, "code": "IMP"},
            "subject": {"reference": f"Patient/{subject['id']}"},
        }
    )


def _observation(
    ctx: Context,
    prefix: str,
    subject: dict[str, Any],
    encounter: dict[str, Any] | None,
    value: float,
) -> dict[str, Any] | None:
    if not ctx.claims.has("Observation", "create"):
        return None
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "code": {
            "coding": [
                {"system": _system(ctx), "code": "glucose", "display": f"Glucose {prefix} level"}
            ]
        },
        "subject": {"reference": f"Patient/{subject['id']}"},
        "valueQuantity": {"value": value, "unit": "mg/dL", "system": UCUM, "code": "mg/dL"},
    }
    if encounter:
        resource["encounter"] = {"reference": f"Encounter/{encounter['id']}"}
    return ctx.create(resource)


def _build(ctx: Context) -> SearchData:
    ctx.require("Patient", "create", "search-type")
    prefix = f"Zq{ctx.run_id}"
    p1 = _patient(ctx, prefix, "Okafor", "p1", gender="female", birthDate="1980-05-17", active=True)
    p2 = _patient(ctx, prefix, "Okamoto", "p2", gender="male", birthDate="1975-12-01", active=False)
    p3 = _patient(ctx, prefix, "Nguyen", "p3", gender="other", birthDate="1980-11-30")
    e1 = _encounter(ctx, p1, "finished")
    e2 = _encounter(ctx, p2, "in-progress")
    o1 = _observation(ctx, prefix, p1, e1, 5.4)
    o2 = _observation(ctx, prefix, p1, None, 7.2)
    return SearchData(prefix, _system(ctx), p1, p2, p3, e1, e2, o1, o2)


def search_data(ctx: Context) -> SearchData:
    return ctx.cached("search-data", lambda: _build(ctx))  # type: ignore[no-any-return]


def expect_ids(
    ctx: Context, res_type: str, params: list[tuple[str, str]], expected: set[str], what: str = ""
) -> dict[str, Any]:
    """One sub-case: the search matches exactly ``expected``. A failure (wrong matches or an
    error answer) is recorded and the check goes on to its next case; the bundle ({} then) is
    returned for further looks."""
    query = "&".join(f"{k}={v}" for k, v in params)
    bundle: dict[str, Any] = {}
    with ctx.subcase(what):
        bundle = ctx.search(
            res_type,
            [*params, ("_count", "100")],
            what=f"{what + ': ' if what else ''}{res_type}?{query}",
        )
        got = set(match_ids(bundle, res_type))
        ctx.expect(
            got == expected,
            f"{what + ': ' if what else ''}{res_type}?{query} matched {sorted(got)}, expected {sorted(expected)}",
        )
    return bundle
