"""The write side of ``privacy.treating_partner_relapse_rule``: a partner's QuestionnaireResponse
is a warning-signs report of its own about a patient it treats, ``basedOn`` that referral, or it
is refused (a patient it does not treat: 404, exactly as one that does not exist)."""

from __future__ import annotations

from fhir_gateway import privacy
from fhir_gateway.errors import BusinessRule, Forbidden, GatewayError, NotFound
from fhir_gateway.fhir.references import Reference
from fhir_gateway.hooks import WriteEvent
from fhir_gateway.security._policy import treating_referrals

__all__ = ["guard_partner_response"]

_ERRORS: dict[str, type[GatewayError]] = {
    "not-found": NotFound,
    "forbidden": Forbidden,
    "invalid": BusinessRule,
}


def guard_partner_response(event: WriteEvent) -> None:
    """A partner's create or update of a QuestionnaireResponse (the guard calls it)."""
    doc = event.after or {}
    subject = Reference.parse(str((doc.get("subject") or {}).get("reference") or ""))
    treated: dict[str, list[str]] = {}
    if subject is not None and subject.type == "Patient":
        referrals = treating_referrals(event.session, event.caller, subject.id)
        if referrals is not None:
            treated[f"Patient/{subject.id}"] = referrals
    decision = privacy.treating_partner_relapse_rule(doc, event.caller.organization or "", treated)
    if not decision.ok:
        where = [decision.expression] if decision.expression else None
        raise _ERRORS[decision.outcome](decision.why, expression=where)
