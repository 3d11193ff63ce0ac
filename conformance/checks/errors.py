"""Errors are OperationOutcomes with the right status; no client input gets a 5xx."""

from __future__ import annotations

from conformance._context import Context
from conformance._registry import check
from conformance.checks._data import patient


@check(
    "errors.not_found",
    "reading an unknown id answers 404 with an OperationOutcome",
    needs=(("Patient", "read"),),
)
def not_found(ctx: Context) -> None:
    ctx.expect_outcome(
        ctx.client.get(f"Patient/{ctx.unique('missing')}"), 404, what="read of an unknown id"
    )


@check(
    "errors.unknown_type", "an unknown resource type answers 404 (or 400) with an OperationOutcome"
)
def unknown_type(ctx: Context) -> None:
    ctx.expect_outcome(
        ctx.client.get("NotAResourceType/1"), 404, 400, what="read of an unknown type"
    )
    ctx.expect_outcome(
        ctx.client.get("NotAResourceType", params={"_count": "1"}),
        404,
        400,
        what="search of an unknown type",
    )


@check(
    "errors.invalid_json",
    "a body that is not JSON answers 400 with an OperationOutcome",
    needs=(("Patient", "create"),),
)
def invalid_json(ctx: Context) -> None:
    response = ctx.client.request("POST", "Patient", content=b'{"resourceType": "Patient", ')
    ctx.expect_outcome(response, 400, what="POST of broken JSON")


@check(
    "errors.invalid_resource",
    "an invalid resource answers 400 or 422 with an OperationOutcome",
    needs=(("Patient", "create"),),
)
def invalid_resource(ctx: Context) -> None:
    bad = ctx.stamp(patient(ctx) | {"gender": "not-a-gender", "birthDate": "yesterday"})
    ctx.expect_outcome(ctx.client.post("Patient", bad), 400, 422, what="POST of an invalid Patient")
    unknown = ctx.stamp(patient(ctx) | {"colour": "blue"})
    ctx.expect_outcome(
        ctx.client.post("Patient", unknown),
        400,
        422,
        what="POST of a Patient with an unknown element",
    )


@check(
    "errors.names_element",
    "the OperationOutcome of an invalid resource names the element",
    level="should",
    needs=(("Patient", "create"),),
)
def names_element(ctx: Context) -> None:
    bad = ctx.stamp(patient(ctx) | {"gender": "not-a-gender"})
    outcome = ctx.expect_outcome(
        ctx.client.post("Patient", bad), 400, 422, what="POST of an invalid Patient"
    )
    text = str(outcome.get("issue"))
    ctx.expect("gender" in text, f"no issue names 'gender': {outcome.get('issue')}")


@check(
    "errors.wrong_type",
    "a body of another resource type than the URL's answers 400",
    needs=(("Patient", "create"),),
)
def wrong_type(ctx: Context) -> None:
    body = ctx.stamp({"resourceType": "Observation", "status": "final", "code": {"text": "x"}})
    ctx.expect_outcome(
        ctx.client.post("Patient", body), 400, 422, what="POST of an Observation to /Patient"
    )


@check(
    "errors.id_mismatch",
    "PUT whose body id differs from the URL's answers 400",
    needs=(("Patient", "update"),),
)
def id_mismatch(ctx: Context) -> None:
    body = ctx.stamp(patient(ctx) | {"id": ctx.unique("body").lower()})
    ctx.expect_outcome(
        ctx.client.put(f"Patient/{ctx.unique('url').lower()}", body),
        400,
        what="PUT with mismatched ids",
    )
    no_id = ctx.stamp(patient(ctx))
    ctx.expect_outcome(
        ctx.client.put(f"Patient/{ctx.unique('url').lower()}", no_id),
        400,
        what="PUT without id in the body",
    )


def _unsupported_media_type(ctx: Context):  # type: ignore[no-untyped-def]
    return ctx.client.request("POST", "Patient", content=b"<Patient/>", content_type="text/plain")


@check(
    "errors.media_type",
    "an unsupported Content-Type is refused (400 or 415) with an OperationOutcome",
    needs=(("Patient", "create"),),
)
def media_type(ctx: Context) -> None:
    ctx.expect_outcome(_unsupported_media_type(ctx), 400, 415, what="POST text/plain")


@check(
    "errors.media_type_415",
    "an unsupported Content-Type answers 415 (HTTP's code; R4 does not require it)",
    level="should",
    needs=(("Patient", "create"),),
)
def media_type_415(ctx: Context) -> None:
    ctx.expect_outcome(_unsupported_media_type(ctx), 415, what="POST text/plain")


@check(
    "errors.method",
    "a method the endpoint does not support answers 405 with an OperationOutcome",
    level="should",
)
def method(ctx: Context) -> None:
    ctx.expect_outcome(ctx.client.delete("metadata"), 405, what="DELETE /metadata")


@check("errors.bad_search", "an unparseable search value answers 400 with an OperationOutcome")
def bad_search(ctx: Context) -> None:
    ctx.require_param("Patient", "birthdate")
    ctx.expect_outcome(
        ctx.client.get("Patient", params={"birthdate": "not-a-date"}),
        400,
        what="Patient?birthdate=not-a-date",
    )


@check(
    "errors.strict_unknown_param",
    "Prefer: handling=strict refuses an unknown search parameter with 400 (a client preference a server may not honour)",
    level="should",
    needs=(("Patient", "search-type"),),
)
def strict_unknown_param(ctx: Context) -> None:
    with ctx.subcase("handling=strict"):
        response = ctx.client.get(
            "Patient", params={"not-a-param": "x"}, headers={"Prefer": "handling=strict"}
        )
        ctx.expect_outcome(response, 400, what="strict search with an unknown parameter")
    with ctx.subcase("handling=lenient"):
        lenient = ctx.client.get(
            "Patient",
            params={"not-a-param": "x", "_count": "1"},
            headers={"Prefer": "handling=lenient"},
        )
        ctx.expect_status(lenient, 200, what="lenient search with an unknown parameter")


_HOSTILE: list[tuple[str, str, dict[str, str] | None, bytes | None]] = [
    ("GET", "Patient", {"_count": "-1"}, None),
    ("GET", "Patient", {"_count": "99999999999999999999"}, None),
    ("GET", "Patient", {"_sort": "no-such-param"}, None),
    ("GET", "Patient", {"_include": "garbage"}, None),
    ("GET", "Patient", {"_include": "Patient:organization:Nope"}, None),
    ("GET", "Patient", {"birthdate": "gt"}, None),
    ("GET", "Patient", {"name:nonsense": "x"}, None),
    ("GET", "Patient", {"general-practitioner.name.x.y.z": "x"}, None),
    ("GET", "Patient", {"_has:Observation": "x"}, None),
    ("GET", "Patient/_history", {"_since": "not-a-time"}, None),
    ("GET", "Patient", {"_lastUpdated": "ge2024-13-45"}, None),
    ("GET", "Patient", {"_id": "x" * 5000}, None),
    ("POST", "Patient", None, b"[]"),
    ("POST", "Patient", None, b"null"),
    ("POST", "Patient", None, b'"Patient"'),
    ("POST", "Patient", None, b'{"resourceType": 5}'),
    ("POST", "Patient", None, b'{"resourceType": "Patient", "name": "flat"}'),
    ("POST", "Patient", None, b"[" * 5000 + b"]" * 5000),
    ("POST", "Patient", None, b'{"resourceType": "Patient", "birthDate": "\\ud800"}'),
    (
        "POST",
        "",
        None,
        b'{"resourceType": "Bundle", "type": "transaction", "entry": [{"request": {}}]}',
    ),
    ("POST", "", None, b'{"resourceType": "Bundle", "type": "transaction", "entry": "x"}'),
    ("POST", "", None, b'{"resourceType": "Patient"}'),
    ("PATCH", "Patient/x-does-not-exist", None, b'[{"op": "nope"}]'),
]


@check("errors.no_5xx", "hostile but plausible client input never gets a 5xx")
def no_5xx(ctx: Context) -> None:
    bad = []
    for method_name, path, params, content in _HOSTILE:
        content_type = (
            "application/json-patch+json" if method_name == "PATCH" else "application/fhir+json"
        )
        response = ctx.client.request(
            method_name, path, params=params, content=content, content_type=content_type
        )
        if response.status_code >= 500:
            bad.append(
                f"{method_name} /{path} {params or (content or b'')[:60]!r} → {response.status_code}"
            )
        elif 200 <= response.status_code < 300 and method_name == "POST" and path == "Patient":
            ctx.expect(False, f"POST of {content[:60]!r} was accepted ({response.status_code})")  # type: ignore[index]
    ctx.expect(not bad, "5xx answers: " + "; ".join(bad))
