"""Search semantics per parameter type: string, token, date, quantity, uri, reference, chains,
modifiers (:exact :contains :missing :not :text :below), prefixes, OR and AND, and the common
parameters _id, _lastUpdated, _tag, _profile, _security."""

from __future__ import annotations

from conformance._context import Context
from conformance._registry import CheckSkipped, check
from conformance.checks._searchdata import expect_ids, search_data


def _need(ctx: Context, res_type: str, *params: str) -> None:
    ctx.require(res_type, "search-type")
    ctx.require_param(res_type, *params)


@check("search.string", "string: case- and accent-insensitive prefix by default, :exact, :contains")
def string(ctx: Context) -> None:
    _need(ctx, "Patient", "name", "family")
    d = search_data(ctx)
    expect_ids(
        ctx,
        "Patient",
        [("name", f"{d.prefix.lower()}oka")],
        d.ids("p1", "p2"),
        "default string match is a case-insensitive prefix",
    )
    expect_ids(ctx, "Patient", [("family", f"{d.prefix}Okafor")], d.ids("p1"))
    expect_ids(ctx, "Patient", [("family:exact", f"{d.prefix}Okafor")], d.ids("p1"), ":exact")
    expect_ids(
        ctx, "Patient", [("family:exact", f"{d.prefix}okafor")], set(), ":exact is case-sensitive"
    )
    expect_ids(
        ctx, "Patient", [("family:exact", f"{d.prefix}Oka")], set(), ":exact is not a prefix match"
    )
    expect_ids(
        ctx,
        "Patient",
        [("family:contains", f"{d.prefix[2:]}okam")],
        d.ids("p2"),
        ":contains matches inside the string",
    )


@check("search.token", "token: system|code, code, system|, and |code forms")
def token(ctx: Context) -> None:
    _need(ctx, "Patient", "identifier", "gender", "name")
    d = search_data(ctx)
    expect_ids(ctx, "Patient", [("identifier", f"{d.system}|p1")], d.ids("p1"), "system|value")
    expect_ids(
        ctx,
        "Patient",
        [("identifier", f"{d.system}|")],
        d.ids("p1", "p2", "p3"),
        "system| (any value of the system)",
    )
    expect_ids(ctx, "Patient", [("identifier", f"{d.system}|p9")], set(), "an unknown value")
    expect_ids(
        ctx, "Patient", [("gender", "female"), ("name", d.prefix)], d.ids("p1"), "code alone"
    )
    expect_ids(ctx, "Patient", [("active", "true"), ("name", d.prefix)], d.ids("p1"), "boolean")


@check(
    "search.token_code_system",
    "a code element matches system|code with the system of its required binding",
    level="should",
)
def token_code_system(ctx: Context) -> None:
    _need(ctx, "Patient", "gender", "name")
    d = search_data(ctx)
    expect_ids(
        ctx,
        "Patient",
        [("gender", "http://hl7.org/fhir/administrative-gender|male"), ("name", d.prefix)],
        d.ids("p2"),
        "system|code of a code element",
    )


@check("search.token_modifiers", "token modifiers :not, :missing and :text")
def token_modifiers(ctx: Context) -> None:
    _need(ctx, "Patient", "gender", "active", "name")
    d = search_data(ctx)
    expect_ids(
        ctx, "Patient", [("gender:not", "female"), ("name", d.prefix)], d.ids("p2", "p3"), ":not"
    )
    expect_ids(
        ctx,
        "Patient",
        [("active:missing", "true"), ("name", d.prefix)],
        d.ids("p3"),
        ":missing=true",
    )
    expect_ids(
        ctx,
        "Patient",
        [("active:missing", "false"), ("name", d.prefix)],
        d.ids("p1", "p2"),
        ":missing=false",
    )
    if d.o1 is not None and ctx.claims.param("Observation", "code"):
        expect_ids(
            ctx,
            "Observation",
            [("code:text", f"glucose {d.prefix}")],
            d.ids("o1", "o2"),
            ":text searches the coding display / text",
        )


@check("search.date", "date: precision ranges and the prefixes eq ne gt lt ge le sa eb")
def date(ctx: Context) -> None:
    _need(ctx, "Patient", "birthdate", "name")
    d = search_data(ctx)
    cases = [
        ("1980", ("p1", "p3")),
        ("1980-05", ("p1",)),
        ("eq1980-05-17", ("p1",)),
        ("ne1980-05-17", ("p2", "p3")),
        ("gt1980-05-17", ("p3",)),
        ("lt1980-05-17", ("p2",)),
        ("ge1980-05-17", ("p1", "p3")),
        ("le1980-05-17", ("p1", "p2")),
        ("sa1980-05-17", ("p3",)),
        ("eb1980-05-17", ("p2",)),
        ("gt1980", ()),
        ("ge1975-12-01T00:00:00Z", ("p1", "p3", "p2")),
    ]
    for value, names in cases:
        expect_ids(
            ctx,
            "Patient",
            [("birthdate", value), ("name", d.prefix)],
            d.ids(*names),
            f"birthdate={value}",
        )


@check("search.quantity", "quantity: implicit precision, prefixes, value|system|code")
def quantity(ctx: Context) -> None:
    _need(ctx, "Observation", "value-quantity", "code")
    d = search_data(ctx)
    if d.o1 is None:
        raise CheckSkipped("the server does not claim create on Observation")
    code = ("code", f"{d.system}|glucose")
    expect_ids(
        ctx,
        "Observation",
        [code, ("value-quantity", "5.4")],
        d.ids("o1"),
        "5.4 (implicit range 5.35–5.45)",
    )
    expect_ids(
        ctx,
        "Observation",
        [code, ("value-quantity", "5")],
        d.ids("o1"),
        "5 (implicit range 4.5–5.5)",
    )
    expect_ids(ctx, "Observation", [code, ("value-quantity", "gt6")], d.ids("o2"), "gt6")
    expect_ids(
        ctx,
        "Observation",
        [code, ("value-quantity", "lt6|http://unitsofmeasure.org|mg/dL")],
        d.ids("o1"),
        "lt6 with system and code",
    )
    expect_ids(
        ctx,
        "Observation",
        [code, ("value-quantity", "ge5.4||mg/dL")],
        d.ids("o1", "o2"),
        "ge5.4 with a code only",
    )
    expect_ids(
        ctx,
        "Observation",
        [code, ("value-quantity", "5.4|http://unitsofmeasure.org|g")],
        set(),
        "another unit",
    )


@check(
    "search.reference",
    "reference: Type/id, id with :Type, a typed alias parameter, and an absolute URL",
)
def reference(ctx: Context) -> None:
    _need(ctx, "Encounter", "subject")
    d = search_data(ctx)
    if d.e1 is None:
        raise CheckSkipped("the server does not claim create on Encounter")
    p1 = d.p1["id"]
    expect_ids(ctx, "Encounter", [("subject", f"Patient/{p1}")], d.ids("e1"), "Type/id")
    expect_ids(ctx, "Encounter", [("subject:Patient", p1)], d.ids("e1"), ":Type modifier")
    if ctx.claims.param("Encounter", "patient"):
        expect_ids(
            ctx,
            "Encounter",
            [("patient", p1)],
            d.ids("e1"),
            "a parameter of one target type takes a bare id",
        )
    expect_ids(
        ctx,
        "Encounter",
        [("subject", f"{ctx.client.base_url}/Patient/{p1}")],
        d.ids("e1"),
        "an absolute URL on this server",
    )


@check("search.chain", "chained parameters follow references (subject:Patient.name, two levels)")
def chain(ctx: Context) -> None:
    _need(ctx, "Encounter", "subject")
    d = search_data(ctx)
    if d.e1 is None:
        raise CheckSkipped("the server does not claim create on Encounter")
    expect_ids(
        ctx,
        "Encounter",
        [("subject:Patient.name", f"{d.prefix}Okafor")],
        d.ids("e1"),
        "typed chain",
    )
    if d.o1 is not None and ctx.claims.param("Observation", "encounter"):
        expect_ids(
            ctx,
            "Observation",
            [("encounter.subject:Patient.family", f"{d.prefix}Okafor")],
            d.ids("o1"),
            "two-level chain",
        )


@check(
    "search.chain_untyped",
    "an untyped chain over a reference of several target types (subject.identifier)",
    level="should",
)
def chain_untyped(ctx: Context) -> None:
    """A server may refuse it (the target type is ambiguous) and ask for subject:Patient."""
    _need(ctx, "Encounter", "subject")
    d = search_data(ctx)
    if d.e1 is None:
        raise CheckSkipped("the server does not claim create on Encounter")
    expect_ids(
        ctx, "Encounter", [("subject.identifier", f"{d.system}|p2")], d.ids("e2"), "untyped chain"
    )


@check("search.reverse_chain", "_has finds resources referenced by matching ones", level="should")
def reverse_chain(ctx: Context) -> None:
    _need(ctx, "Patient", "name")
    d = search_data(ctx)
    if d.e1 is None:
        raise CheckSkipped("the server does not claim create on Encounter")
    expect_ids(
        ctx,
        "Patient",
        [("_has:Encounter:subject:status", "finished"), ("name", d.prefix)],
        d.ids("p1"),
        "_has",
    )


@check("search.or_and", "comma means OR, a repeated parameter means AND")
def or_and(ctx: Context) -> None:
    _need(ctx, "Patient", "gender", "birthdate", "name")
    d = search_data(ctx)
    expect_ids(
        ctx, "Patient", [("gender", "female,male"), ("name", d.prefix)], d.ids("p1", "p2"), "OR"
    )
    expect_ids(
        ctx,
        "Patient",
        [("birthdate", "ge1975"), ("birthdate", "le1980-06"), ("name", d.prefix)],
        d.ids("p1", "p2"),
        "AND",
    )
    expect_ids(
        ctx,
        "Patient",
        [("name", f"{d.prefix}Okafor,{d.prefix}Nguyen")],
        d.ids("p1", "p3"),
        "OR on strings",
    )


@check("search.uri", "uri: exact match and :below", needs=(("PlanDefinition", "create"),))
def uri(ctx: Context) -> None:
    _need(ctx, "PlanDefinition", "url")
    base = f"http://conformance.invalid/{ctx.run_id}"
    plan = ctx.create(
        {"resourceType": "PlanDefinition", "status": "draft", "url": f"{base}/plans/follow-up"}
    )
    expect_ids(ctx, "PlanDefinition", [("url", f"{base}/plans/follow-up")], {plan["id"]}, "exact")
    expect_ids(
        ctx, "PlanDefinition", [("url", f"{base}/plans")], set(), "uri is not a prefix match"
    )
    expect_ids(ctx, "PlanDefinition", [("url:below", f"{base}/plans")], {plan["id"]}, ":below")


@check("search.common", "_id, _lastUpdated, _tag, _profile and _security")
def common(ctx: Context) -> None:
    _need(ctx, "Patient", "_id", "name")
    d = search_data(ctx)
    expect_ids(ctx, "Patient", [("_id", f"{d.p1['id']},{d.p3['id']}")], d.ids("p1", "p3"), "_id")
    if ctx.claims.param("Patient", "_lastUpdated"):
        expect_ids(
            ctx,
            "Patient",
            [("_lastUpdated", "gt2000-01-01"), ("name", d.prefix)],
            d.ids("p1", "p2", "p3"),
            "_lastUpdated",
        )
        expect_ids(
            ctx,
            "Patient",
            [("_lastUpdated", "lt2000-01-01"), ("name", d.prefix)],
            set(),
            "_lastUpdated",
        )
    if ctx.claims.param("Patient", "_tag"):
        expect_ids(
            ctx,
            "Patient",
            [("_tag", f"{ctx.tag['system']}|{ctx.tag['code']}"), ("name", d.prefix)],
            d.ids("p1", "p2", "p3"),
            "_tag",
        )
    profile = f"http://conformance.invalid/{ctx.run_id}/StructureDefinition/kit"
    security = {"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}
    family = f"Lb{ctx.run_id}"  # not the search data's prefix: later checks count those
    labelled = ctx.create(
        {
            "resourceType": "Patient",
            "meta": {"profile": [profile], "security": [security]},
            "name": [{"family": family}],
        }
    )
    if ctx.claims.param("Patient", "_profile"):
        expect_ids(ctx, "Patient", [("_profile", profile)], {labelled["id"]}, "_profile")
    if ctx.claims.param("Patient", "_security"):
        expect_ids(
            ctx,
            "Patient",
            [("_security", f"{security['system']}|R"), ("family", family)],
            {labelled["id"]},
            "_security",
        )
