"""Scoring, pure: a response and its instrument in, the value of each item that becomes an
Observation out (or the items whose absence keeps it from being known).

- A calculated item (a total, a risk level) is known only when every item it reads that is asked
  (enableWhen) is answered. An unanswered question is never read as its lowest answer.
- The last answerOption of a calculated choice item is its most severe level: a partly answered
  response that already gives it keeps it (an unanswered question could only raise it further).
- Any other extracted item (PHQ-9 item 9) is its own answer, or unknown when unanswered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fhir_gateway.assessments._answers import Answers, answers_of, enabled, same_value
from fhir_gateway.assessments._instruments import Instrument

__all__ = ["Scores", "score"]


@dataclass(slots=True)
class Scores:
    """``values[linkId]``: int/float, a Coding dict, … or None when unknown; ``missing[linkId]``:
    the asked items left unanswered that keep it unknown (or that it was computed without)."""

    values: dict[str, Any] = field(default_factory=dict)
    missing: dict[str, list[str]] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return not any(self.missing.values())


def _calculated(
    instrument: Instrument, link: str, response: dict[str, Any], answers: Answers
) -> tuple[Any, list[str]]:
    missing = [
        d
        for d in instrument.depends.get(link, [])
        if enabled(instrument, d, answers) and not answers.get(d)
    ]
    variables = {"resource": response, "questionnaire": instrument.questionnaire}
    result = instrument.calculated[link](response, variables)
    value = result[0] if len(result) == 1 else None
    if missing and not _most_severe(instrument, link, value):
        value = None
    return value, missing


def _most_severe(instrument: Instrument, link: str, value: Any) -> bool:
    options = instrument.items[link].get("answerOption", []) or []
    if value is None or not options:
        return False
    last = next((v for k, v in options[-1].items() if k.startswith("value")), None)
    return same_value(value, last)


def score(instrument: Instrument, response: dict[str, Any]) -> Scores:
    answers = answers_of(response)
    scores = Scores()
    for link in instrument.extracted:
        if link in instrument.calculated:
            value, missing = _calculated(instrument, link, response, answers)
        elif not enabled(instrument, link, answers):
            continue
        else:
            given = answers.get(link, [])
            value, missing = (given[0] if given else None), ([] if given else [link])
        scores.values[link] = value
        scores.missing[link] = missing
    return scores
