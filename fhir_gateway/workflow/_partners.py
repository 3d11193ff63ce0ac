"""Which partners may take a referral, and where a partner's own FHIR server is: both read from
the partner directory (Organization, HealthcareService, Endpoint) of the care-plan engine."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy.orm import Session

from fhir_gateway import clock
from fhir_gateway.careplans import (
    directory,
    eligibility,
    eligible,
    patient_address,
    patient_language,
)
from fhir_gateway.careplans import no_partner_reason as explain
from fhir_gateway.store import transaction_memo
from fhir_gateway.workflow._referrals import read, ref, search

__all__ = [
    "PartnerChoice",
    "eligible_organizations",
    "partner_choices",
    "endpoint_of",
    "no_partner_reason",
]


@dataclass(frozen=True, slots=True)
class PartnerChoice:
    organization: str  # Organization/id
    name: str
    eligible: bool
    why: tuple[
        str, ...
    ]  # the requirements met, and the first one not met (see careplans.eligibility)


def _service_codes(request: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (c.get("system", ""), c.get("code", ""))
        for c in (request.get("code") or {}).get("coding", [])
    }


def eligible_organizations(session: Session, request: dict[str, Any]) -> list[tuple[str, str]]:
    """(Organization reference, name) of the partners eligible for this ServiceRequest, best first."""
    patient = read(session, ref(request, "subject")) or {}
    partners = eligible(
        directory(session),
        _service_codes(request),
        address=patient_address(patient),
        language=patient_language(patient),
        on=clock.now().date(),
    )
    seen: dict[str, str] = {}
    for partner in partners:
        seen.setdefault(partner.organization, partner.name)
    return list(seen.items())


def partner_choices(session: Session, request: dict[str, Any]) -> list[PartnerChoice]:
    """Every partner offering this ServiceRequest's service, as a case manager chooses among them:
    the eligible ones first, in the order routing would try them (``eligible_organizations``),
    then the others by name, each with why it is (not) eligible."""
    patient = read(session, ref(request, "subject")) or {}
    codes, today = _service_codes(request), clock.now().date()
    address, language = patient_address(patient), patient_language(patient)
    ranked = [org for org, _ in eligible_organizations(session, request)]
    best: dict[str, PartnerChoice] = {}
    for partner in directory(session).partners:
        ok, why = eligibility(partner, codes, address=address, language=language, on=today)
        if not partner.services & codes:
            continue
        known = best.get(partner.organization)
        if known is None or (ok and not known.eligible):
            best[partner.organization] = PartnerChoice(
                partner.organization, partner.name, ok, tuple(why)
            )
    order = {org: i for i, org in enumerate(ranked)}
    return sorted(
        best.values(),
        key=lambda c: (not c.eligible, order.get(c.organization, len(order)), c.name),
    )


# What an organisation's endpoint is found from: the partner directory's types (its Endpoints).
_ENDPOINT_TYPES = ("Organization", "HealthcareService", "Location", "Endpoint")


def endpoint_of(session: Session, organization: str | None) -> str | None:
    """The FHIR base URL of the organisation's own server (the "direct" pattern), if it has one.
    Looked up once per transaction (a discharge's and a readmission's Tasks go to a few
    partners, batch after batch), again after the transaction wrote one of those types."""
    if not organization:
        return None
    memo = transaction_memo.memo(session)
    seen = transaction_memo.writes_to(session, _ENDPOINT_TYPES)
    remembered = memo.get(("endpoint_of", organization))
    if remembered is not None and remembered[0] == seen:
        return cast(str | None, remembered[1])
    found = _endpoint_of(session, organization)
    memo[("endpoint_of", organization)] = (seen, found)
    return found


def _endpoint_of(session: Session, organization: str) -> str | None:
    for partner in directory(session).partners:
        if partner.organization == organization and partner.endpoint:
            address = _address(read(session, partner.endpoint))
            if address:
                return address
    for endpoint in search(
        session, "Endpoint", [("organization", organization), ("status", "active")]
    ):
        address = _address(endpoint)
        if address:
            return address
    return None


def _address(endpoint: dict[str, Any] | None) -> str | None:
    if not endpoint or endpoint.get("status", "active") != "active":
        return None
    code = (endpoint.get("connectionType") or {}).get("code")
    return (
        str(endpoint["address"]).rstrip("/")
        if code == "hl7-fhir-rest" and endpoint.get("address")
        else None
    )


def no_partner_reason(session: Session, request: dict[str, Any]) -> str:
    """Why no partner is eligible for this ServiceRequest today (see ``eligible_organizations``)."""
    patient = read(session, ref(request, "subject")) or {}
    return explain(
        directory(session),
        _service_codes(request),
        address=patient_address(patient),
        language=patient_language(patient),
        on=clock.now().date(),
    )
