"""Use cases of India's Mental Healthcare Act 2017 (the rules are ``fhir_gateway.privacy``'s).

* ``act_facts(session, patient, at)``: what the Act's rules need to know about a patient, read as
  the gateway: RelatedPersons, advance directives, the latest capacity assessment, releases and
  withholdings.
* ``confirm_representative(session, person_id, caller)``: a case manager confirms a
  RelatedPerson as the patient's nominated representative (the gateway only proposes: s14(4));
  the person gets the role, and joins the patient's care teams in that role, so that discharge
  planning (s98) counts on them. Every write runs with the caller's rights.
* ``patient_records(session, patient_id, caller, at)``: the patient's own records (s25(1)) as a
  ``collection`` Bundle, without what a professional withheld (s25(2)), with the notice of the
  right to apply to the Board (s25(3)) as an OperationOutcome.
* ``install(settings)``: the write checks (422, the element named) that keep what the Act's rules
  read whole: a recorded release (s23(2)(c)–(g)) or withholding (s25(2)) with everything it
  needs, and ABDM identifiers (ABHA number, ABHA address, HFR id) of the right form under the
  systems of the settings, normalised (``adapters.abdm``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from adapters.abdm import AbdmSystems
from fhir_gateway import hooks, privacy
from fhir_gateway.context import Caller
from fhir_gateway.errors import BusinessRule, Forbidden, InvalidRequest, Issue
from fhir_gateway.hooks import WriteEvent
from fhir_gateway.services import lookup
from fhir_gateway.services import resources as svc
from fhir_gateway.settings import Settings
from fhir_gateway.store.repository import StoredResource

__all__ = [
    "ActFacts",
    "act_facts",
    "install",
    "check_consent",
    "check_identifiers",
    "confirm_representative",
    "patient_records",
    "RECORD_TYPES",
    "representative_role",
]

_LIVE_TEAM = "proposed,active,suspended"
# the basic medical records of s25(1): what the gateway holds of a patient's care
RECORD_TYPES = (
    "Encounter",
    "Condition",
    "Observation",
    "AllergyIntolerance",
    "MedicationStatement",
    "MedicationRequest",
    "MedicationDispense",
    "MedicationAdministration",
    "Procedure",
    "DocumentReference",
    "CarePlan",
    "Goal",
    "ServiceRequest",
    "CareTeam",
    "Consent",
)


@dataclass(frozen=True, slots=True)
class ActFacts:
    patient: str  # Patient/ID
    related_persons: list[dict[str, Any]]
    directives: list[dict[str, Any]]  # advance directives, in force first
    capacity: bool | None
    consents: list[dict[str, Any]]  # every Consent of the patient (releases, withholdings, …)
    at: datetime

    @property
    def representative(self) -> str | None:
        return privacy.nominated_representative(self.related_persons)


def _unique(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return list({f"{r['resourceType']}/{r['id']}": r for r in found}.values())


def act_facts(session: Session, patient: str, at: datetime) -> ActFacts:
    found = [
        r
        for res_type, params in privacy.advance_directive_searches(patient)
        for r in lookup.search(session, res_type, params)
    ]
    capacity = lookup.search(
        session,
        "Observation",
        [("subject", patient), ("code", f"{privacy.MHCA_SYSTEM}|capacity")],
    )
    return ActFacts(
        patient=patient,
        related_persons=lookup.search(session, "RelatedPerson", [("patient", patient)]),
        directives=privacy.advance_directives(_unique(found), at),
        capacity=privacy.has_capacity(capacity),
        consents=lookup.search(session, "Consent", [("patient", patient)]),
        at=at,
    )


def representative_role(basis: str) -> list[dict[str, Any]]:
    """The CareTeam role of a nominated representative."""
    return [
        {
            "coding": [privacy.mhca_coding("nominated-representative")],
            "text": f"Nominated representative ({basis})",
        }
    ]


def _basis(session: Session, facts: ActFacts, person_ref: str) -> str:
    """The provision the confirmed person is deemed on (s14(4), s15), else the patient's own
    appointment (s14(1))."""
    named = privacy.representatives_named(facts.directives, facts.at)
    patient = lookup.read(session, facts.patient) or {}
    _, candidates = privacy.propose_representative(
        facts.related_persons,
        named,
        patient_birth_date=patient.get("birthDate"),
        on=facts.at.date(),
    )
    found = next((c for c in candidates if c.person == person_ref), None)
    return found.basis if found is not None else "s14(1), appointed by the patient"


def _with_member(team: dict[str, Any], member: str, role: list[dict[str, Any]]) -> dict[str, Any]:
    participants = [
        p
        for p in team.get("participant") or []
        if (p.get("member") or {}).get("reference") != member
    ]
    return {**team, "participant": [*participants, {"role": role, "member": {"reference": member}}]}


def confirm_representative(
    session: Session, person_id: str, caller: Caller, at: datetime
) -> StoredResource:
    """Record the case manager's confirmation of ``RelatedPerson/person_id`` as the patient's
    nominated representative, and put them in the patient's live care teams in that role."""
    if not (caller.can("RelatedPerson", "u") and caller.can("CareTeam", "u")):
        raise Forbidden(
            "Not permitted: confirming a nominated representative updates RelatedPerson and CareTeam"
        )
    person = svc.read(session, "RelatedPerson", person_id, caller).content
    patient = (person.get("patient") or {}).get("reference") or ""
    if not patient.startswith("Patient/"):
        raise InvalidRequest(
            f"RelatedPerson/{person_id} has no patient", expression=["RelatedPerson.patient"]
        )
    facts = act_facts(session, patient, at)
    ref = f"RelatedPerson/{person_id}"
    current = facts.representative
    if current is not None and current != ref:
        raise BusinessRule(
            f"{patient} already has a nominated representative ({current}); the patient or the Board "
            "revokes that appointment first (s16)"
        )
    if person.get("active") is False or privacy.is_minor(person, at.date()):
        raise BusinessRule(
            f"{ref} cannot be a nominated representative: inactive, or a minor (s14(3))"
        )
    basis = _basis(session, facts, ref)
    stored = svc.update(
        session,
        "RelatedPerson",
        person_id,
        privacy.as_nominated_representative(person, basis),
        caller,
    ).stored
    role = representative_role(basis)
    for team in lookup.search(session, "CareTeam", [("patient", patient), ("status", _LIVE_TEAM)]):
        svc.update(session, "CareTeam", team["id"], _with_member(team, ref, role), caller)
    assert stored is not None
    return svc.shaped_for(caller, stored)


def patient_records(
    session: Session, patient_id: str, caller: Caller, at: datetime
) -> dict[str, Any]:
    """The patient's records as they may receive them (s25), with the notices of what is withheld."""
    if not all(caller.can(t, "r") for t in ("Patient", *RECORD_TYPES)):
        raise Forbidden(
            "Not permitted: the patient's records are read in full before anything is withheld"
        )
    patient = svc.read(session, "Patient", patient_id, caller).content
    ref = f"Patient/{patient_id}"
    found = [patient] + [
        r for res_type in RECORD_TYPES for r in lookup.search(session, res_type, [("patient", ref)])
    ]
    withholdings = [
        c for c in found if c["resourceType"] == "Consent" and privacy.withholding_ground(c)
    ]
    released, notices = privacy.patient_records(found, withholdings, at=at)
    released = [
        r for r in released if not privacy.withholding_ground(r)
    ]  # the decisions themselves stay with the team
    entries = [{"resource": r} for r in released]
    if notices:
        outcome = {
            "resourceType": "OperationOutcome",
            "issue": [
                {"severity": "information", "code": "suppressed", "diagnostics": text}
                for text in notices
            ],
        }
        entries.insert(0, {"resource": outcome})
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


# -- write checks --------------------------------------------------------------------------------

_IDENTIFIED = ("Patient", "RelatedPerson", "Organization", "Practitioner", "Location")


def install(rules: hooks.Rules, settings: Settings) -> None:
    """Register the checks (the identifiers' ABDM systems: the app's settings, at each write)."""
    del settings
    rules.before_write("Consent", check_consent)
    for res_type in _IDENTIFIED:
        rules.before_write(res_type, check_identifiers)


def check_consent(event: WriteEvent) -> list[Issue] | None:
    """A recorded release or withholding that lacks what the Act asks is refused (422)."""
    doc = event.after
    if doc is None:
        return None
    problems = privacy.release_problems(doc) + privacy.withholding_problems(doc)
    if problems:
        kind = "release (s23(2))" if privacy.release_exception(doc) else "withholding (s25(2))"
        raise BusinessRule(
            f"This {kind} needs: {'; '.join(what for _, what in problems)}",
            issues=[
                Issue(f"needs {what}", code="business-rule", expression=[path])
                for path, what in problems
            ],
        )
    return None


def check_identifiers(event: WriteEvent) -> list[Issue] | None:
    """ABDM identifiers of the right form, normalised in place (mutates ``event.after``)."""
    doc = event.after
    if doc is None:
        return None
    settings, bad = hooks.settings_of(event.session), []
    systems = AbdmSystems(
        settings.abha_number_system, settings.abha_address_system, settings.hfr_system
    )
    for i, ident in enumerate(doc.get("identifier") or []):
        if not isinstance(ident, dict) or not isinstance(ident.get("value"), str):
            continue
        checked = systems.check(str(ident.get("system")), ident["value"])
        if checked is None:
            bad.append(
                Issue(
                    f"The value is not a valid identifier of {ident.get('system')} "
                    "(ABHA number: 14 digits; ABHA address: name@abdm; HFR id: IN and 10 digits)",
                    expression=[f"{event.res_type}.identifier[{i}].value"],
                )
            )
        else:
            ident["value"] = checked
    if bad:
        raise InvalidRequest(bad[0].diagnostics, issues=bad)
    return None
