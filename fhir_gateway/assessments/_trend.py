"""Response and remission from a patient's repeated totals, as Observations.

The series of one instrument (PHQ-9 total 44261-6, GAD-7 total 70274-6: ``final``/``amended``
Observations with a ``valueInteger``) is split into episodes at each discharge; the baseline of an
episode is its first total at or after the discharge (before any discharge: the first total).
For every total the gateway derives

* **remission** (``MBC|remission``): ``valueBoolean`` total below 5, ``derivedFrom`` the total;
* **response** (``MBC|response``), for each total after the baseline: ``valueBoolean`` a drop of at
  least 50% from the baseline, ``derivedFrom`` the baseline and the total, with the change in
  percent as a component (a baseline of 0 has nothing to drop from: no response is derived).

Both carry the total (and the baseline) as components coded with the instrument's LOINC code, so
``Observation?code=<MBC>|response&component-code=http://loinc.org|44261-6`` finds PHQ-9 responses.
Idempotent: stable ids, unchanged content is not written again; a total that is withdrawn
(entered-in-error, deleted) withdraws what was derived from it. Written as the gateway (they are
its computation), in the transaction of the total.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from fhir_gateway.assessments._mbc_codes import (
    BASELINE,
    CHANGE,
    LOINC,
    MBC,
    REMISSION,
    RESPONSE,
    MeasuredInstrument,
    ensure_codesystem,
    instrument_of_total,
)
from fhir_gateway.context import SYSTEM
from fhir_gateway.hooks import WriteEvent
from fhir_gateway.services import lookup
from fhir_gateway.store import repository as repo
from fhir_gateway.store.keyed_ids import keyed_id
from fhir_gateway.store.repository import StoredResource
from fhir_gateway.store.search import match_ids

__all__ = [
    "ScoredTotal",
    "MAX_SERIES",
    "totals_of",
    "derive",
    "recompute",
    "on_observation",
    "discharges_of",
]

MAX_SERIES = 400  # totals of one instrument for one patient read at once (years of monthly scores)
_RESULTS = frozenset({"final", "amended", "corrected"})
_CATEGORY = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "survey",
            "display": "Survey",
        }
    ]
}
_NAMESPACE = uuid.UUID("9d4f2a61-7b3e-4c8d-a1f0-5e6b7c8d9e0f")


@dataclass(frozen=True, slots=True)
class ScoredTotal:
    ref: str  # Observation/id
    at: datetime
    value: int
    effective: str  # as written
    labels: tuple[tuple[str, str], ...] = ()  # meta.security (system, code) of the total


def _instant(text: Any) -> datetime | None:
    if not isinstance(text, str) or len(text) < 10:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else None


def _total(observation: dict[str, Any]) -> ScoredTotal | None:
    value = observation.get("valueInteger")
    effective = observation.get("effectiveDateTime") or observation.get("issued")
    at = _instant(effective)
    if observation.get("status") not in _RESULTS or not isinstance(value, int) or at is None:
        return None
    if isinstance(value, bool):
        return None
    labels = tuple(
        (str(c.get("system")), str(c.get("code")))
        for c in (observation.get("meta") or {}).get("security") or []
        if isinstance(c, dict) and c.get("code")
    )
    return ScoredTotal(f"Observation/{observation['id']}", at, value, str(effective), labels)


def totals_of(observations: Sequence[dict[str, Any]]) -> list[ScoredTotal]:
    """The usable totals, oldest first (pure)."""
    found = [t for t in (_total(o) for o in observations) if t is not None]
    return sorted(found, key=lambda t: (t.at, t.ref))


def _episodes(totals: list[ScoredTotal], discharges: Sequence[datetime]) -> list[list[ScoredTotal]]:
    """Totals grouped by the latest discharge at or before each (pure)."""
    marks = sorted(discharges)
    groups: dict[int, list[ScoredTotal]] = {}
    for total in totals:
        index = sum(1 for d in marks if d <= total.at)
        groups.setdefault(index, []).append(total)
    return [groups[k] for k in sorted(groups)]


def _id(kind: str, total: ScoredTotal) -> str:
    return keyed_id(_NAMESPACE, f"{kind}|{total.ref}")


def _component(system: str, code: str, display: str, **value: Any) -> dict[str, Any]:
    return {"code": {"coding": [{"system": system, "code": code, "display": display}]}, **value}


def _observation(
    kind: str,
    display: str,
    instrument: MeasuredInstrument,
    total: ScoredTotal,
    subject: str,
    value: bool,
) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": _id(kind, total),
        "status": "final",
        "category": [_CATEGORY],
        "code": {
            "coding": [{"system": MBC, "code": kind, "display": display}],
            "text": f"{instrument.name} {display.lower()}",
        },
        "subject": {"reference": subject},
        "effectiveDateTime": total.effective,
        "valueBoolean": value,
        "component": [
            _component(
                LOINC,
                instrument.total_code,
                f"{instrument.name} total score",
                valueInteger=total.value,
            )
        ],
    }


def _label(doc: dict[str, Any], sources: list[ScoredTotal]) -> None:
    """What is derived from labelled totals carries their labels (PSY, Part 2, …)."""
    labels = sorted({label for total in sources for label in total.labels})
    if labels:
        doc["meta"] = {"security": [{"system": s, "code": c} for s, c in labels]}


def derive(
    instrument: MeasuredInstrument,
    subject: str,
    totals: list[ScoredTotal],
    discharges: Sequence[datetime],
) -> list[dict[str, Any]]:
    """The remission and response Observations of a series (pure)."""
    derived: list[dict[str, Any]] = []
    for episode in _episodes(totals, discharges):
        baseline = episode[0]
        for total in episode:
            remission = _observation(
                REMISSION,
                "Remission",
                instrument,
                total,
                subject,
                total.value < instrument.remission_below,
            )
            remission["derivedFrom"] = [{"reference": total.ref}]
            _label(remission, [total])
            derived.append(remission)
            if total is baseline or baseline.value <= 0:
                continue
            drop = (baseline.value - total.value) / baseline.value
            response = _observation(
                RESPONSE,
                "Response to treatment",
                instrument,
                total,
                subject,
                drop >= instrument.response_drop,
            )
            response["derivedFrom"] = [{"reference": baseline.ref}, {"reference": total.ref}]
            _label(response, [baseline, total])
            response["component"] += [
                _component(MBC, BASELINE, "Baseline total", valueInteger=baseline.value),
                _component(
                    MBC,
                    CHANGE,
                    "Change from baseline",
                    valueQuantity={
                        "value": round(-100 * drop, 1),
                        "unit": "%",
                        "system": "http://unitsofmeasure.org",
                        "code": "%",
                    },
                ),
            ]
            derived.append(response)
    return derived


# -- reading and storing -------------------------------------------------------------------------


def _search(session: Session, res_type: str, params: list[tuple[str, str]]) -> list[dict[str, Any]]:
    ids = match_ids(session, res_type, params, caller=SYSTEM, limit=MAX_SERIES)
    return [s.content for s in repo.read_many(session, res_type, ids) if not s.deleted]


def discharges_of(session: Session, patient: str) -> list[datetime]:
    """When the patient's planned discharges ended (each plan's finished Encounter)."""
    found = []
    for plan in _search(session, "CarePlan", [("subject", patient)]):
        encounter = lookup.read(session, (plan.get("encounter") or {}).get("reference")) or {}
        end = _instant((encounter.get("period") or {}).get("end"))
        if encounter.get("status") == "finished" and end is not None:
            found.append(end)
    return sorted(set(found))


def _labels(doc: dict[str, Any]) -> set[tuple[Any, Any]]:
    return {(c.get("system"), c.get("code")) for c in (doc.get("meta") or {}).get("security") or []}


def _same(current: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """Unchanged: the same content, and every label wanted already there (the store may add its
    own labels, which must not make each run write a new version)."""
    content = {k: v for k, v in current.items() if k != "meta"}
    return content == {k: v for k, v in wanted.items() if k != "meta"} and _labels(
        wanted
    ) <= _labels(current)


def recompute(session: Session, patient: str, instrument: MeasuredInstrument) -> int:
    """Bring the patient's derived Observations of ``instrument`` up to date; returns how many
    were written."""
    series = _search(
        session, "Observation", [("patient", patient), ("code", f"{LOINC}|{instrument.total_code}")]
    )
    wanted = derive(instrument, patient, totals_of(series), discharges_of(session, patient))
    existing = _search(
        session,
        "Observation",
        [
            ("patient", patient),
            ("code", f"{MBC}|{RESPONSE},{MBC}|{REMISSION}"),
            ("component-code", f"{LOINC}|{instrument.total_code}"),
        ],
    )
    current = {str(o["id"]): o for o in existing}
    written = 0
    if wanted:
        ensure_codesystem(session)
    for doc in wanted:
        if doc["id"] in current and _same(current[doc["id"]], doc):
            continue
        lookup.save(session, doc)
        written += 1
    keep = {d["id"] for d in wanted}
    for obs_id, doc in current.items():
        if obs_id not in keep and doc.get("status") != "entered-in-error":
            lookup.save(session, {**doc, "status": "entered-in-error"})
            written += 1
    return written


def on_observation(event: WriteEvent, stored: StoredResource | None) -> None:
    after = stored.content if stored is not None and not stored.deleted else None
    before = event.before.content if event.before is not None else None
    doc = after or before or {}
    instrument = instrument_of_total(doc)
    patient = (doc.get("subject") or {}).get("reference") or ""
    if instrument is not None and patient.startswith("Patient/"):
        recompute(event.session, patient, instrument)
