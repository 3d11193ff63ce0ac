"""The relapse-prevention plan and a warning-signs report, read from their QuestionnaireResponses,
and what a report crosses (pure: no database).

What the engine reads is checked here, with bounds and errors that name the item: a plan of at most
``MAX_SIGNS`` signs, each with an item id (``QuestionnaireResponse.item.id``, the identifier a
report names the sign by), its words, its stage; an action for each stage; a threshold for each
stage (a whole number from 1). The rest of a response (other items, empty answers) is the generic
validator's business, not this module's.

The rule (the numbers are the plan's answers; only the counting is code): a report crosses the
plan at a stage when the signs present at that stage *or a later one* number at least the plan's
threshold for that stage (a middle-stage sign is at least as grave as an early one). The stage
acted on is the latest one crossed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from fhir_gateway.errors import BusinessRule
from fhir_gateway.privacy import RELAPSE_PLAN_URL, WARNING_SIGNS_REPORT_URL

__all__ = [
    "PLAN_URL",
    "REPORT_URL",
    "STAGE_SYSTEM",
    "REPORTER_SYSTEM",
    "SIGN_SYSTEM",
    "STAGES",
    "REPORTERS",
    "MAX_SIGNS",
    "PlanError",
    "Sign",
    "StageAction",
    "RelapsePlan",
    "SignsReport",
    "Crossing",
    "is_plan",
    "is_report",
    "read_plan",
    "read_report",
    "crossing",
    "unknown_signs",
    "report_response",
    "plan_response",
]

PLAN_URL = RELAPSE_PLAN_URL  # the privacy module's rule names them (a treating partner's reach)
REPORT_URL = WARNING_SIGNS_REPORT_URL
STAGE_SYSTEM = "http://fhir-gateway.org/fhir/CodeSystem/relapse-stage"
REPORTER_SYSTEM = "http://fhir-gateway.org/fhir/CodeSystem/relapse-reporter"
SIGN_SYSTEM = "http://fhir-gateway.org/fhir/CodeSystem/relapse-plan-sign"
STAGES = ("early", "middle", "late")
REPORTERS = {
    "patient": "the patient",
    "family": "family or carer",
    "partner": "a partner",
    "care-team": "the care team",
}
MAX_SIGNS = 30
MAX_ITEMS = 60  # top-level items of a response this module walks through
MAX_TEXT = 2000
MAX_THRESHOLD = MAX_SIGNS
_SIGN_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_PLAN_REF = re.compile(r"^QuestionnaireResponse/[A-Za-z0-9\-.]{1,64}$")


class PlanError(BusinessRule):
    """A plan or report the engine cannot act on (422), naming the item to fix."""

    def __init__(self, message: str, link_id: str | None = None) -> None:
        where = [f"QuestionnaireResponse.item.where(linkId='{link_id}')"] if link_id else None
        super().__init__(message, expression=where)


@dataclass(frozen=True, slots=True)
class Sign:
    id: str
    text: str  # the patient's words
    stage: str  # early | middle | late
    noticed_by: str = ""


@dataclass(frozen=True, slots=True)
class StageAction:
    do: str
    call: str = ""


@dataclass(frozen=True, slots=True)
class RelapsePlan:
    signs: tuple[Sign, ...]
    actions: dict[str, StageAction]
    thresholds: dict[str, int]
    made_with: tuple[str, ...] = ()

    def sign(self, sign_id: str) -> Sign | None:
        return next((s for s in self.signs if s.id == sign_id), None)


@dataclass(frozen=True, slots=True)
class SignsReport:
    plan: str | None  # QuestionnaireResponse/id named by the report, else the newest plan
    reporter: str  # a REPORTERS code
    reporter_name: str
    present: tuple[str, ...]  # sign ids
    other: str


@dataclass(frozen=True, slots=True)
class Crossing:
    stage: str  # the latest stage crossed
    signs: tuple[Sign, ...]  # every sign present, latest stage first
    action: StageAction


def _questionnaire(response: dict[str, Any]) -> str:
    return str(response.get("questionnaire") or "").split("|", 1)[0]


def is_plan(response: dict[str, Any]) -> bool:
    return _questionnaire(response) == PLAN_URL


def is_report(response: dict[str, Any]) -> bool:
    return _questionnaire(response) == REPORT_URL


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _items(parent: dict[str, Any], where: str) -> Iterator[dict[str, Any]]:
    items = parent.get("item") or []
    if not isinstance(items, list):
        raise PlanError(f"{where}: item must be a list")
    if len(items) > MAX_ITEMS:
        raise PlanError(f"{where} has {len(items)} items; at most {MAX_ITEMS} are read")
    yield from (i for i in items if isinstance(i, dict))


def _named(parent: dict[str, Any], link_id: str) -> list[dict[str, Any]]:
    return [i for i in _items(parent, "The response") if i.get("linkId") == link_id]


def _answers(item: dict[str, Any] | None) -> list[dict[str, Any]]:
    answers = (item or {}).get("answer") or []
    return [a for a in answers if isinstance(a, dict)] if isinstance(answers, list) else []


def _string(parent: dict[str, Any], link_id: str, *, required: bool, limit: int = MAX_TEXT) -> str:
    found = _named(parent, link_id)
    answers = _answers(found[0]) if found else []
    value = next((a.get("valueString") for a in answers if a.get("valueString") is not None), None)
    if value is not None and not isinstance(value, str):
        raise PlanError(f"Answer '{link_id}' with a valueString", link_id)
    text = (value or "").strip()
    if required and not text:
        raise PlanError(f"Answer '{link_id}': it is required", link_id)
    if len(text) > limit:
        raise PlanError(f"Answer '{link_id}' is {len(text)} characters; at most {limit}", link_id)
    return text


def _code(parent: dict[str, Any], link_id: str, system: str, allowed: Any) -> str:
    found = _named(parent, link_id)
    codes = [_dict(a.get("valueCoding")) for a in (_answers(found[0]) if found else [])]
    code = next((c.get("code") for c in codes if c.get("system") == system), None)
    if code not in allowed:
        raise PlanError(
            f"Answer '{link_id}' with a Coding of {system}: one of {', '.join(allowed)}", link_id
        )
    return str(code)


def _integer(parent: dict[str, Any], link_id: str) -> int:
    found = _named(parent, link_id)
    value = next((a.get("valueInteger") for a in (_answers(found[0]) if found else [])), None)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_THRESHOLD:
        raise PlanError(
            f"Answer '{link_id}' with a whole number from 1 to {MAX_THRESHOLD}: how many signs "
            "at once should reach the case manager",
            link_id,
        )
    return value


def _group(response: dict[str, Any], link_id: str) -> dict[str, Any]:
    found = _named(response, link_id)
    if not found:
        raise PlanError(f"The plan has no '{link_id}' group: it is required", link_id)
    return found[0]


def _sign(group: dict[str, Any], seen: set[str]) -> Sign:
    sign_id = group.get("id")
    if not isinstance(sign_id, str) or not _SIGN_ID.match(sign_id):
        raise PlanError(
            "Each 'warning-sign' group needs an item id (1 to 64 letters, digits, '-' or '.'): "
            "reports name the sign by it",
            "warning-sign",
        )
    if sign_id in seen:
        raise PlanError(f"Two warning signs have the item id '{sign_id}'", "warning-sign")
    seen.add(sign_id)
    return Sign(
        id=sign_id,
        text=_string(group, "warning-sign.text", required=True, limit=300),
        stage=_code(group, "warning-sign.stage", STAGE_SYSTEM, STAGES),
        noticed_by=_string(group, "warning-sign.noticed-by", required=False, limit=200),
    )


def read_plan(response: dict[str, Any]) -> RelapsePlan:
    groups = _named(response, "warning-sign")
    if not groups:
        raise PlanError(
            "The plan names no warning sign: add a 'warning-sign' group", "warning-sign"
        )
    if len(groups) > MAX_SIGNS:
        raise PlanError(f"The plan has {len(groups)} warning signs; at most {MAX_SIGNS}")
    seen: set[str] = set()
    signs = tuple(_sign(g, seen) for g in groups)
    actions = {}
    for stage in STAGES:
        group = _group(response, f"action-{stage}")
        actions[stage] = StageAction(
            do=_string(group, f"action-{stage}.do", required=True),
            call=_string(group, f"action-{stage}.call", required=False, limit=300),
        )
    limits = _group(response, "threshold")
    thresholds = {stage: _integer(limits, f"threshold.{stage}") for stage in STAGES}
    made_with = tuple(
        a["valueString"][:200]
        for item in _named(response, "made-with")
        for a in _answers(item)[:20]
        if isinstance(a.get("valueString"), str) and a["valueString"]
    )
    return RelapsePlan(signs, actions, thresholds, made_with)


def read_report(response: dict[str, Any]) -> SignsReport:
    plan_items = _named(response, "plan")
    plan_ref = next(
        (
            _dict(a.get("valueReference")).get("reference")
            for a in (_answers(plan_items[0]) if plan_items else [])
        ),
        None,
    )
    if plan_ref is not None and not _PLAN_REF.match(str(plan_ref)):
        raise PlanError(
            "Answer 'plan' with a reference to the plan's QuestionnaireResponse", "plan"
        )
    present: list[str] = []
    for item in _named(response, "signs-present"):
        for answer in _answers(item)[: MAX_SIGNS + 1]:
            coding = _dict(answer.get("valueCoding"))
            if coding.get("system") != SIGN_SYSTEM or not isinstance(coding.get("code"), str):
                raise PlanError(
                    f"Each answer of 'signs-present' is a Coding of {SIGN_SYSTEM} whose code is "
                    "the item id of a warning sign of the plan",
                    "signs-present",
                )
            present.append(coding["code"])
    if len(present) > MAX_SIGNS:
        raise PlanError(f"A report names at most {MAX_SIGNS} signs", "signs-present")
    return SignsReport(
        plan=str(plan_ref) if plan_ref else None,
        reporter=_code(response, "reporter", REPORTER_SYSTEM, tuple(REPORTERS)),
        reporter_name=_string(response, "reporter-name", required=False, limit=200),
        present=tuple(dict.fromkeys(present)),
        other=_string(response, "other", required=False),
    )


def unknown_signs(plan: RelapsePlan, report: SignsReport) -> list[str]:
    return [s for s in report.present if plan.sign(s) is None]


def crossing(plan: RelapsePlan, report: SignsReport) -> Crossing | None:
    """The latest stage whose threshold the report's signs reach (see the module's rule)."""
    present = [s for s in (plan.sign(i) for i in report.present) if s is not None]
    order = {stage: n for n, stage in enumerate(STAGES)}
    crossed = [
        stage
        for stage in STAGES
        if sum(order[s.stage] >= order[stage] for s in present) >= plan.thresholds[stage]
    ]
    if not crossed:
        return None
    stage = crossed[-1]
    signs = tuple(sorted(present, key=lambda s: -order[s.stage]))
    return Crossing(stage, signs, plan.actions[stage])


def report_response(
    patient: str,
    plan: str,
    signs: list[Sign],
    *,
    reporter: str,
    reporter_name: str,
    other: str,
    authored: str,
    author: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A completed warning-signs report naming ``signs`` of ``plan`` (what the web form posts)."""
    items: list[dict[str, Any]] = [
        {"linkId": "plan", "answer": [{"valueReference": {"reference": plan}}]},
        {
            "linkId": "reporter",
            "answer": [
                {
                    "valueCoding": {
                        "system": REPORTER_SYSTEM,
                        "code": reporter,
                        "display": REPORTERS[reporter],
                    }
                }
            ],
        },
    ]
    if reporter_name:
        items.append({"linkId": "reporter-name", "answer": [{"valueString": reporter_name}]})
    if signs:
        items.append(
            {
                "linkId": "signs-present",
                "answer": [
                    {"valueCoding": {"system": SIGN_SYSTEM, "code": s.id, "display": s.text}}
                    for s in signs
                ],
            }
        )
    if other:
        items.append({"linkId": "other", "answer": [{"valueString": other}]})
    return _response(REPORT_URL, patient, authored, items, author)


def _text(link_id: str, text: str) -> dict[str, Any]:
    return {"linkId": link_id, "answer": [{"valueString": text}]}


def plan_response(
    patient: str,
    plan: RelapsePlan,
    *,
    authored: str,
    author: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A completed relapse-prevention plan (what the web form posts; ``read_plan`` reads it back)."""
    items: list[dict[str, Any]] = []
    for sign in plan.signs:
        parts = [
            _text("warning-sign.text", sign.text),
            {
                "linkId": "warning-sign.stage",
                "answer": [{"valueCoding": {"system": STAGE_SYSTEM, "code": sign.stage}}],
            },
        ]
        if sign.noticed_by:
            parts.append(_text("warning-sign.noticed-by", sign.noticed_by))
        items.append({"id": sign.id, "linkId": "warning-sign", "item": parts})
    for stage in STAGES:
        action = plan.actions[stage]
        parts = [_text(f"action-{stage}.do", action.do)]
        if action.call:
            parts.append(_text(f"action-{stage}.call", action.call))
        items.append({"linkId": f"action-{stage}", "item": parts})
    items.append(
        {
            "linkId": "threshold",
            "item": [
                {
                    "linkId": f"threshold.{stage}",
                    "answer": [{"valueInteger": plan.thresholds[stage]}],
                }
                for stage in STAGES
            ],
        }
    )
    if plan.made_with:
        items.append(
            {"linkId": "made-with", "answer": [{"valueString": who} for who in plan.made_with]}
        )
    return _response(PLAN_URL, patient, authored, items, author)


def _response(
    questionnaire: str,
    patient: str,
    authored: str,
    items: list[dict[str, Any]],
    author: dict[str, Any] | None,
) -> dict[str, Any]:
    """A completed QuestionnaireResponse of ``questionnaire`` about ``patient``."""
    doc: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": questionnaire,
        "status": "completed",
        "subject": {"reference": patient},
        "authored": authored,
        "item": items,
    }
    if author:
        doc["author"] = author
    return doc
