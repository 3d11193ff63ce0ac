"""One explainable risk summary per patient: which relapse signals are active now, each with the
resource it comes from and its date. No score: a list a case manager can check signal by signal.

| signal | active now when | source, date |
| --- | --- | --- |
| ``follow-up-missed`` | the patient's latest psychiatric discharge of the last ``LOOKBACK_DAYS`` (the monitors' FUH outcome) had no follow-up on day 1..7, its 7-day window has closed, it is not excluded, and no follow-up came since | the discharge Encounter, the discharge day |
| ``medication`` | an active ``refill-late``, ``missed-injection`` or ``low-adherence`` Flag (the adherence engine's) | the Flag, its start |
| ``warning-signs`` | an active ``warning-signs`` Flag (a report that crossed the relapse-prevention plan) | the Flag, its start |
| ``phq9-worse`` | the latest PHQ-9 total (LOINC 44261-6, ``valueInteger``, final/amended/corrected) is at least ``PHQ9_RISE`` (5) points above the one before, or in a higher severity band (0-4 minimal, 5-9 mild, 10-14 moderate, 15-19 moderately severe, 20-27 severe) | the latest Observation, its effective date |
| ``crisis`` | an active ``crisis`` Flag (ED visit after a discharge, the monitors') | the Flag, its start |
| ``readmission`` | an active ``readmission`` Flag | the Flag, its start |
| ``suicide-risk`` | an active ``suicide-risk`` Flag (a screening's) | the Flag, its start |

Cost: for any number of patients, one query for their Flags and one for their PHQ-9 totals per
``CHUNK`` (100) patients, plus the monitors' FUH evaluation (``fuh_outcomes_for``: a fixed number
of queries) and one query for which of those discharges the caller may see. Everything is read
with the caller's rights: a signal whose source the caller may not see is not shown.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy.orm import Session

from fhir_gateway import monitors
from fhir_gateway.context import Caller
from fhir_gateway.settings import Settings
from fhir_gateway.store.search import match_fields

__all__ = [
    "LOOKBACK_DAYS",
    "PHQ9_LOINC",
    "PHQ9_RISE",
    "SIGNAL_KINDS",
    "Signal",
    "phq9_band",
    "phq9_worse",
    "risk_summaries",
    "risk_summary",
]

LOOKBACK_DAYS = 60
PHQ9_LOINC = "44261-6"
PHQ9_RISE = 5
CHUNK = 100
SIGNAL_KINDS = {  # the order a summary lists them in, and their names
    "suicide-risk": "Suicide risk",
    "crisis": "ED visit",
    "readmission": "Readmitted",
    "warning-signs": "Warning signs",
    "medication": "Refill gap or missed injection",
    "phq9-worse": "PHQ-9 worse",
    "follow-up-missed": "7-day follow-up missed",
}
_FLAG_KINDS = {
    monitors.codes.SUICIDE_RISK: "suicide-risk",
    monitors.codes.CRISIS: "crisis",
    monitors.codes.READMISSION: "readmission",
    monitors.codes.WARNING_SIGNS: "warning-signs",
    monitors.codes.REFILL_LATE: "medication",
    monitors.codes.MISSED_INJECTION: "medication",
    monitors.codes.LOW_ADHERENCE: "medication",
}
_BANDS = ((20, "severe"), (15, "moderately severe"), (10, "moderate"), (5, "mild"), (0, "minimal"))
_RESULTS = "final,amended,corrected"


@dataclass(frozen=True, slots=True)
class Signal:
    kind: str  # a SIGNAL_KINDS key
    text: str  # why it is active, in words
    source: str  # Type/id of the resource it comes from
    at: str  # FHIR date or dateTime: when the source says it happened

    @property
    def name(self) -> str:
        return SIGNAL_KINDS[self.kind]


def _chunks(values: Sequence[str]) -> Iterator[list[str]]:
    unique = list(dict.fromkeys(values))
    for start in range(0, len(unique), CHUNK):
        yield unique[start : start + CHUNK]


def _flag_signals(
    session: Session, caller: Caller, patients: list[str]
) -> list[tuple[str, Signal]]:
    out = []
    for chunk in _chunks(patients):
        found = match_fields(
            session,
            "Flag",
            [("_tag", f"{monitors.MONITOR_FLAGS}|"), ("subject", ",".join(chunk))],
            {
                "patient": ("subject", "reference"),
                "start": ("period", "start"),
                "tag": ("meta", "tag", 0, "code"),
                "code": ("code", "coding", 0, "code"),
                "text": ("code", "text"),
            },
            caller=caller,
            equal={("status",): "active"},
        )
        for f in found:
            kind = _FLAG_KINDS.get(f["tag"] or "") or _FLAG_KINDS.get(f["code"] or "")
            if kind:
                signal = Signal(
                    kind, f["text"] or SIGNAL_KINDS[kind], f"Flag/{f['id']}", f["start"] or ""
                )
                out.append((f["patient"] or "", signal))
    return out


def phq9_band(total: int) -> str:
    return next(name for floor, name in _BANDS if total >= floor)


def phq9_worse(latest: int, previous: int) -> bool:
    """The rule: a rise of ``PHQ9_RISE`` points or more, or a higher severity band."""
    order = [name for _, name in reversed(_BANDS)]
    return latest - previous >= PHQ9_RISE or order.index(phq9_band(latest)) > order.index(
        phq9_band(previous)
    )


def _total(value: Any) -> int | None:
    text = str(value) if value is not None else ""
    return int(text) if text.isdigit() and len(text) < 4 else None


def _phq9_signals(
    session: Session, caller: Caller, patients: list[str]
) -> list[tuple[str, Signal]]:
    totals: dict[str, list[tuple[str, str, int]]] = {}
    for chunk in _chunks(patients):
        found = match_fields(
            session,
            "Observation",
            [
                ("code", f"http://loinc.org|{PHQ9_LOINC}"),
                ("subject", ",".join(chunk)),
                ("status", _RESULTS),
            ],
            {
                "patient": ("subject", "reference"),
                "value": ("valueInteger",),
                "at": ("effectiveDateTime",),
                "issued": ("issued",),
            },
            caller=caller,
        )
        for f in found:
            total = _total(f["value"])
            if total is not None:
                at = f["at"] or f["issued"] or ""
                totals.setdefault(f["patient"] or "", []).append((at, f["id"], total))
    out = []
    for patient, rows in totals.items():
        if len(rows) < 2:
            continue
        (_, _, before), (at, obs_id, now) = sorted(rows)[-2:]
        if phq9_worse(now, before):
            text = (
                f"PHQ-9 {now} ({phq9_band(now)}), up from {before} ({phq9_band(before)}) "
                "on the one before"
            )
            out.append((patient, Signal("phq9-worse", text, f"Observation/{obs_id}", at)))
    return out


def _follow_up_signals(
    session: Session, caller: Caller, settings: Settings, patients: list[str], today: date
) -> list[tuple[str, Signal]]:
    since = today - timedelta(days=LOOKBACK_DAYS)
    outcomes = monitors.fuh_outcomes_for(session, settings, since, today, patients)
    latest: dict[str, monitors.Outcome] = {}
    for outcome in outcomes:  # oldest first: the last one wins
        latest[outcome.discharge.patient] = outcome
    missed = [
        o
        for o in latest.values()
        if o.exclusion is None and o.within(30) is None and today > o.local_date + timedelta(days=7)
    ]
    if not missed:
        return []
    ids = ",".join(o.discharge.encounter["id"] for o in missed)
    seen = {f["id"] for f in match_fields(session, "Encounter", [("_id", ids)], {}, caller=caller)}
    return [
        (
            o.discharge.patient,
            Signal(
                "follow-up-missed",
                f"No mental-health follow-up within 7 days of the discharge on "
                f"{o.local_date.isoformat()}, nor since",
                o.discharge.ref,
                o.local_date.isoformat(),
            ),
        )
        for o in missed
        if o.discharge.encounter["id"] in seen
    ]


def risk_summaries(
    session: Session, caller: Caller, settings: Settings, patients: Sequence[str], today: date
) -> dict[str, list[Signal]]:
    """``Patient/id`` → its active signals (in ``SIGNAL_KINDS`` order, newest first within a
    kind), for every patient asked about (an empty list: nothing active)."""
    wanted = list(dict.fromkeys(p for p in patients if p.startswith("Patient/")))
    summaries: dict[str, list[Signal]] = {p: [] for p in wanted}
    if not wanted:
        return summaries
    found = (
        _flag_signals(session, caller, wanted)
        + _phq9_signals(session, caller, wanted)
        + _follow_up_signals(session, caller, settings, wanted, today)
    )
    for patient, signal in found:
        if patient in summaries:
            summaries[patient].append(signal)
    order = list(SIGNAL_KINDS)
    for signals in summaries.values():
        signals.sort(key=lambda s: s.at, reverse=True)
        signals.sort(key=lambda s: order.index(s.kind))
    return summaries


def risk_summary(
    session: Session, caller: Caller, settings: Settings, patient: str, today: date
) -> list[Signal]:
    return risk_summaries(session, caller, settings, [patient], today)[patient]
