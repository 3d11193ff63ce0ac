"""Confidentiality (MHCA s23) and the patient's access to their records (s25).

s23(2): the information of a patient of an MHCA facility is released only

* (a) to the nominated representative, to fulfil the representative's duties;
* (b) to mental health and other health professionals providing care and treatment: here the care
  team, i.e. the people and organisations of the patient's CareTeams and the partners that own one
  of the patient's referrals (a partner offered a referral it has not taken is not yet one);
* (c) when necessary to protect another person from harm or violence, and then (d) only the
  information necessary to protect against the harm identified;
* (e) only the information necessary to prevent threat to life;
* (f) upon an order of the Board, the Central Authority, a High Court, the Supreme Court or another
  competent statutory authority;
* (g) in the interests of public safety and security.

(a) and (b) follow from who the recipient is. (c)–(g) are decisions someone takes; each is
recorded as a *release*: a ``Consent`` whose ``category`` carries ``MHCA_SYSTEM|s23-2-c`` (``-e``,
``-f``, ``-g``), ``performer`` who decided, ``provision`` (``permit``) naming the recipient
(``actor``) and the information released (``data``: always named, so that only what is necessary
goes), ``policyRule.text`` the reason, and for (f) the order itself (``sourceReference`` or
``sourceAttachment``). ``release_problems`` says what a recorded release lacks; one that lacks
anything releases nothing. ``release_decision`` answers for one recipient and one resource.

s25: the patient may see their basic records; the mental health professional in charge may
withhold specific information whose disclosure would cause serious mental harm to the patient
(s25(2)(a)) or likely harm to others (s25(2)(b)), and must tell the patient of the right to apply
to the Board for its release (s25(3)). A *withholding* is a ``Consent`` with ``category``
``MHCA_SYSTEM|s25-2-a`` (or ``-b``), ``provision`` ``deny`` with the withheld ``data``,
``performer`` the professional, ``policyRule.text`` the recorded reason. ``patient_records`` gives
what the patient receives and the notices that go with it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fhir_gateway.privacy._mhca import MHCA_SYSTEM, consent_in_force

__all__ = [
    "EXCEPTIONS",
    "RECORDED_EXCEPTIONS",
    "WITHHOLDING_GROUNDS",
    "ReleaseDecision",
    "release_exception",
    "release_problems",
    "release_decision",
    "withholding_ground",
    "withholding_problems",
    "patient_records",
]

EXCEPTIONS = {
    "s23-2-a": "s23(2)(a), to the nominated representative",
    "s23-2-b": "s23(2)(b), to those providing care and treatment",
    "s23-2-c": "s23(2)(c)–(d), only what is necessary to protect another person from harm",
    "s23-2-e": "s23(2)(e), only what is necessary to prevent threat to life",
    "s23-2-f": "s23(2)(f), upon an order of the Board, a court or a competent authority",
    "s23-2-g": "s23(2)(g), in the interests of public safety and security",
}
RECORDED_EXCEPTIONS = frozenset({"s23-2-c", "s23-2-e", "s23-2-f", "s23-2-g"})
_NEEDS_REASON = frozenset({"s23-2-c", "s23-2-e", "s23-2-g"})
WITHHOLDING_GROUNDS = {
    "s25-2-a": "serious mental harm to you",
    "s25-2-b": "the likelihood of harm to other persons",
}


@dataclass(frozen=True, slots=True)
class ReleaseDecision:
    permitted: bool
    reason: str
    exception: str | None = None  # the s23(2) code it rests on
    release: str | None = None  # Consent/ID of the recorded release used

    def __bool__(self) -> bool:
        return self.permitted


def _section_codes(consent: dict[str, Any], prefix: str) -> list[str]:
    return [
        str(c.get("code"))
        for concept in consent.get("category") or []
        if isinstance(concept, dict)
        for c in concept.get("coding") or []
        if isinstance(c, dict)
        and c.get("system") == MHCA_SYSTEM
        and str(c.get("code") or "").startswith(prefix)
    ]


def release_exception(consent: dict[str, Any]) -> str | None:
    """The s23(2) exception a Consent records a release under, or None (not a release)."""
    if consent.get("resourceType") != "Consent":
        return None
    codes = _section_codes(consent, "s23-2-")
    return codes[0] if codes else None


def _refs(items: Any, key: str) -> list[str]:
    return [
        str((item.get(key) or {}).get("reference"))
        for item in items or []
        if isinstance(item, dict) and (item.get(key) or {}).get("reference")
    ]


def _shared_problems(consent: dict[str, Any], kind: str) -> list[tuple[str, str]]:
    provision = consent.get("provision") or {}
    problems = []
    if not [
        r for r in consent.get("performer") or [] if isinstance(r, dict) and r.get("reference")
    ]:
        problems.append(("Consent.performer", f"who decided the {kind} (performer)"))
    if not _refs(provision.get("data"), "reference"):
        problems.append(
            ("Consent.provision.data", f"the information the {kind} covers (provision.data)")
        )
    if not str((consent.get("policyRule") or {}).get("text") or "").strip():
        if kind == "withholding" or release_exception(consent) in _NEEDS_REASON:
            problems.append(("Consent.policyRule.text", "the recorded reason (policyRule.text)"))
    return problems


def release_problems(consent: dict[str, Any]) -> list[tuple[str, str]]:
    """What a recorded release lacks: (FHIRPath of the element, what is missing). Empty: valid."""
    code = release_exception(consent)
    if code is None:
        return []
    if code not in RECORDED_EXCEPTIONS:
        return [
            (
                "Consent.category",
                f"{code}: s23(2)(a) and (b) follow from who the recipient is and are not recorded; "
                "a release is s23-2-c, s23-2-e, s23-2-f or s23-2-g",
            )
        ]
    provision = consent.get("provision") or {}
    problems = _shared_problems(consent, "release")
    if provision.get("type") != "permit":
        problems.append(("Consent.provision.type", "a release permits (provision.type permit)"))
    if not _refs(provision.get("actor"), "reference"):
        problems.append(("Consent.provision.actor", "the recipient (provision.actor)"))
    if code == "s23-2-f" and not (
        consent.get("sourceReference") or consent.get("sourceAttachment")
    ):
        problems.append(
            ("Consent.sourceReference", "the order itself (sourceReference or sourceAttachment)")
        )
    return problems


def release_decision(
    *,
    recipient: str,
    resource: str,
    at: datetime,
    representative: str | None,
    care_team: Iterable[str],
    releases: Iterable[dict[str, Any]],
) -> ReleaseDecision:
    """May an MHCA patient's ``resource`` (``Type/ID``) go to ``recipient``? Only under s23(2)."""
    if representative is not None and recipient == representative:
        return ReleaseDecision(True, f"{recipient} is the nominated representative", "s23-2-a")
    if recipient in set(care_team):
        return ReleaseDecision(True, f"{recipient} provides care and treatment", "s23-2-b")
    reasons = []
    for consent in releases:
        code, ref = release_exception(consent), f"Consent/{consent.get('id')}"
        provision = consent.get("provision") or {}
        if code is None or recipient not in _refs(provision.get("actor"), "reference"):
            continue
        if release_problems(consent):
            reasons.append(f"{ref} lacks {', '.join(w for _, w in release_problems(consent))}")
        elif not consent_in_force(consent, at):
            reasons.append(f"{ref} is not in force")
        elif resource not in _refs(provision.get("data"), "reference"):
            reasons.append(f"{ref} does not name {resource}: only what it names is released")
        else:
            return ReleaseDecision(True, f"{ref}: {EXCEPTIONS[code]}", code, ref)
    reasons = reasons or [
        f"{recipient} is neither the nominated representative nor in the care team, and no release names it"
    ]
    return ReleaseDecision(False, "; ".join(reasons))


def withholding_ground(consent: dict[str, Any]) -> str | None:
    if consent.get("resourceType") != "Consent":
        return None
    codes = _section_codes(consent, "s25-2-")
    return codes[0] if codes else None


def withholding_problems(consent: dict[str, Any]) -> list[tuple[str, str]]:
    """What a recorded withholding (s25(2)) lacks; empty when it is complete."""
    ground = withholding_ground(consent)
    if ground is None:
        return []
    problems = _shared_problems(consent, "withholding")
    if ground not in WITHHOLDING_GROUNDS:
        problems.append(("Consent.category", f"{ground}: the grounds are s25-2-a and s25-2-b"))
    if (consent.get("provision") or {}).get("type") != "deny":
        problems.append(("Consent.provision.type", "a withholding denies (provision.type deny)"))
    return problems


def _notice(consent: dict[str, Any], count: int) -> str:
    ground = WITHHOLDING_GROUNDS[withholding_ground(consent) or "s25-2-a"]
    who = next(
        (
            p.get("display") or p.get("reference")
            for p in consent.get("performer") or []
            if isinstance(p, dict)
        ),
        "the mental health professional in charge",
    )
    when = str(consent.get("dateTime") or "")[:10]
    items = "one item" if count == 1 else f"{count} items"
    return (
        f"Part of your records ({items}) is withheld{f' since {when}' if when else ''} by {who}, "
        f"because disclosing it would result in {ground}: "
        f"{str((consent.get('policyRule') or {}).get('text') or '').strip()}. "
        "You have the right to apply to the Mental Health Review Board for an order to release it "
        "(Mental Healthcare Act 2017, s25(3))."
    )


def patient_records(
    resources: Iterable[dict[str, Any]],
    withholdings: Iterable[dict[str, Any]],
    *,
    at: datetime,
) -> tuple[list[dict[str, Any]], list[str]]:
    """What the patient receives of ``resources`` (s25(1)) and the notices (s25(3)) of what is
    withheld. A withholding that is incomplete or not in force withholds nothing."""
    valid = [
        w
        for w in withholdings
        if withholding_ground(w) and not withholding_problems(w) and consent_in_force(w, at)
    ]
    resources = list(resources)
    present = {f"{r.get('resourceType')}/{r.get('id')}" for r in resources}
    withheld: set[str] = set()
    notices = []
    for w in valid:
        named = set(_refs((w.get("provision") or {}).get("data"), "reference")) & present
        if named:
            withheld |= named
            notices.append(_notice(w, len(named)))
    released = [r for r in resources if f"{r.get('resourceType')}/{r.get('id')}" not in withheld]
    return released, notices
