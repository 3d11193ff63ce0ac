"""Roles: the most each kind of client may ever do, whatever scopes it was registered with.

A client's rights are its granted SMART scopes *and* its role's ceiling:

    admin         everything, and AuditEvent create/read/search (never update or delete)
    case-manager  everything but AuditEvent
    ehr           read and search everything but AuditEvent
    hospital      create, read, update, search the clinical resources a discharge brings
                  (plus POST /hl7v2 and /$process-message, see ``ROUTE_ROLES``)
    partner       read/search/update Task, read/search ServiceRequest and Patient, read the
                  partner directory, the Consents it receives data under, and
                  create/read/search Communication (messages on its referrals), read the
                  relapse Questionnaires and create/read/search QuestionnaireResponse (a
                  warning-signs report about a patient it treats, and that patient's
                  relapse-prevention plan: ``privacy.treating_partner_relapse_rule``); which rows
                  it sees is the row policy's business
"""

from __future__ import annotations

from dataclasses import dataclass

from fhir_gateway.context import Caller, scope_grants

__all__ = [
    "ROLES",
    "ROUTE_ROLES",
    "TokenCaller",
    "MessageSender",
    "role_allows",
    "scope_within_role",
    "ceiling_text",
]

_CLINICAL_INTAKE = (
    "Patient",
    "Encounter",
    "Condition",
    "Observation",
    "RelatedPerson",
    "Practitioner",
    "PractitionerRole",
    "Organization",
    "Location",
    "AllergyIntolerance",
    "MedicationStatement",
    "MedicationRequest",
    "MedicationDispense",
    "MedicationAdministration",
    "Procedure",
    "Coverage",
    "DocumentReference",
    "EpisodeOfCare",
    "Flag",
    "Device",
    "MessageHeader",
)  # not Provenance: the gateway's own account of who changed what
_DIRECTORY = (
    "Organization",
    "HealthcareService",
    "Location",
    "Endpoint",
    "PractitionerRole",
    "Practitioner",
)

# role → {resource type or "*": allowed letters}; a type listed overrides "*"
_CEILINGS: dict[str, dict[str, str]] = {
    "admin": {"*": "cruds", "AuditEvent": "crs"},
    "case-manager": {"*": "cruds", "AuditEvent": ""},
    "ehr": {"*": "rs", "AuditEvent": ""},
    "hospital": {t: "crus" for t in _CLINICAL_INTAKE},
    "partner": {
        **{t: "rs" for t in _DIRECTORY},
        "Task": "rus",
        "ServiceRequest": "rs",
        "Patient": "rs",
        "Consent": "rs",
        "Communication": "crs",  # messages on its referrals (the row policy and workflow say which)
        "Questionnaire": "rs",  # the relapse plan's and report's (the row policy)
        "QuestionnaireResponse": "crs",  # a treating partner's warning-signs reports (the guard)
    },
}
ROLES = tuple(_CEILINGS)

# Non-FHIR routes: which roles may call them (FHIR routes are checked per interaction).
ROUTE_ROLES: dict[str, frozenset[str]] = {
    "/hl7v2": frozenset({"hospital", "admin"}),
    "/$process-message": frozenset({"hospital", "admin"}),
    "/inbox": frozenset({"case-manager", "admin"}),
}


def role_allows(role: str, resource_type: str, action: str) -> bool:
    ceiling = _CEILINGS.get(role, {})
    letters = ceiling.get(resource_type, ceiling.get("*", ""))
    return action in letters


def scope_within_role(role: str, scope: str) -> bool:
    """Does the role allow at least one thing this scope grants? (registration sanity check)"""
    _, _, rest = scope.partition("/")
    rtype = rest.partition(".")[0]
    types = [rtype] if rtype != "*" else list(_CEILINGS.get(role, {}))
    return any(
        scope_grants(scope, t if t != "*" else "Patient", a)
        and role_allows(role, t if t != "*" else "Patient", a)
        for t in types
        for a in "cruds"
    )


def ceiling_text(role: str) -> str:
    return ", ".join(f"{t}.{letters}" for t, letters in _CEILINGS.get(role, {}).items() if letters)


@dataclass(frozen=True, slots=True)
class TokenCaller(Caller):
    """A caller authenticated by an access token: its scopes, within its role's ceiling."""

    def can(self, resource_type: str, action: str) -> bool:
        if not role_allows(self.role, resource_type, action):
            return False
        return any(scope_grants(scope, resource_type, action) for scope in self.scopes)


@dataclass(frozen=True, slots=True)
class MessageSender(TokenCaller):
    """A client's rights while the intake applies a message it sent for ``sender`` (the row
    policy lets it reach what that sender's earlier messages wrote)."""

    sender: str = ""
