"""The patient page's symptom measures: the measurement Tasks due (with a link to the form), the
questionnaires a case manager can record with the patient, and per instrument the totals over
time as a chart and a table, with response and remission as the gateway derived them. Reads
only, with the page's Caller."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup

from fhir_gateway.assessments import MBC, MEASURED, MeasuredInstrument, is_measurement, totals_of
from fhir_gateway.web._patient_reader import PatientReader, codings
from fhir_gateway.web._trend_chart import ChartPoint, trend_svg

__all__ = ["DueMeasure", "TrendRow", "MeasureTrend", "MeasuresSection", "measures_section"]

LOINC = "http://loinc.org"
_OPEN = ("requested", "received", "accepted", "in-progress", "on-hold", "ready")
MAX_FORMS = 50


@dataclass(frozen=True, slots=True)
class DueMeasure:
    task_id: str
    title: str
    window: str  # "Fri 21 Mar to Thu 27 Mar", the facility's zone
    start_iso: str
    state: str  # due now | upcoming | overdue
    owner: str
    form_url: str | None  # the form of its Questionnaire, when the viewer may read it


@dataclass(frozen=True, slots=True)
class TrendRow:
    when: str
    when_iso: str
    total: int
    response: str  # Yes | No | Baseline (the first total of its episode)
    remission: str


@dataclass(slots=True)
class MeasureTrend:
    key: str
    name: str
    chart: Markup
    rows: list[TrendRow] = field(default_factory=list)


@dataclass(slots=True)
class MeasuresSection:
    due: list[DueMeasure]
    trends: list[MeasureTrend]
    forms: list[tuple[str, str]]  # Questionnaire id, title


def _forms(reader: PatientReader) -> tuple[list[tuple[str, str]], dict[str, str]]:
    found = reader.find("Questionnaire", [("status", "active")])[:MAX_FORMS]
    forms = [(str(q["id"]), str(q.get("title") or q.get("name") or q["id"])) for q in found]
    by_url = {str(q["url"]): str(q["id"]) for q in found if q.get("url")}
    return sorted(forms, key=lambda f: f[1].casefold()), by_url


def _due(reader: PatientReader, by_url: dict[str, str]) -> list[DueMeasure]:
    rows = []
    tasks = [t for t in reader.of_patient("Task") if is_measurement(t) and t.get("status") in _OPEN]
    for task in sorted(
        tasks, key=lambda t: (_period(t).get("start") or "", t.get("description") or "")
    ):
        period = _period(task)
        canonical = next(
            (
                str(i["valueCanonical"]).split("|", 1)[0]
                for i in task.get("input") or []
                if i.get("valueCanonical")
            ),
            "",
        )
        form = by_url.get(canonical)
        rows.append(
            DueMeasure(
                task_id=str(task["id"]),
                title=str(task.get("description") or "Questionnaire due").split(":", 1)[0],
                window=f"{reader.clock.day(period.get('start'))} to {reader.clock.day(period.get('end'))}",
                start_iso=reader.clock.iso(period.get("start")),
                state=_state(reader, period),
                owner=reader.who(task.get("owner"), missing="the case team"),
                form_url=f"/web/patients/{reader.patient_id}/questionnaires/{form}?task={task['id']}"
                if form
                else None,
            )
        )
    return rows


def _period(task: dict[str, Any]) -> dict[str, Any]:
    return (task.get("restriction") or {}).get("period") or {}


def _state(reader: PatientReader, period: dict[str, Any]) -> str:
    if period.get("end") and reader.clock.past(period["end"]):
        return "overdue"
    if period.get("start") and not reader.clock.past(period["start"]):
        return "upcoming"
    return "due now"


def _derived(reader: PatientReader) -> dict[tuple[str, str], dict[str, Any]]:
    """(kind, total reference) → the response or remission Observation."""
    found = reader.find(
        "Observation",
        [("patient", reader.patient_ref), ("code", f"{MBC}|response,{MBC}|remission")],
    )
    out = {}
    for obs in found:
        kind = next((c.get("code") for c in codings(obs.get("code")) if c.get("system") == MBC), "")
        refs = [d.get("reference") for d in obs.get("derivedFrom") or [] if isinstance(d, dict)]
        if obs.get("status") == "final" and refs:
            out[(str(kind), str(refs[-1]))] = obs
    return out


def _yes(obs: dict[str, Any] | None) -> str:
    if obs is None:
        return "—"
    return "Yes" if obs.get("valueBoolean") else "No"


def _baseline(response: dict[str, Any] | None) -> int | None:
    for component in (response or {}).get("component") or []:
        if any(c.get("code") == "baseline" for c in codings(component.get("code"))):
            value = component.get("valueInteger")
            return value if isinstance(value, int) else None
    return None


def _trend(
    reader: PatientReader,
    instrument: MeasuredInstrument,
    derived: dict[tuple[str, str], dict[str, Any]],
) -> MeasureTrend:
    series = reader.find(
        "Observation",
        [("patient", reader.patient_ref), ("code", f"{LOINC}|{instrument.total_code}")],
    )
    totals = totals_of(series)
    rows, points = [], []
    for total in totals:
        response = derived.get(("response", total.ref))
        label = reader.clock.day(total.at)
        points.append(ChartPoint(total.at, label, total.value))
        rows.append(
            TrendRow(
                when=label,
                when_iso=reader.clock.iso(total.at),
                total=total.value,
                response=_yes(response) if response is not None else "Baseline",
                remission=_yes(derived.get(("remission", total.ref))),
            )
        )
    latest = derived.get(("response", totals[-1].ref)) if totals else None
    baseline = _baseline(latest) if latest else (totals[-1].value if totals else None)
    chart = trend_svg(
        instrument.key,
        instrument.name,
        points,
        maximum=instrument.maximum,
        remission_below=instrument.remission_below,
        baseline=baseline,
    )
    return MeasureTrend(instrument.key, instrument.name, chart, rows)


def measures_section(reader: PatientReader) -> MeasuresSection:
    forms, by_url = _forms(reader)
    derived = _derived(reader)
    return MeasuresSection(
        due=_due(reader, by_url),
        trends=[_trend(reader, i, derived) for i in MEASURED],
        forms=forms,
    )
