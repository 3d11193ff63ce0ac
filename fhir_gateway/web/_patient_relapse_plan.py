"""The patient page's form for writing (or revising) the relapse-prevention plan with the patient
and family: each warning sign in the patient's words, its stage and who notices it; what to do and
whom to call at each stage; how many signs at once should reach the case manager; who made it.

Checked here (pure: fields in, a ``relapse.RelapsePlan`` or what to fix out), then stored as a
completed ``relapse-prevention-plan`` QuestionnaireResponse through ``services.resources.create``
with the user's Caller, so the write rules run as for one POSTed to the API. A revision is a new
response: the newest completed one is the plan, and a sign kept from the plan before keeps its item
id (the reports that named it still read against it).
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.orm import Session

from fhir_gateway import clock, relapse
from fhir_gateway.context import Caller
from fhir_gateway.errors import GatewayError
from fhir_gateway.services import resources
from fhir_gateway.settings import Settings
from fhir_gateway.web._patient_consents import open_reader
from fhir_gateway.web._patient_forms import CheckedForm, Fields
from fhir_gateway.web._patient_provenance import record_provenance

__all__ = ["BLANK_ROWS", "check_plan", "current_plan", "form_rows", "plan_values", "submit_plan"]

BLANK_ROWS = 3  # empty sign rows offered below the plan's own
MAX_SIGN = 300
MAX_WHO = 200
MAX_DO = 2000
MAX_CALL = 300
_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


def _all(fields: Fields, name: str) -> list[str]:
    return [str(v) for v in fields.get(name) or []]


def _one(fields: Fields, name: str) -> str:
    values = _all(fields, name)
    return values[0].strip() if values else ""


def _text(checked: CheckedForm, key: str, text: str, limit: int, label: str) -> str:
    if "\x00" in text:
        checked.errors[key] = f"{label} holds a character that cannot be stored; retype it."
    elif len(text) > limit:
        checked.errors[key] = f"Keep {label.lower()} to {limit} characters (it has {len(text)})."
    return text


def _signs(checked: CheckedForm, fields: Fields) -> list[relapse.Sign]:
    texts, stages = _all(fields, "sign_text"), _all(fields, "sign_stage")
    whos, ids = _all(fields, "sign_who"), _all(fields, "sign_id")
    rows = []
    for n, text in enumerate(texts[: relapse.MAX_SIGNS + BLANK_ROWS]):
        stage = stages[n] if n < len(stages) else ""
        who = (whos[n] if n < len(whos) else "").strip()
        if not text.strip():
            continue  # a blank row
        if stage not in relapse.STAGES:
            checked.errors["signs"] = f"Choose the stage of “{text.strip()[:60]}”."
        rows.append((ids[n] if n < len(ids) else "", text.strip(), stage, who))
    if not rows:
        checked.errors["signs"] = "Write at least one warning sign, in the patient's words."
    elif len(rows) > relapse.MAX_SIGNS:
        checked.errors["signs"] = f"A plan has at most {relapse.MAX_SIGNS} warning signs."
    taken = {i for i, *_ in rows if _ID.match(i)}
    signs: list[relapse.Sign] = []
    used: set[str] = set()
    fresh = 1
    for sign_id, text, stage, who in rows:
        _text(checked, "signs", text, MAX_SIGN, "A warning sign")
        _text(checked, "signs", who, MAX_WHO, "Who notices it")
        if not _ID.match(sign_id) or sign_id in used:  # a new sign: the next free id
            while f"sign-{fresh}" in taken | used:
                fresh += 1
            sign_id = f"sign-{fresh}"
        used.add(sign_id)
        signs.append(relapse.Sign(sign_id, text, stage, who))
    return signs


def check_plan(fields: Fields) -> CheckedForm:
    """The plan's parts, or what to fix (pure)."""
    checked = CheckedForm()
    signs = _signs(checked, fields)
    actions, thresholds = {}, {}
    for stage in relapse.STAGES:
        do = _text(checked, f"do_{stage}", _one(fields, f"do_{stage}"), MAX_DO, "What to do")
        call = _text(
            checked, f"call_{stage}", _one(fields, f"call_{stage}"), MAX_CALL, "Whom to call"
        )
        if not do:
            checked.errors[f"do_{stage}"] = f"Say what to do at the {stage} stage."
        actions[stage] = relapse.StageAction(do, call)
        raw = _one(fields, f"threshold_{stage}")
        if not raw.isdigit() or not 1 <= int(raw) <= relapse.MAX_SIGNS:
            checked.errors[f"threshold_{stage}"] = (
                f"Say how many {stage} signs (or later ones) at once should reach the case "
                f"manager: a whole number from 1 to {relapse.MAX_SIGNS}."
            )
        else:
            thresholds[stage] = int(raw)
    made_with = [w.strip() for w in _one(fields, "made_with").splitlines() if w.strip()]
    for who in made_with:
        _text(checked, "made_with", who, MAX_WHO, "A name")
    if len(made_with) > 20:
        checked.errors["made_with"] = "Name at most 20 people."
    if checked.ok:
        checked.arguments = {
            "plan": relapse.RelapsePlan(tuple(signs), actions, thresholds, tuple(made_with))
        }
    return checked


def plan_values(plan: relapse.RelapsePlan | None) -> dict[str, list[str]]:
    """The form's fields filled from the current plan (a revision starts from it)."""
    if plan is None:
        return {}
    values: dict[str, list[str]] = {
        "sign_id": [s.id for s in plan.signs],
        "sign_text": [s.text for s in plan.signs],
        "sign_stage": [s.stage for s in plan.signs],
        "sign_who": [s.noticed_by for s in plan.signs],
        "made_with": ["\n".join(plan.made_with)],
    }
    for stage in relapse.STAGES:
        values[f"do_{stage}"] = [plan.actions[stage].do]
        values[f"call_{stage}"] = [plan.actions[stage].call]
        values[f"threshold_{stage}"] = [str(plan.thresholds[stage])]
    return values


def current_plan(session: Session, caller: Caller, patient_ref: str) -> relapse.RelapsePlan | None:
    found = relapse.latest_plan(session, caller, patient_ref)
    if found is None:
        return None
    try:
        return relapse.read_plan(found[1])
    except GatewayError:
        return None  # stored by another door and unreadable: the form starts empty


def submit_plan(
    session: Session,
    caller: Caller,
    settings: Settings,
    user: str,
    patient_id: str,
    fields: Fields,
) -> CheckedForm:
    """Check the form and, when right, store the plan and who wrote it (one transaction)."""
    reader = open_reader(session, caller, settings, patient_id)  # 404 for a patient not theirs
    checked = check_plan(fields)
    if not checked.ok:
        return checked
    response = relapse.plan_response(
        reader.patient_ref,
        checked.arguments["plan"],
        authored=clock.to_instant(clock.now()),
        author={"display": f"user:{user}"},
    )
    stored = resources.create(session, "QuestionnaireResponse", response, caller).stored
    assert stored is not None  # a create stores a version or raises
    record_provenance(
        session,
        caller,
        user,
        target=f"{stored.relative}/_history/{stored.version_id}",
        activity="relapse-prevention plan written",
        code="CREATE",
    )
    return checked


def form_rows(values: dict[str, Any]) -> list[dict[str, str]]:
    """The sign rows the form shows: the values' own, then ``BLANK_ROWS`` empty ones."""
    texts = list(values.get("sign_text") or [])
    rows = []
    for n, text in enumerate(texts):
        if not str(text).strip():
            continue
        rows.append(
            {
                "id": _at(values, "sign_id", n),
                "text": str(text),
                "stage": _at(values, "sign_stage", n),
                "who": _at(values, "sign_who", n),
            }
        )
    return rows + [{"id": "", "text": "", "stage": "", "who": ""}] * BLANK_ROWS


def _at(values: dict[str, Any], name: str, n: int) -> str:
    found = list(values.get(name) or [])
    return str(found[n]) if n < len(found) else ""
