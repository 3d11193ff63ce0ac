"""The CapabilityStatement tells the truth: the statement itself is valid, and every resource type,
interaction, search parameter, _include/_revinclude, patch format and system interaction it
claims works. A claim that fails is a failure (one check per type and kind of claim)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

from conformance._context import Context, included, match_ids
from conformance._probes import ParamDef, definition, no_match_value, probe_value
from conformance._registry import Check, CheckFailed, CheckSkipped, check, family
from conformance._samples import anchors, create_sample, make_sample, sample_types
from conformance.checks._data import version_of
from conformance.schema import schema_issues

JSON_PATCH = "application/json-patch+json"
_UNPROBED = {"_text", "_content", "_list", "_query", "_filter", "_has", "_type"}


@check("capability.statement", "GET /metadata is a valid R4 CapabilityStatement for a server")
def statement(ctx: Context) -> None:
    cs = ctx.claims.statement
    issues = schema_issues(cs)
    ctx.expect(
        not issues,
        "the CapabilityStatement breaks the R4 JSON schema: " + "; ".join(map(str, issues[:5])),
    )
    ctx.expect(
        str(cs.get("fhirVersion", "")).startswith("4.0"),
        f"fhirVersion is {cs.get('fhirVersion')!r}, not 4.0.x",
    )
    ctx.expect(
        any(f in cs.get("format", []) for f in ("json", "application/fhir+json")),
        "format does not list json",
    )
    ctx.expect(
        any(r.get("mode") == "server" for r in cs.get("rest", [])), "no rest entry with mode server"
    )
    ctx.expect(ctx.claims.types, "no resource types are claimed")


class _Failures:
    """Collects every broken claim of one check, so one run shows them all."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def attempt(self, label: str, step: Callable[[], Any]) -> Any:
        try:
            return step()
        except CheckFailed as exc:
            self.items.append(f"{label}: {exc}")
        except CheckSkipped:
            pass
        return None

    def raise_any(self, total: int) -> None:
        if self.items:
            raise CheckFailed(
                f"{len(self.items)} of {total} claims fail — " + " | ".join(self.items)
            )


# -- interactions ------------------------------------------------------------------------------


def _interactions(ctx: Context, res_type: str) -> None:
    claims = ctx.claims.types[res_type]
    have = claims.interactions
    if "create" not in have:
        _read_only(ctx, res_type)
        return
    if res_type not in sample_types():
        raise CheckSkipped(
            f"the kit has no sample {res_type} to exercise create/read/update/delete"
        )
    fails = _Failures()
    created = create_sample(ctx, res_type)
    path = f"{res_type}/{created['id']}"
    steps: list[tuple[str, Callable[[], Any]]] = []
    if "read" in have:
        steps.append(("read", lambda: _expect_id(ctx, ctx.client.get(path), created["id"], "read")))
    if "vread" in have and version_of(created):
        steps.append(
            (
                "vread",
                lambda: _expect_id(
                    ctx,
                    ctx.client.get(f"{path}/_history/{version_of(created)}"),
                    created["id"],
                    "vread",
                ),
            )
        )
    if "update" in have:
        steps.append(
            (
                "update",
                lambda: ctx.expect_status(
                    ctx.client.put(path, {**created, "language": "en"}), 200, what="update"
                ),
            )
        )
    if "patch" in have:
        steps.append(("patch", lambda: _patch(ctx, path)))
    if "history-instance" in have:
        steps.append(("history-instance", lambda: _history_has(ctx, f"{path}/_history")))
    if "history-type" in have:
        steps.append(
            (
                "history-type",
                lambda: _history_has(
                    ctx, f"{res_type}/_history", {"_count": "1"}, expect_entries=False
                ),
            )
        )
    if "search-type" in have and ctx.claims.param(res_type, "_id"):
        steps.append(
            (
                "search-type",
                lambda: ctx.expect(
                    created["id"] in match_ids(ctx.search(res_type, {"_id": created["id"]})),
                    f"{res_type}?_id= does not find the new resource",
                ),
            )
        )
    if claims.conditional_create and ctx.claims.param(res_type, "_id"):
        steps.append(("conditionalCreate", lambda: _conditional_create(ctx, res_type, created)))
    if claims.conditional_update and ctx.claims.param(res_type, "_id"):
        steps.append(("conditionalUpdate", lambda: _conditional_update(ctx, res_type, created)))
    if claims.update_create and "update" in have:
        steps.append(("updateCreate", lambda: _update_create(ctx, res_type)))
    if "delete" in have:
        steps.append(("delete", lambda: _delete(ctx, path)))
    if claims.conditional_delete not in ("", "not-supported") and ctx.claims.param(res_type, "_id"):
        steps.append(("conditionalDelete", lambda: _conditional_delete(ctx, res_type)))
    for label, step in steps:
        fails.attempt(label, step)
    fails.raise_any(len(steps) + 1)


def _read_only(ctx: Context, res_type: str) -> None:
    have = ctx.claims.types[res_type].interactions
    fails = _Failures()
    if "search-type" in have:
        fails.attempt("search-type", lambda: ctx.search(res_type, {"_count": "1"}))
    if "history-type" in have:
        fails.attempt(
            "history-type",
            lambda: _history_has(
                ctx, f"{res_type}/_history", {"_count": "1"}, expect_entries=False
            ),
        )
    fails.raise_any(2)


def _expect_id(ctx: Context, response: Any, res_id: str, what: str) -> None:
    body = ctx.expect_status(response, 200, what=what)
    ctx.expect(
        isinstance(body, dict) and body.get("id") == res_id, f"{what} returned another resource"
    )


def _patch(ctx: Context, path: str) -> None:
    if not ctx.claims.patch_formats or JSON_PATCH in ctx.claims.patch_formats:
        ops = json.dumps([{"op": "add", "path": "/language", "value": "de"}])
        response = ctx.client.request("PATCH", path, content=ops, content_type=JSON_PATCH)
    else:
        params = {
            "resourceType": "Parameters",
            "parameter": [
                {
                    "name": "operation",
                    "part": [
                        {"name": "type", "valueCode": "add"},
                        {"name": "path", "valueString": path.split("/")[0]},
                        {"name": "name", "valueString": "language"},
                        {"name": "value", "valueCode": "de"},
                    ],
                }
            ],
        }
        response = ctx.client.patch(path, params)
    ctx.expect_status(response, 200, what="patch")
    now = ctx.expect_status(ctx.client.get(path), 200, what="read after patch")
    ctx.expect(now.get("language") == "de", "the patch was not applied")


def _history_has(
    ctx: Context, path: str, params: dict[str, str] | None = None, *, expect_entries: bool = True
) -> None:
    body = ctx.expect_status(ctx.client.get(path, params=params), 200, what=f"GET {path}")
    ctx.expect(
        isinstance(body, dict) and body.get("type") == "history",
        f"GET {path} is not a history Bundle",
    )
    ctx.expect(not expect_entries or body.get("entry"), f"GET {path} has no entries")


def _conditional_create(ctx: Context, res_type: str, created: dict[str, Any]) -> None:
    response = ctx.client.post(
        res_type,
        ctx.stamp(make_sample(ctx, res_type)),
        headers={"If-None-Exist": f"_id={created['id']}"},
    )
    body = ctx.expect_status(response, 200, what="If-None-Exist matching an existing resource")
    ctx.expect(
        body is None or body.get("id") == created["id"],
        "the conditional create did not answer the match",
    )


def _conditional_update(ctx: Context, res_type: str, created: dict[str, Any]) -> None:
    body = {**make_sample(ctx, res_type), "id": created["id"]}
    answer = ctx.expect_status(
        ctx.client.put(f"{res_type}?_id={created['id']}", ctx.stamp(body)),
        200,
        what="conditional update",
    )
    ctx.expect(
        answer is None or answer.get("id") == created["id"],
        "the conditional update changed another resource",
    )


def _update_create(ctx: Context, res_type: str) -> None:
    new_id = ctx.unique("uc").lower()
    response = ctx.client.put(
        f"{res_type}/{new_id}", ctx.stamp({**make_sample(ctx, res_type), "id": new_id})
    )
    ctx.expect_status(response, 201, what="PUT to a new id (updateCreate)")
    ctx.track(res_type, new_id)


def _delete(ctx: Context, path: str) -> None:
    ctx.expect_status(ctx.client.delete(path), 200, 202, 204, what="delete")
    ctx.expect_status(ctx.client.get(path), 404, 410, what="read after delete")


def _conditional_delete(ctx: Context, res_type: str) -> None:
    other = create_sample(ctx, res_type)
    ctx.expect_status(
        ctx.client.delete(f"{res_type}?_id={other['id']}"), 200, 202, 204, what="conditional delete"
    )
    ctx.expect_status(
        ctx.client.get(f"{res_type}/{other['id']}"), 404, 410, what="read after conditional delete"
    )


# -- search parameters -------------------------------------------------------------------------


def _type_sample(ctx: Context, res_type: str) -> dict[str, Any]:
    return ctx.cached(f"sample-{res_type}", lambda: create_sample(ctx, res_type))  # type: ignore[no-any-return]


def _search_params(ctx: Context, res_type: str) -> None:
    claims = ctx.claims.types[res_type]
    if "search-type" not in claims.interactions:
        raise CheckSkipped(f"the server does not claim search-type on {res_type}")
    has_sample = res_type in sample_types() and "create" in claims.interactions
    sample = _type_sample(ctx, res_type) if has_sample else None
    params = []
    for name, ptype in sorted(claims.params.items()):
        param = definition(res_type, name, claims.definitions.get(name))
        if name not in _UNPROBED and param is not None and param.type == ptype:
            params.append((name, param))
    if not params:
        raise CheckSkipped(
            f"no claimed search parameter of {res_type} has an R4 definition to probe"
        )
    fails = _Failures()
    for name, param in params:
        fails.attempt(
            f"{name} ({param.type})",
            partial(_probe_no_match, ctx, res_type, name, param, sample),
        )
    if sample is not None:
        _probe_matches(ctx, res_type, params, sample, fails)
    fails.raise_any(len(params))


def _narrow(
    ctx: Context, res_type: str, name: str, sample: dict[str, Any] | None
) -> list[tuple[str, str]]:
    return (
        [("_id", sample["id"])]
        if sample and ctx.claims.param(res_type, "_id") and name != "_id"
        else []
    )


def _probe_no_match(
    ctx: Context, res_type: str, name: str, param: ParamDef, sample: dict[str, Any] | None
) -> None:
    """A value nothing has must be accepted and match nothing: a 400 or an ignored parameter fails."""
    nothing = no_match_value(param, ctx.run_id, ctx.claims.types)
    if nothing is None:
        return
    bundle = ctx.search(
        res_type,
        [(name, nothing), *_narrow(ctx, res_type, name, sample)],
        what=f"{res_type}?{name}={nothing}",
    )
    if sample is not None:
        ctx.expect(
            sample["id"] not in match_ids(bundle),
            f"{name}={nothing} still matches the sample: the parameter is ignored",
        )


def _probe_matches(
    ctx: Context,
    res_type: str,
    params: list[tuple[str, ParamDef]],
    sample: dict[str, Any],
    fails: _Failures,
) -> None:
    """The sample must match each value it has; all of them ANDed in one search first, one by one
    only when that search misses (to name the parameters that fail)."""
    values = [(n, v) for n, p in params if (v := probe_value(res_type, p, sample)) is not None]
    if not values:
        return
    narrow = [("_id", sample["id"])] if ctx.claims.param(res_type, "_id") else []
    combined = ctx.client.get(res_type, params=[*values, *narrow])
    if combined.status_code == 200 and sample["id"] in match_ids(combined.json()):
        return

    def finds_sample(n: str, v: str) -> None:
        ctx.expect(
            sample["id"]
            in match_ids(ctx.search(res_type, [(n, v), *narrow], what=f"{res_type}?{n}={v}")),
            f"{res_type}?{n}={v} does not find the sample that has that value",
        )

    for name, value in values:
        fails.attempt(f"{name}={value}", partial(finds_sample, name, value))


# -- _include / _revinclude --------------------------------------------------------------------


def _includes(ctx: Context, res_type: str) -> None:
    claims = ctx.claims.types[res_type]
    wanted = sorted(i for i in claims.includes if i != "*")
    if not wanted or "search-type" not in claims.interactions:
        raise CheckSkipped(f"no _include claimed on {res_type}")
    has_sample = res_type in sample_types() and "create" in claims.interactions
    sample = _type_sample(ctx, res_type) if has_sample else None
    base = [("_id", sample["id"])] if sample else [("_count", "1")]
    known = {f"{t}/{i}" for t, i in anchors(ctx).items() if t != "run"}
    expected = {
        inc: target
        for inc in wanted
        if sample and (target := _include_target(ctx, res_type, inc, sample)) in known
    }
    _all_then_each(
        ctx,
        res_type,
        base,
        "_include",
        wanted,
        lambda bundle: set(expected.values()) <= included(bundle),
        lambda inc, bundle: inc not in expected or expected[inc] in included(bundle),
    )


def _include_target(ctx: Context, res_type: str, inc: str, sample: dict[str, Any]) -> str | None:
    code = inc.split(":")[1] if ":" in inc else ""
    param = definition(res_type, code, ctx.claims.types[res_type].definitions.get(code))
    return probe_value(res_type, param, sample) if param and param.type == "reference" else None


def _revincludes(ctx: Context, res_type: str) -> None:
    claims = ctx.claims.types[res_type]
    wanted = sorted(i for i in claims.revincludes if i != "*")
    if not wanted or "search-type" not in claims.interactions:
        raise CheckSkipped(f"no _revinclude claimed on {res_type}")
    anchor = anchors(ctx).get(res_type)
    base = [("_id", anchor)] if anchor and not anchor.startswith("absent-") else [("_count", "1")]
    _all_then_each(
        ctx, res_type, base, "_revinclude", wanted, lambda bundle: True, lambda rev, bundle: True
    )


def _all_then_each(
    ctx: Context,
    res_type: str,
    base: list[tuple[str, str]],
    name: str,
    values: list[str],
    all_ok: Callable[[dict[str, Any]], bool],
    one_ok: Callable[[str, dict[str, Any]], bool],
) -> None:
    """Every claimed value in one search; only if that fails, each alone, to name the culprits."""
    response = ctx.client.get(res_type, params=[*base, *((name, v) for v in values)])
    if response.status_code == 200 and all_ok(response.json()):
        return
    fails = _Failures()
    for value in values:

        def one(v: str = value) -> None:
            bundle = ctx.search(res_type, [*base, (name, v)], what=f"{res_type}?{name}={v}")
            ctx.expect(one_ok(v, bundle), f"{name}={v} does not add the resource it names")

        fails.attempt(value, one)
    fails.raise_any(len(values))
    raise CheckFailed(
        f"{res_type} with all claimed {name} values together fails ({response.status_code}), though each alone works"
    )


# -- the family: one check per type and kind of claim -------------------------------------------


@family("capability")
def per_type(ctx: Context) -> Iterator[Check]:
    for res_type in sorted(ctx.claims.types):
        yield Check(
            f"capability.{res_type}.interactions",
            f"every interaction claimed on {res_type} works",
            partial(_interactions, res_type=res_type),
        )
        yield Check(
            f"capability.{res_type}.search_params",
            f"every search parameter claimed on {res_type} is honoured",
            partial(_search_params, res_type=res_type),
        )
        yield Check(
            f"capability.{res_type}.includes",
            f"every _include claimed on {res_type} works",
            partial(_includes, res_type=res_type),
        )
        yield Check(
            f"capability.{res_type}.revincludes",
            f"every _revinclude claimed on {res_type} is accepted",
            partial(_revincludes, res_type=res_type),
        )
    yield Check("capability.system", "the claimed system interactions and formats work", _system)


def _system(ctx: Context) -> None:
    have = ctx.claims.system_interactions
    fails = _Failures()
    if "transaction" in have:
        fails.attempt("transaction", lambda: _bundle_kind(ctx, "transaction"))
    if "batch" in have:
        fails.attempt("batch", lambda: _bundle_kind(ctx, "batch"))
    if "history-system" in have:
        fails.attempt(
            "history-system",
            lambda: _history_has(ctx, "_history", {"_count": "1"}, expect_entries=False),
        )
    if "search-system" in have:
        fails.attempt("search-system", lambda: ctx.search("", {"_count": "1"}))
    for fmt in sorted(ctx.claims.formats):
        fails.attempt(f"format {fmt}", partial(_format, ctx, fmt))
    fails.raise_any(len(have) + len(ctx.claims.formats))


def _bundle_kind(ctx: Context, kind: str) -> None:
    searchable = sorted(t for t, c in ctx.claims.types.items() if "search-type" in c.interactions)
    if not searchable:
        raise CheckSkipped("no searchable type to put in a bundle")
    bundle = {
        "resourceType": "Bundle",
        "type": kind,
        "entry": [{"request": {"method": "GET", "url": f"{searchable[0]}?_count=1"}}],
    }
    body = ctx.expect_status(ctx.client.post("", bundle), 200, what=f"POST {kind}")
    ctx.expect(
        body.get("type") == f"{kind}-response", f"a {kind} answered a {body.get('type')!r} Bundle"
    )


def _format(ctx: Context, fmt: str) -> None:
    response = ctx.client.get("metadata", params={"_format": fmt}, headers={"Accept": "*/*"})
    ctx.expect_status(response, 200, what=f"_format={fmt}")
    ctype = response.headers.get("content-type", "")
    if "xml" in fmt:
        ctx.expect("xml" in ctype, f"_format={fmt} answered {ctype!r}")
    else:
        ctx.expect(
            "json" in ctype and isinstance(response.json(), dict),
            f"_format={fmt} answered {ctype!r}",
        )
