"""Properties of consent evaluation over any shape of provision tree: the protective answer holds
whatever a sender or a form puts together."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_gateway.privacy import evaluate_consent, grants_of

AT = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
ORGS = ["Organization/a", "Organization/b", "RelatedPerson/c"]
_actor = st.sampled_from(ORGS).map(lambda r: {"reference": {"reference": r}})
_purpose = st.sampled_from(["TREAT", "COC", "HRESCH", "HMARKT"]).map(lambda c: {"code": c})
_day = st.dates(min_value=datetime(2024, 1, 1).date(), max_value=datetime(2028, 1, 1).date()).map(
    str
)
_period = st.fixed_dictionaries({}, optional={"start": _day, "end": _day | st.just("not a date")})


_FIELDS = {
    "type": st.sampled_from(["permit", "deny", "maybe"]),
    "actor": st.lists(_actor, max_size=3),
    "purpose": st.lists(_purpose, max_size=2),
    "period": _period,
}


def _nested(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {}, optional={**_FIELDS, "provision": st.lists(children, max_size=3)}
    )


provisions = st.recursive(st.fixed_dictionaries({}, optional=_FIELDS), _nested, max_leaves=8)
consents = st.fixed_dictionaries(
    {
        "resourceType": st.just("Consent"),
        "id": st.just("k"),
        "status": st.sampled_from(["active", "inactive", "draft", "rejected"]),
        "patient": st.sampled_from([{"reference": "Patient/p"}, {"reference": "Patient/q"}, {}]),
        "provision": provisions,
    }
)


def _denies(provision: dict[str, Any], recipient: str, inherited: str = "permit") -> bool:
    kind = provision.get("type", inherited)
    names = {((a.get("reference") or {}).get("reference")) for a in provision.get("actor") or []}
    purposes = {p["code"] for p in provision.get("purpose") or []}
    covers = not purposes or bool(purposes & {"TREAT", "COC"})
    if kind == "deny" and recipient in names and covers:
        return True
    return any(_denies(p, recipient, kind) for p in provision.get("provision") or [])


@settings(max_examples=300, deadline=None)
@given(consent=consents, recipient=st.sampled_from(ORGS))
def test_a_permit_needs_an_active_readable_consent_of_the_patient_without_a_denial(
    consent, recipient
):  # type: ignore[no-untyped-def]
    decision = evaluate_consent([consent], patient="Patient/p", recipient=recipient, at=AT)
    assert decision.reason
    if decision.permitted:
        assert consent["status"] == "active" and consent["patient"] == {"reference": "Patient/p"}
        assert consent["provision"].get("type") in ("permit", "deny")
        assert not _denies(consent["provision"], recipient)
    in_force = [
        g
        for g in grants_of(consent)
        if g.recipient == recipient and g.patient_id == "p" and g.in_force(AT)
    ]
    assert decision.permitted == bool(in_force)  # the row policy's grants (of this patient) agree
