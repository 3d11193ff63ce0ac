"""Conditional create (also under concurrency), conditional update and delete."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from conformance._context import Context
from conformance._registry import CheckSkipped, check
from conformance.checks._data import patient


def _criteria(ident: dict[str, str]) -> str:
    return f"identifier={ident['system']}|{ident['value']}"


def _require_conditional_create(ctx: Context) -> None:
    ctx.require("Patient", "create")
    ctx.require_param("Patient", "identifier")
    if not ctx.claims.types["Patient"].conditional_create:
        raise CheckSkipped("the server does not claim conditionalCreate on Patient")


@check(
    "conditional.create",
    "If-None-Exist returns the existing match (200) instead of creating another",
)
def create(ctx: Context) -> None:
    _require_conditional_create(ctx)
    first = ctx.create(patient(ctx))
    headers = {"If-None-Exist": _criteria(first["identifier"][0])}
    again = ctx.client.post(
        "Patient", ctx.stamp(patient(ctx) | {"identifier": first["identifier"]}), headers=headers
    )
    body = ctx.expect_status(again, 200, what="conditional create with one match")
    ctx.expect(
        body is None or body.get("id") == first["id"],
        f"the conditional create answered {body and body.get('id')}, not the match {first['id']}",
    )
    found = ctx.search("Patient", {"identifier": headers["If-None-Exist"].split("=", 1)[1]})
    ctx.expect(
        len(found.get("entry") or []) == 1,
        f"{len(found.get('entry') or [])} Patients carry the identifier",
    )


@check(
    "conditional.create_race",
    "concurrent identical If-None-Exist creates leave exactly one resource",
)
def create_race(ctx: Context) -> None:
    _require_conditional_create(ctx)
    ident = ctx.identifier("race")
    body = ctx.stamp(patient(ctx) | {"identifier": [ident]})
    headers = {"If-None-Exist": _criteria(ident)}

    def post(_: int) -> tuple[int, str | None]:
        response = ctx.client.post("Patient", body, headers=headers)
        try:
            return response.status_code, response.json().get("id")
        except ValueError:
            return response.status_code, None

    with ThreadPoolExecutor(max_workers=min(ctx.race_size, 16)) as pool:
        results = list(pool.map(post, range(ctx.race_size)))
    found = ctx.search("Patient", {"identifier": f"{ident['system']}|{ident['value']}"})
    ids = {e["resource"]["id"] for e in found.get("entry") or []}
    for res_id in ids:
        ctx.track("Patient", res_id)
    statuses = sorted(s for s, _ in results)
    ctx.expect(
        len(ids) == 1,
        f"{ctx.race_size} concurrent conditional creates left {len(ids)} Patients (statuses {statuses})",
    )
    ctx.expect(
        statuses.count(201) == 1 and set(statuses) <= {200, 201},
        f"expected one 201 and the rest 200, got {statuses}",
    )
    ctx.expect(
        {i for _, i in results if i} == ids,
        "some answers named a resource other than the one stored",
    )


@check(
    "conditional.create_ambiguous", "If-None-Exist matching several resources is refused with 412"
)
def create_ambiguous(ctx: Context) -> None:
    _require_conditional_create(ctx)
    ident = ctx.identifier("twice")
    ctx.create(patient(ctx) | {"identifier": [ident]})
    ctx.create(patient(ctx) | {"identifier": [ident]})
    response = ctx.client.post(
        "Patient",
        ctx.stamp(patient(ctx) | {"identifier": [ident]}),
        headers={"If-None-Exist": _criteria(ident)},
    )
    ctx.expect_outcome(response, 412, what="conditional create with two matches")


@check(
    "conditional.update", "PUT Type?criteria creates when nothing matches, then updates the match"
)
def update(ctx: Context) -> None:
    ctx.require("Patient", "update")
    ctx.require_param("Patient", "identifier")
    if not ctx.claims.types["Patient"].conditional_update:
        raise CheckSkipped("the server does not claim conditionalUpdate on Patient")
    ident = ctx.identifier("cond-update")
    url = f"Patient?{_criteria(ident)}"
    created = ctx.client.put(
        url, ctx.stamp(patient(ctx) | {"identifier": [ident], "gender": "male"})
    )
    first = ctx.expect_status(created, 201, what="conditional update with no match")
    ctx.track("Patient", first["id"])
    updated = ctx.client.put(
        url, ctx.stamp(patient(ctx) | {"identifier": [ident], "gender": "female"})
    )
    second = ctx.expect_status(updated, 200, what="conditional update with one match")
    ctx.expect(
        second.get("id") == first["id"] and second.get("gender") == "female",
        f"the conditional update answered {second}",
    )


@check("conditional.delete", "DELETE Type?criteria deletes the match")
def delete(ctx: Context) -> None:
    ctx.require("Patient", "delete")
    ctx.require_param("Patient", "identifier")
    if ctx.claims.types["Patient"].conditional_delete in ("not-supported", ""):
        raise CheckSkipped("the server does not claim conditionalDelete on Patient")
    created = ctx.create(patient(ctx))
    ident = created["identifier"][0]
    response = ctx.client.delete(f"Patient?{_criteria(ident)}")
    ctx.expect_status(response, 200, 202, 204, what="conditional delete")
    ctx.expect_status(
        ctx.client.get(f"Patient/{created['id']}"), 404, 410, what="read after conditional delete"
    )
