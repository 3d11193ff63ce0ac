"""What a partner that treats the patient may do with the patient's relapse-prevention plan
(issue 19): read it, and report the warning signs it notices against it, as itself.

**Treats** (``TREATING_STATUSES``): the partner owns a referral Task of the patient that it has
accepted and not finished: ``accepted``, ``in-progress`` or ``on-hold`` (a pause in care that is
still its care). Not ``requested``/``received``/``ready`` (not yet taken on: a partner that only
could claim a referral treats nobody), not ``rejected``, ``cancelled``, ``failed`` or
``entered-in-error`` (no care given), not ``completed`` (the care is over; a new referral makes
it the patient's treating partner again). This is narrower than the *treating relationship* of a
Part 2 class consent (``_recipients``: any referral not refused), which says whom a patient's
consent reaches, not who takes part in the patient's care now. The referral is one the partner
may see: a Part 2 referral hidden from it for want of the patient's consent makes it treat
nobody here.

The rule itself is ``treating_partner_relapse_rule``; the row policy and the write guard
(``security``) enforce it, the labels and consents (``_labels``, ``_consent``) still apply on top.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from fhir_gateway.fhir.references import Reference

__all__ = [
    "TREATING_STATUSES",
    "RELAPSE_PLAN_URL",
    "WARNING_SIGNS_REPORT_URL",
    "RELAPSE_QUESTIONNAIRES",
    "PARTNER_REPORTER",
    "TreatingDecision",
    "treating_partner_relapse_rule",
]

TREATING_STATUSES = ("accepted", "in-progress", "on-hold")
RELAPSE_PLAN_URL = "http://fhir-gateway.org/fhir/Questionnaire/relapse-prevention-plan"
WARNING_SIGNS_REPORT_URL = "http://fhir-gateway.org/fhir/Questionnaire/warning-signs-report"
RELAPSE_QUESTIONNAIRES = (RELAPSE_PLAN_URL, WARNING_SIGNS_REPORT_URL)
PARTNER_REPORTER = "partner"  # the report's reporter code (relapse-reporter code system)


@dataclass(frozen=True, slots=True)
class TreatingDecision:
    """``ok``; else ``not-found`` (answer as for a patient that does not exist), ``forbidden``
    (not the partner's to write) or ``invalid`` (fix the report), with why and where."""

    outcome: str
    why: str = ""
    expression: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


def _canonical(doc: dict[str, Any]) -> str:
    return str(doc.get("questionnaire") or "").split("|", 1)[0]


def _reporter(doc: dict[str, Any]) -> str | None:
    for item in doc.get("item") or []:
        if isinstance(item, dict) and item.get("linkId") == "reporter":
            answers = item.get("answer") or [{}]
            coding = answers[0].get("valueCoding") if isinstance(answers[0], dict) else None
            return str((coding or {}).get("code") or "") or None
    return None


def _refs(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    return [str((v or {}).get("reference") or "") for v in items if isinstance(v, dict)]


def treating_partner_relapse_rule(
    doc: dict[str, Any], organization: str, treated: Mapping[str, Collection[str]]
) -> TreatingDecision:
    """May the partner ``organization`` write this QuestionnaireResponse?

    ``treated``: the patients it treats (``Patient/id``) → the ServiceRequests its treating
    referrals of that patient fulfil (``ServiceRequest/id``).

    Why: a relapse is first seen by whoever is with the patient, and a clinic or programme the
    patient attends sees the signs between the case manager's calls. The patient made the plan to
    be acted on by the people around them, so the partner treating them reads it (the row policy:
    the plan, and the two relapse Questionnaires) and reports what it sees against it. Nothing
    more: a partner records no other kind of response (a PHQ-9 is the case team's to score and
    act on), and never one about a patient it does not treat (answered exactly as a patient that
    does not exist, so a report cannot probe who is on the caseload). The report is its own:
    ``author`` is its Organization and the reporter answer is ``partner`` (a partner cannot speak
    for the patient or the family, whose reports the case manager weighs differently), and it is
    ``basedOn`` the referral it treats under (a ServiceRequest: QuestionnaireResponse.basedOn is
    CarePlan|ServiceRequest in R4), which is what makes the observation traceable to its care.
    """
    if _canonical(doc) != WARNING_SIGNS_REPORT_URL:
        return TreatingDecision(
            "forbidden",
            "A partner may record only a warning-signs report "
            f"({WARNING_SIGNS_REPORT_URL}) about a patient it treats",
            "QuestionnaireResponse.questionnaire",
        )
    subject = Reference.parse(str((doc.get("subject") or {}).get("reference") or ""))
    patient = f"Patient/{subject.id}" if subject is not None and subject.type == "Patient" else ""
    if patient not in treated:
        return TreatingDecision("not-found", f"{patient or 'The subject'} is not known")
    if _refs(doc.get("author")) != [organization]:
        return TreatingDecision(
            "forbidden",
            f"A partner's report is its own: author is {organization}",
            "QuestionnaireResponse.author",
        )
    if _reporter(doc) != PARTNER_REPORTER:
        return TreatingDecision(
            "forbidden",
            "A partner reports as a partner: the reporter answer is 'partner', not the patient, "
            "the family or the care team",
            "QuestionnaireResponse.item.where(linkId='reporter')",
        )
    based_on = _refs(doc.get("basedOn"))
    referrals = set(treated[patient])
    if not based_on or any(ref not in referrals for ref in based_on):
        return TreatingDecision(
            "invalid",
            "A partner's report is basedOn the referral it treats the patient under: "
            "the ServiceRequest of its accepted or in-progress referral Task"
            + (f" (one of {', '.join(sorted(referrals))})" if referrals else ""),
            "QuestionnaireResponse.basedOn",
        )
    return TreatingDecision("ok")
