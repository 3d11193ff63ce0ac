"""The patient page's timeline: who did what, newest first, in names and the facility's time.

Read from what the gateway keeps anyway, through the viewer's eyes: the hospital's visits (the
facility that sent them), each care plan, each referral transition (the workflow's Provenance
names who made it), each alert raised and who acknowledged or resolved it, each consent and who
recorded it (the Provenance the patient page writes), and the messages about the patient.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fhir_gateway.web._display import task_state
from fhir_gateway.web._patient_alerts import reviews_of
from fhir_gateway.web._patient_reader import PatientReader, codings, concept_text
from fhir_gateway.web._patient_text import visit_kind, with_names

__all__ = ["TimelineRow", "timeline", "TIMELINE_ROWS"]

TIMELINE_ROWS = 100
_TRANSITION = "http://fhir-gateway.org/fhir/StructureDefinition/task-transition"
_ALERT_CATEGORY = "alert"


@dataclass(frozen=True, slots=True)
class TimelineRow:
    raw_at: str
    at: str  # in words
    at_iso: str
    who: str
    what: str


class _Collect:
    def __init__(self, reader: PatientReader) -> None:
        self.reader = reader
        self.entries: list[TimelineRow] = []

    def add(self, at: Any, who: str, what: str) -> None:
        if not at:
            return
        clock = self.reader.clock
        self.entries.append(TimelineRow(str(at), clock.when(at), clock.iso(at), who, what))


def timeline(reader: PatientReader) -> list[TimelineRow]:
    out = _Collect(reader)
    _visits(out)
    _plans(out)
    _referrals(out)
    _alerts(out)
    _consents(out)
    _messages(out)
    ordered = sorted(out.entries, key=lambda e: reader.clock.iso(e.raw_at), reverse=True)
    return ordered[:TIMELINE_ROWS]


def _sender_of(reader: PatientReader, encounter_id: str) -> str:
    headers = reader.find("MessageHeader", [("focus", f"Encounter/{encounter_id}")])
    for header in headers:
        if header.get("sender"):
            return reader.who(header["sender"], missing="the hospital")
    return "the hospital"


def _visits(out: _Collect) -> None:
    for enc in out.reader.of_patient("Encounter", "subject"):
        period, kind = enc.get("period") or {}, visit_kind(enc)
        who = _sender_of(out.reader, str(enc.get("id")))
        if enc.get("serviceProvider"):
            who = out.reader.who(enc["serviceProvider"], missing=who)
        started = "came to the emergency department" if kind.startswith("Emergency") else None
        out.add(
            period.get("start"), who, f"{kind} began" if started is None else f"Patient {started}"
        )
        if period.get("end"):
            ended = "Patient discharged" if kind == "Hospital stay" else f"{kind} ended"
            out.add(period["end"], who, ended)


def _plans(out: _Collect) -> None:
    for plan in out.reader.of_patient("CarePlan", "subject"):
        who = out.reader.who(plan.get("author"), missing="the gateway")
        at = plan.get("created") or (plan.get("period") or {}).get("start")
        out.add(at, who, f"Care plan made: {plan.get('title') or 'care plan'}")


def _service(reader: PatientReader, task: dict[str, Any]) -> str:
    request = reader.names.resource(task.get("focus")) or {}
    return concept_text(request.get("code"), "a referral")


def _transitions(
    provenance: dict[str, Any], task: str
) -> list[tuple[str | None, str, list[dict[str, Any]]]]:
    """(from, to, reasons) of each of ``task``'s transitions the Provenance records. One written
    before a Provenance covered a whole event names no ``target`` part: it is the Task's own."""
    out = []
    for ext in provenance.get("extension") or []:
        if ext.get("url") != _TRANSITION:
            continue
        parts = {p.get("url"): p for p in ext.get("extension") or []}
        target = ((parts.get("target") or {}).get("valueReference") or {}).get("reference")
        after = (parts.get("to") or {}).get("valueCode")
        if after is None or (target is not None and target.split("/_history")[0] != task):
            continue
        reason = parts.get("reason")
        reasons = [reason["valueCodeableConcept"]] if reason else []
        if target is None:
            reasons = provenance.get("reason") or []
        out.append(((parts.get("from") or {}).get("valueCode"), after, reasons))
    return out


def _referrals(out: _Collect) -> None:
    reader = out.reader
    for task in reader.of_patient("Task"):
        service, partner = _service(reader, task), reader.who(task.get("owner"), missing="")
        to_whom = f" ({partner})" if partner else ""
        task_ref = f"Task/{task.get('id')}"
        for prov in reader.find("Provenance", [("target", task_ref)]):
            who = reader.who((prov.get("agent") or [{}])[0].get("who"), missing="the gateway")
            for before, after, reasons in _transitions(prov, task_ref):
                what = f"Referral for {service}{to_whom}: {task_state(after).lower()}"
                if before:
                    what += f" (was {task_state(before).lower()})"
                reason = ", ".join(concept_text(r) for r in reasons)
                out.add(prov.get("recorded"), who, f"{what}. {reason}".strip() if reason else what)


def _alerts(out: _Collect) -> None:
    reader = out.reader
    for flag in reader.of_patient("Flag"):
        kind = concept_text({"coding": codings(flag.get("code"))}, "Alert")
        who = reader.who(flag.get("author"), missing="the gateway")
        out.add((flag.get("period") or {}).get("start"), who, f"Alert raised: {kind}")
        for review in reviews_of(reader, flag):
            out.add(review.raw_at, review.by, f"{review.words} the alert “{kind}”: {review.note}")


def _consents(out: _Collect) -> None:
    reader = out.reader
    for consent in reader.of_patient("Consent"):
        signed_by = ", ".join(reader.who(p) for p in consent.get("performer") or [])
        summary = with_names(reader, _consent_words(consent))
        out.add(consent.get("dateTime"), signed_by or "the patient", f"Signed {summary}")
        for prov in reader.find("Provenance", [("target", f"Consent/{consent.get('id')}")]):
            who = reader.who((prov.get("agent") or [{}])[0].get("who"))
            out.add(prov.get("recorded"), who, f"Recorded {summary}")


def _consent_words(consent: dict[str, Any]) -> str:
    provision = consent.get("provision") if isinstance(consent.get("provision"), dict) else {}
    assert isinstance(provision, dict)
    labels = {c.get("code") for c in provision.get("securityLabel") or []}
    actors = [
        str((a.get("reference") or {}).get("reference"))
        for a in provision.get("actor") or []
        if (a.get("reference") or {}).get("reference")
    ]
    kind = "a Part 2 consent" if labels & {"ETH", "42CFRPart2"} else "a consent"
    return f"{kind} for {', '.join(actors)}" if actors else kind


def _messages(out: _Collect) -> None:
    reader = out.reader
    for message in reader.of_patient("Communication", "subject"):
        categories = {c.get("code") for cat in message.get("category") or [] for c in codings(cat)}
        if _ALERT_CATEGORY in categories:
            continue  # the alert itself is on the timeline
        text = " ".join(
            str(p.get("contentString"))
            for p in message.get("payload") or []
            if p.get("contentString")
        )
        who = reader.who(message.get("sender"), missing="someone")
        to = ", ".join(reader.who(r) for r in message.get("recipient") or [])
        words = f"Message to {to}: {text}" if to else f"Message: {text}"
        out.add(message.get("sent") or message.get("received"), who, words[:300])
