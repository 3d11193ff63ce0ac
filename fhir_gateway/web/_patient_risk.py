"""The patient page's risk banner: the active alerts and the risk signals other parts compute.
This page shows them; it never computes a risk.

* **Alerts** are the patient's active Flags, whoever raised them (the monitors' crisis and
  readmission alerts, a partner's "unable to contact", a screening's crisis alert, …): a new kind
  of alert shows without a change here. The monitors' work items about referrals (no partner,
  sent late, …) are listed apart, as things to do rather than risks.
* **Risk signals** are the patient's Observations marked as such: category ``risk-signal`` of
  ``RISK_CATEGORY_SYSTEM``, or an interpretation that is abnormal (high, low, critical, positive,
  worse). The newest of each kind (its code) shows, with its value, date and source.

* **Active now** is the relapse risk summary (``relapse.risk_summary``): which signals are active,
  each with its source and date, in words, no score; a source the page shows links to it (an
  alert to the alert, a missed follow-up to the follow-up section), a PHQ-9 to its Observation.

An alert a case manager has acknowledged or resolved carries what they wrote in the
``FLAG_REVIEW`` extension (``_patient_alerts``); an acknowledged alert stays on the banner, marked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fhir_gateway import relapse
from fhir_gateway.monitors import MONITOR_FLAGS
from fhir_gateway.web._display import flag_kind
from fhir_gateway.web._patient_alerts import AlertReview, reviews_of
from fhir_gateway.web._patient_reader import PatientReader, codings, concept_text
from fhir_gateway.web._patient_text import with_names

__all__ = [
    "PatientAlert",
    "RiskSignal",
    "ActiveSignal",
    "active_signals",
    "RiskBanner",
    "risk_banner",
    "RISK_CATEGORY_SYSTEM",
    "WORK_ITEM_CODES",
]

RISK_CATEGORY_SYSTEM = "http://fhir-gateway.org/fhir/CodeSystem/observation-category"
_RISK_CATEGORY = "risk-signal"
_INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
_ABNORMAL = frozenset({"A", "AA", "H", "HH", "HU", "L", "LL", "LU", "POS", "DET", "W", "CRIT"})
_RESULT_STATES = frozenset({"final", "amended", "corrected", "preliminary"})
WORK_ITEM_CODES = frozenset(
    {
        "unassigned",
        "late",
        "deadline-at-risk",
        "rerouted",
        "no-encounter",
        "overdue",
        "escalated",
        "unacknowledged",
        "past-deadline",
    }
)
_PRIORITY = {"PH": (0, "High priority"), "PM": (1, "Medium priority"), "PL": (2, "Low priority")}
_FLAG_PRIORITY = "http://hl7.org/fhir/StructureDefinition/flag-priority"


@dataclass(slots=True)
class PatientAlert:
    flag_id: str
    version: int
    kind: str  # in words: "Crisis", "Readmitted", …
    code: str  # the monitors' code, or the first code of the Flag
    text: str  # names, not references
    since: str  # in words, the facility's zone
    since_iso: str
    priority: str  # in words
    raised_by: str
    rank: tuple[int, int, str] = (9, 9, "")  # crisis first, priority, then start
    reviews: list[AlertReview] = field(default_factory=list)

    @property
    def acknowledged(self) -> AlertReview | None:
        return next((r for r in reversed(self.reviews) if r.action == "acknowledged"), None)


@dataclass(frozen=True, slots=True)
class RiskSignal:
    name: str
    value: str
    when: str
    when_iso: str
    interpretation: str
    source: str


@dataclass(frozen=True, slots=True)
class ActiveSignal:
    """One line of the risk summary: what is active, why, since when, and where it comes from."""

    kind: str
    name: str
    text: str
    when: str
    when_iso: str
    source: str  # the source in words
    href: str


@dataclass(slots=True)
class RiskBanner:
    alerts: list[PatientAlert]
    signals: list[RiskSignal]
    work_items: list[PatientAlert]
    active: list[ActiveSignal] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.alerts or self.signals or self.active)


def risk_banner(reader: PatientReader) -> RiskBanner:
    flags = [f for f in reader.of_patient("Flag") if f.get("status") == "active"]
    alerts = _ranked([_alert(reader, f) for f in flags])
    return RiskBanner(
        [a for a in alerts if a.code not in WORK_ITEM_CODES],
        _signals(reader),
        [a for a in alerts if a.code in WORK_ITEM_CODES],
        active_signals(reader),
    )


def active_signals(reader: PatientReader) -> list[ActiveSignal]:
    found = relapse.risk_summary(
        reader.session, reader.caller, reader.settings, reader.patient_ref, reader.clock.today
    )
    return [_active(reader, s) for s in found]


def _active(reader: PatientReader, signal: relapse.Signal) -> ActiveSignal:
    res_type, _, res_id = signal.source.partition("/")
    when = reader.clock.when(signal.at)
    if res_type == "Flag":
        source, href = "its alert below", f"#alert-{res_id}"
    elif res_type == "Encounter":
        source, href = "the follow-up of the discharge", "#follow-up-h"
    else:
        source, href = f"the PHQ-9 of {reader.clock.day(signal.at)}", f"/{res_type}/{res_id}"
    text = with_names(reader, signal.text)
    return ActiveSignal(
        signal.kind, signal.name, text, when, reader.clock.iso(signal.at), source, href
    )


def _code(flag: dict[str, Any]) -> str:
    found = codings(flag.get("code"))
    ours = [c for c in found if c.get("system") == MONITOR_FLAGS and c.get("code")]
    first = (ours or [c for c in found if c.get("code")] or [{}])[0]
    return str(first.get("code") or "alert")


def _priority(flag: dict[str, Any]) -> tuple[int, str]:
    for ext in flag.get("extension") or []:
        if ext.get("url") == _FLAG_PRIORITY:
            for coding in codings(ext.get("valueCodeableConcept")):
                if coding.get("code") in _PRIORITY:
                    return _PRIORITY[coding["code"]]
    return 1, "Priority not stated"


def _alert(reader: PatientReader, flag: dict[str, Any]) -> PatientAlert:
    code = _code(flag)
    order, priority = _priority(flag)
    start = (flag.get("period") or {}).get("start")
    text = with_names(reader, concept_text(flag.get("code"), _kind(flag, code)))
    return PatientAlert(
        flag_id=str(flag.get("id")),
        version=int((flag.get("meta") or {}).get("versionId") or 0),
        kind=_kind(flag, code),
        code=code,
        text=text,
        since=reader.clock.when(start),
        since_iso=reader.clock.iso(start),
        priority=priority,
        raised_by=reader.who(flag.get("author")) if flag.get("author") else "",
        rank=(0 if code == "crisis" else 1, order, start or ""),
        reviews=reviews_of(reader, flag),
    )


def _kind(flag: dict[str, Any], code: str) -> str:
    """The monitors' words for their own codes; another system's display for its code."""
    if code in _MONITOR_KINDS:
        return flag_kind(code)
    display = next((c.get("display") for c in codings(flag.get("code")) if c.get("display")), None)
    return str(display) if display else flag_kind(code)


_MONITOR_KINDS = frozenset({"crisis", "readmission"} | WORK_ITEM_CODES)


def _ranked(alerts: list[PatientAlert]) -> list[PatientAlert]:
    """Crisis first, then by priority; newest first within each."""
    newest = sorted(alerts, key=lambda a: a.rank[2], reverse=True)
    return sorted(newest, key=lambda a: a.rank[:2])


# -- risk signals ----------------------------------------------------------------------------------


def _is_signal(observation: dict[str, Any]) -> bool:
    if observation.get("status") not in _RESULT_STATES:
        return False
    for category in observation.get("category") or []:
        for coding in codings(category):
            if (
                coding.get("system") == RISK_CATEGORY_SYSTEM
                and coding.get("code") == _RISK_CATEGORY
            ):
                return True
    return any(
        c.get("system") == _INTERPRETATION and c.get("code") in _ABNORMAL
        for concept in observation.get("interpretation") or []
        for c in codings(concept)
    )


def _effective(observation: dict[str, Any]) -> str:
    period = observation.get("effectivePeriod") or {}
    return str(
        observation.get("effectiveDateTime")
        or observation.get("effectiveInstant")
        or period.get("end")
        or period.get("start")
        or observation.get("issued")
        or ""
    )


def _value(observation: dict[str, Any]) -> str:
    quantity = observation.get("valueQuantity")
    if isinstance(quantity, dict) and quantity.get("value") is not None:
        unit = quantity.get("unit") or ""
        return (
            f"{quantity['value']} {unit}".strip()
            if unit not in ("{score}", "1")
            else str(quantity["value"])
        )
    for key in ("valueString", "valueInteger", "valueBoolean"):
        if observation.get(key) is not None:
            value = observation[key]
            return ("yes" if value else "no") if isinstance(value, bool) else str(value)
    if observation.get("valueCodeableConcept"):
        return concept_text(observation["valueCodeableConcept"])
    return "no value"


def _kind_key(observation: dict[str, Any]) -> str:
    found = codings(observation.get("code"))
    return (
        f"{found[0].get('system')}|{found[0].get('code')}"
        if found
        else concept_text(observation.get("code"))
    )


def _signals(reader: PatientReader) -> list[RiskSignal]:
    newest: dict[str, dict[str, Any]] = {}
    for obs in reader.of_patient("Observation", "subject"):
        if not _is_signal(obs):
            continue
        key = _kind_key(obs)
        if key not in newest or _effective(obs) > _effective(newest[key]):
            newest[key] = obs
    ordered = sorted(newest.values(), key=_effective, reverse=True)
    return [_signal(reader, obs) for obs in ordered]


def _signal(reader: PatientReader, obs: dict[str, Any]) -> RiskSignal:
    at = _effective(obs)
    sources = [reader.who(p, missing="") for p in obs.get("performer") or []]
    derived = [d for d in obs.get("derivedFrom") or [] if isinstance(d, dict)]
    return RiskSignal(
        name=concept_text(obs.get("code"), "Risk signal"),
        value=_value(obs),
        when=reader.clock.when(at) if at else "no date",
        when_iso=reader.clock.iso(at),
        interpretation=", ".join(concept_text(i) for i in obs.get("interpretation") or []),
        source=", ".join(s for s in sources if s)
        or ("computed from the patient's records" if derived else "recorded for the patient"),
    )
