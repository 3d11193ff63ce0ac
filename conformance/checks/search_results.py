"""What a search returns: _include/_revinclude (and :iterate), paging (also while data changes),
_total, _summary=count, _sort, _elements, POST _search, and the searchset's shape."""

from __future__ import annotations

from typing import Any

from conformance._context import Context, included, match_ids
from conformance._registry import CheckSkipped, check
from conformance.checks._searchdata import expect_ids, search_data


def _next(bundle: dict[str, Any]) -> str | None:
    return next(
        (link["url"] for link in bundle.get("link", []) if link.get("relation") == "next"), None
    )


def _encounters(ctx: Context):  # type: ignore[no-untyped-def]
    ctx.require("Encounter", "search-type")
    d = search_data(ctx)
    if d.e1 is None:
        raise CheckSkipped("the server does not claim create on Encounter")
    return d


@check("search.include", "_include adds the referenced resource with search.mode include")
def include(ctx: Context) -> None:
    d = _encounters(ctx)
    if not ctx.claims.includes("Encounter", "Encounter:subject"):
        raise CheckSkipped("the server does not claim _include=Encounter:subject")
    bundle = expect_ids(
        ctx, "Encounter", [("_id", d.e1["id"]), ("_include", "Encounter:subject")], d.ids("e1")
    )
    ctx.expect(
        f"Patient/{d.p1['id']}" in included(bundle),
        f"_include=Encounter:subject did not include Patient/{d.p1['id']} (included: {sorted(included(bundle))})",
    )


@check("search.revinclude", "_revinclude adds the resources that point at the matches")
def revinclude(ctx: Context) -> None:
    d = _encounters(ctx)
    if not ctx.claims.revincludes("Patient", "Encounter:subject"):
        raise CheckSkipped("the server does not claim _revinclude=Encounter:subject on Patient")
    bundle = expect_ids(
        ctx, "Patient", [("_id", d.p1["id"]), ("_revinclude", "Encounter:subject")], d.ids("p1")
    )
    ctx.expect(
        f"Encounter/{d.e1['id']}" in included(bundle),
        f"_revinclude did not add Encounter/{d.e1['id']} (included: {sorted(included(bundle))})",
    )


@check(
    "search.include_iterate",
    "_include:iterate follows references of included resources",
    level="should",
)
def include_iterate(ctx: Context) -> None:
    d = _encounters(ctx)
    if d.o1 is None:
        raise CheckSkipped("the server does not claim create on Observation")
    params = [
        ("_id", d.o1["id"]),
        ("_include", "Observation:encounter"),
        ("_include:iterate", "Encounter:subject"),
    ]
    bundle = expect_ids(ctx, "Observation", params, d.ids("o1"))
    want = {f"Encounter/{d.e1['id']}", f"Patient/{d.p1['id']}"}
    ctx.expect(
        want <= included(bundle), f"included {sorted(included(bundle))}, expected {sorted(want)}"
    )


def _paged_data(ctx: Context, label: str = "Pg") -> tuple[str, list[str]]:
    """Seven Patients sharing a run-unique family name (one set per label)."""

    def build() -> tuple[str, list[str]]:
        ctx.require("Patient", "create", "search-type")
        ctx.require_param("Patient", "family")
        family = f"{label}{ctx.run_id}"
        ids = [
            ctx.create(
                {"resourceType": "Patient", "name": [{"family": family, "given": [f"n{i}"]}]}
            )["id"]
            for i in range(7)
        ]
        return family, ids

    return ctx.cached(f"paged-data-{label}", build)  # type: ignore[no-any-return]


def _walk(ctx: Context, first: dict[str, Any], limit: int = 20) -> tuple[list[str], int]:
    ids, pages, bundle = list(match_ids(first, "Patient")), 1, first
    while (url := _next(bundle)) and pages < limit:
        bundle = ctx.expect_status(ctx.client.get(url), 200, what="GET next page")
        ids += match_ids(bundle, "Patient")
        pages += 1
    return ids, pages


@check("search.paging", "_count pages the matches; next links visit each exactly once")
def paging(ctx: Context) -> None:
    family, expected = _paged_data(ctx)
    first = ctx.search("Patient", {"family": family, "_count": "3"})
    ctx.expect(
        len(first.get("entry") or []) == 3, f"_count=3 gave {len(first.get('entry') or [])} entries"
    )
    ctx.expect(
        any(link.get("relation") == "self" for link in first.get("link", [])),
        "the searchset has no self link",
    )
    ids, pages = _walk(ctx, first)
    ctx.expect(
        sorted(ids) == sorted(expected),
        f"paging visited {len(ids)} entries ({len(set(ids))} distinct) for 7 matches",
    )
    ctx.expect(pages == 3, f"7 matches at _count=3 took {pages} pages")


@check(
    "search.paging_stable",
    "next links stay correct while matching data is added and removed",
    level="should",
)
def paging_stable(ctx: Context) -> None:
    family, expected = _paged_data(ctx, "Ps")  # its own set: this check changes it
    first = ctx.search("Patient", {"family": family, "_count": "3"})
    seen = match_ids(first, "Patient")
    ctx.require("Patient", "delete")
    ctx.expect_status(
        ctx.client.delete(f"Patient/{seen[0]}"), 200, 202, 204, what="delete a seen match"
    )
    ctx.create({"resourceType": "Patient", "name": [{"family": family, "given": ["late"]}]})
    rest, _ = _walk(ctx, first)
    rest = rest[len(seen) :]
    missing = set(expected) - set(seen) - set(rest)
    repeated = set(seen) & set(rest)
    ctx.expect(
        not missing and not repeated,
        f"after a change between pages: skipped {sorted(missing)}, repeated {sorted(repeated)}",
    )


@check(
    "search.total",
    "_total=accurate counts all matches; _summary=count gives the count without entries",
)
def total(ctx: Context) -> None:
    family, expected = _paged_data(ctx)
    accurate = ctx.search("Patient", {"family": family, "_count": "2", "_total": "accurate"})
    ctx.expect(
        accurate.get("total") == len(expected),
        f"_total=accurate gave total {accurate.get('total')!r}, expected {len(expected)}",
    )
    count = ctx.search("Patient", {"family": family, "_summary": "count"})
    ctx.expect(
        count.get("total") == len(expected) and not count.get("entry"),
        f"_summary=count gave total {count.get('total')!r} and {len(count.get('entry') or [])} entries",
    )


@check(
    "search.count_zero",
    "_count=0 answers the total and no entries (as clients like fhirpy expect)",
    level="should",
)
def count_zero(ctx: Context) -> None:
    family, expected = _paged_data(ctx)
    bundle = ctx.search("Patient", {"family": family, "_count": "0"})
    ctx.expect(
        bundle.get("total") == len(expected) and not bundle.get("entry"),
        f"_count=0 gave total {bundle.get('total')!r} and {len(bundle.get('entry') or [])} entries",
    )


@check("search.sort", "_sort orders by one or more keys, - for descending", level="should")
def sort(ctx: Context) -> None:
    ctx.require_param("Patient", "birthdate", "name")
    d = search_data(ctx)
    order = [d.p2["id"], d.p1["id"], d.p3["id"]]
    up = match_ids(ctx.search("Patient", {"name": d.prefix, "_sort": "birthdate"}), "Patient")
    ctx.expect(up == order, f"_sort=birthdate gave {up}, expected {order}")
    down = match_ids(ctx.search("Patient", {"name": d.prefix, "_sort": "-birthdate"}), "Patient")
    ctx.expect(down == order[::-1], f"_sort=-birthdate gave {down}, expected {order[::-1]}")
    two = match_ids(
        ctx.search("Patient", {"name": d.prefix, "_sort": "gender,-birthdate"}), "Patient"
    )
    by_gender = [d.p1["id"], d.p2["id"], d.p3["id"]]  # female, male, other
    ctx.expect(two == by_gender, f"_sort=gender,-birthdate gave {two}, expected {by_gender}")


@check(
    "search.elements", "_elements returns only the asked elements, marked SUBSETTED", level="should"
)
def elements(ctx: Context) -> None:
    ctx.require_param("Patient", "_id")
    d = search_data(ctx)
    bundle = ctx.search("Patient", {"_id": d.p1["id"], "_elements": "birthDate"})
    resource = ((bundle.get("entry") or [{}])[0]).get("resource") or {}
    ctx.expect(
        resource.get("birthDate") == "1980-05-17" and "name" not in resource,
        f"_elements=birthDate returned keys {sorted(resource)}",
    )
    tags = (resource.get("meta") or {}).get("tag", [])
    ctx.expect(
        any(t.get("code") == "SUBSETTED" for t in tags),
        "the subsetted resource lacks the SUBSETTED tag",
    )


@check("search.post", "POST Type/_search with a form body answers as GET does")
def post(ctx: Context) -> None:
    ctx.require_param("Patient", "name")
    d = search_data(ctx)
    response = ctx.client.request(
        "POST",
        "Patient/_search",
        content=f"name={d.prefix}oka&_count=100",
        content_type="application/x-www-form-urlencoded",
    )
    body = ctx.expect_status(response, 200, what="POST Patient/_search")
    got = set(match_ids(body, "Patient"))
    ctx.expect(
        got == d.ids("p1", "p2"),
        f"POST _search matched {sorted(got)}, expected {sorted(d.ids('p1', 'p2'))}",
    )


@check("search.bundle_shape", "a searchset has self link, fullUrl on each entry and search.mode")
def bundle_shape(ctx: Context) -> None:
    ctx.require_param("Patient", "name")
    d = search_data(ctx)
    bundle = ctx.search("Patient", {"name": d.prefix})
    ctx.expect(
        any(link.get("relation") == "self" for link in bundle.get("link", [])), "no self link"
    )
    for entry in bundle.get("entry") or []:
        resource = entry.get("resource") or {}
        full_url = entry.get("fullUrl", "")
        ctx.expect(
            full_url.endswith(f"{resource.get('resourceType')}/{resource.get('id')}"),
            f"entry fullUrl {full_url!r} does not name its resource",
        )
        ctx.expect(
            (entry.get("search") or {}).get("mode") in ("match", "include", "outcome"),
            "an entry lacks search.mode",
        )
