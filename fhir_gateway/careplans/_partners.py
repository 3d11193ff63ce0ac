"""The partner directory and the choice of a referral's owner.

A partner is a HealthcareService of an active Organization. One is eligible for a referral when
it offers the service (a ``type`` coding equal to one of the activity's codings), covers the
patient's area (a coverage-area Location whose address state, city and postal-code prefix agree
with the patient's home address; no coverage area means anywhere; a patient without an address is
not filtered by area), speaks the patient's language (``communication``; a service that lists none,
or a patient who states none, is taken to be English), is accepting new clients (Plan-Net ``newpatients``) and is not
``notAvailable`` on the discharge date. Eligible partners are ranked by how closely their area fits
the patient, then by name: the first is the owner, the rest are who a re-route would try next.
When none is eligible, ``no_partner_reason`` says which requirement no partner met, and names it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from adapters.terminology import concept_language, language_tag
from fhir_gateway.careplans._cache import StoredDataCache
from fhir_gateway.privacy import Recipient, recipient_marks
from fhir_gateway.store.tables import resources

__all__ = [
    "Partner",
    "Directory",
    "directory",
    "eligible",
    "eligibility",
    "no_partner_reason",
    "patient_language",
    "patient_address",
]

_NEW_PATIENTS = "http://hl7.org/fhir/us/davinci-pdex-plan-net/StructureDefinition/newpatients"
_DIRECTORY_TYPES = ("Organization", "HealthcareService", "Location", "Endpoint")


@dataclass(frozen=True, slots=True)
class Partner:
    organization: str  # Organization/id
    service: str  # HealthcareService/id
    name: str
    services: frozenset[tuple[str, str]]
    areas: tuple[dict[str, Any], ...]  # coverage-area addresses
    languages: frozenset[str]
    accepting: bool
    not_available: tuple[tuple[str | None, str | None], ...]
    endpoint: str | None
    treating_provider: bool = False
    hipaa: bool = False  # a covered entity or business associate

    def recipient(self) -> Recipient:
        """As the privacy module judges it, when it holds a referral of the patient (which is a
        treating relationship: the care team referred the patient to it)."""
        return Recipient(self.organization, self.treating_provider, self.hipaa, related=True)


@dataclass(frozen=True, slots=True)
class Directory:
    partners: tuple[Partner, ...]

    def recipient(self, organization: str) -> Recipient:
        """The organisation as a referral's owner (unknown here: marked as nothing)."""
        found = next((p for p in self.partners if p.organization == organization), None)
        return found.recipient() if found else Recipient(organization, related=True)


def _base_language(code: str | None) -> str | None:
    """The primary subtag of the normalised tag (``eng``, ``EN``, ``en-US`` → ``en``)."""
    return (language_tag(code) or code).split("-")[0].lower() if code else None


def _codes(concepts: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {
        (c.get("system", ""), c.get("code", "")) for cc in concepts for c in cc.get("coding", [])
    }


def _accepting(service: dict[str, Any]) -> bool:
    for ext in service.get("extension", []):
        if ext.get("url") != _NEW_PATIENTS:
            continue
        for sub in ext.get("extension", []):
            if sub.get("url") == "acceptingPatients":
                codes = {
                    c.get("code") for c in (sub.get("valueCodeableConcept") or {}).get("coding", [])
                }
                return "yes" in codes  # nopt / existptonly / existptofm: not for a new referral
    return True


def _partner(
    service: dict[str, Any], orgs: dict[str, dict[str, Any]], locations: dict[str, dict[str, Any]]
) -> Partner | None:
    org_ref = (service.get("providedBy") or {}).get("reference")
    org = orgs.get(org_ref or "")
    if org is None or org.get("active") is False or service.get("active") is False:
        return None
    areas = tuple(
        locations[a["reference"]].get("address") or {}
        for a in service.get("coverageArea", [])
        if a.get("reference") in locations
    )
    endpoints = service.get("endpoint") or org.get("endpoint") or []
    treating, hipaa = recipient_marks(org)
    return Partner(
        organization=org_ref or "",
        service=f"HealthcareService/{service['id']}",
        name=org.get("name") or service.get("name") or org_ref or "",
        services=frozenset(_codes(service.get("type", []))),
        areas=areas,
        languages=frozenset(
            filter(None, (_base_language(c[1]) for c in _codes(service.get("communication", []))))
        ),
        accepting=_accepting(service),
        not_available=tuple(
            ((n.get("during") or {}).get("start"), (n.get("during") or {}).get("end"))
            for n in service.get("notAvailable", [])
        ),
        endpoint=endpoints[0].get("reference") if endpoints else None,
        treating_provider=treating,
        hipaa=hipaa,
    )


def _load(session: Session) -> Directory:
    rows = session.execute(
        select(resources.c.res_type, resources.c.content).where(
            resources.c.res_type.in_(_DIRECTORY_TYPES), resources.c.deleted.is_(False)
        )
    ).all()
    by_type: dict[str, dict[str, dict[str, Any]]] = {t: {} for t in _DIRECTORY_TYPES}
    for res_type, content in rows:
        doc = content if isinstance(content, dict) else orjson.loads(content)
        by_type[res_type][f"{res_type}/{doc['id']}"] = doc
    partners = (
        _partner(s, by_type["Organization"], by_type["Location"])
        for s in by_type["HealthcareService"].values()
    )
    return Directory(tuple(p for p in partners if p is not None))


_directory = StoredDataCache(_DIRECTORY_TYPES, _load)


def directory(session: Session) -> Directory:
    return _directory.get(session)


# -- matching (pure) ----------------------------------------------------------------------------


def patient_language(patient: dict[str, Any]) -> str:
    """The preferred language's base subtag; English when none is recorded (as for services)."""
    comms = patient.get("communication", [])
    chosen = next((c for c in comms if c.get("preferred")), comms[0] if comms else None)
    language = (chosen or {}).get("language") or {}
    codings = language.get("coding") or [{}]  # unrecognised: as sent, so no partner matches it
    return _base_language(concept_language(language) or codings[0].get("code")) or "en"


def patient_address(patient: dict[str, Any]) -> dict[str, Any] | None:
    usable = [
        a for a in patient.get("address", []) if a.get("use") not in ("old", "billing", "work")
    ]
    return next((a for a in usable if a.get("use") == "home"), usable[0] if usable else None)


def _same(a: str | None, b: str | None) -> bool:
    return (a or "").strip().casefold() == (b or "").strip().casefold()


def _covers(area: dict[str, Any], address: dict[str, Any]) -> int | None:
    """How closely one coverage area fits the address (higher is closer); None: not covered."""
    score = 0
    for key in ("state", "city"):
        if area.get(key):
            if not _same(area[key], address.get(key)):
                return None
            score += 1
    postal = area.get("postalCode")
    if postal:
        if not str(address.get("postalCode", "")).startswith(str(postal)):
            return None
        score += 2
    return score


def _area_score(areas: tuple[dict[str, Any], ...], address: dict[str, Any] | None) -> int | None:
    if not areas or address is None:
        return 0
    scores = [s for s in (_covers(a, address) for a in areas) if s is not None]
    return max(scores) if scores else None


def _open_on(partner: Partner, on: date) -> bool:
    day = on.isoformat()
    return not any(
        (start is None or start[:10] <= day) and (end is None or day <= end[:10])
        for start, end in partner.not_available
    )


def _available(partner: Partner, on: date) -> bool:
    return partner.accepting and _open_on(partner, on)


def _speaks(partner: Partner, language: str | None) -> bool:
    return not language or language in (partner.languages or {"en"})


def eligible(
    directory: Directory,
    service_codes: set[tuple[str, str]],
    *,
    address: dict[str, Any] | None,
    language: str | None,
    on: date,
) -> list[Partner]:
    ranked: list[tuple[int, str, Partner]] = []
    for partner in directory.partners:
        if not partner.services & service_codes or not _available(partner, on):
            continue
        if not _speaks(partner, language):
            continue
        score = _area_score(partner.areas, address)
        if score is not None:
            ranked.append((-score, partner.name, partner))
    return [p for _, _, p in sorted(ranked, key=lambda r: (r[0], r[1], r[2].service))]


def eligibility(
    partner: Partner,
    service_codes: set[tuple[str, str]],
    *,
    address: dict[str, Any] | None,
    language: str | None,
    on: date,
) -> tuple[bool, list[str]]:
    """(eligible, why) for one partner, by the same tests as ``eligible`` in the same order:
    each requirement it meets in words, ending at the first one it does not meet (pure). What a
    case manager sees when choosing a partner by hand."""
    why: list[str] = []
    if not partner.services & service_codes:
        return False, ["does not offer this service"]
    why.append("offers this service")
    score = _area_score(partner.areas, address)
    if score is None:
        return False, [*why, "does not cover the patient's area"]
    if not partner.areas:
        why.append("serves any area")
    elif address is None:
        why.append("the patient has no address to match its area")
    else:
        why.append(f"covers the patient's area ({_where(address)})")
    if not _speaks(partner, language):
        spoken = ", ".join(sorted(partner.languages or {"en"}))
        return False, [
            *why,
            f"does not speak the patient's language ({language}; it speaks {spoken})",
        ]
    why.append(f"speaks the patient's language ({language or 'en'})")
    if not partner.accepting:
        return False, [*why, "is not accepting new clients"]
    why.append("is accepting new clients")
    day = f"{on.day} {on:%b %Y}"
    if not _open_on(partner, on):
        return False, [*why, f"is not available on {day}"]
    why.append(f"is available on {day}")
    return True, why


def _names(partners: list[Partner]) -> str:
    return ", ".join(sorted({p.name for p in partners}))


def _where(address: dict[str, Any]) -> str:
    parts = [
        address.get("city"),
        " ".join(filter(None, [address.get("state"), address.get("postalCode")])),
    ]
    return ", ".join(p for p in parts if p) or "no city, state or postal code"


def no_partner_reason(
    directory: Directory,
    service_codes: set[tuple[str, str]],
    *,
    address: dict[str, Any] | None,
    language: str | None,
    on: date,
) -> str:
    """Why a referral has no owner: the first requirement that leaves no partner, asked in the
    order a case manager would (service, the patient's area, language, new clients, availability),
    naming what was missing; or, when partners are eligible, that it is open for them to claim
    (pure). Area comes before the rest, so a partner elsewhere never hides the local one's reason."""
    offering = [p for p in directory.partners if p.services & service_codes]
    if not offering:
        codes = ", ".join(sorted(code for _, code in service_codes)) or "none"
        return f"no partner in the directory offers this service (code {codes})"
    covering = [p for p in offering if _area_score(p.areas, address) is not None]
    if not covering:
        assert address is not None  # without an address every area covers the patient
        return (
            f"no partner offering this service covers the patient's area ({_where(address)}); "
            f"those offering it ({_names(offering)}) cover other areas"
        )
    speaking = [p for p in covering if _speaks(p, language)]
    if not speaking:
        spoken = ", ".join(sorted(set().union(*(p.languages or {"en"} for p in covering))))
        return (
            f"no partner offering this service in the patient's area speaks the patient's language "
            f"({language}); those there ({_names(covering)}) speak: {spoken}"
        )
    accepting = [p for p in speaking if p.accepting]
    if not accepting:
        return (
            "no partner offering this service in the patient's area and language is accepting "
            f"new clients (not accepting: {_names(speaking)})"
        )
    open_ = [p for p in accepting if _open_on(p, on)]
    if not open_:
        return (
            "no partner offering this service in the patient's area and language is available on "
            f"{on.isoformat()} (closed: {_names(accepting)})"
        )
    return f"no owner was chosen; it is open for an eligible partner to claim ({_names(open_)})"
