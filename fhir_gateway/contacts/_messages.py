"""What a caring contact says (pure): the patient's language, the text of that language from the
ActivityDefinition's ``caring-contact-message`` extensions (English when the patient's language
has none), the crisis line of the facility's country in that language (a
``caring-contact-crisis-line`` extension, else ``jurisdiction.crisis_line``'s English text).

The texts name no diagnosis: they are data a user edits, and ``compose`` fills in only the
patient's given name and the crisis line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from adapters.terminology import concept_language, language_tag
from fhir_gateway.contacts._codes import CRISIS_EXT, MESSAGE_EXT
from fhir_gateway.jurisdiction import crisis_line

__all__ = [
    "CaringMessage",
    "Templates",
    "templates_of",
    "preferred_language",
    "compose",
    "FALLBACK",
]

FALLBACK = "en"


@dataclass(frozen=True, slots=True)
class CaringMessage:
    language: str
    subject: str
    text: str


@dataclass(frozen=True, slots=True)
class Templates:
    messages: dict[str, tuple[str, str]]  # language → (subject, text)
    crisis_lines: dict[tuple[str, str], str]  # (country, language) → words


def _fields(ext: dict[str, Any]) -> dict[str, str]:
    out = {}
    for part in ext.get("extension") or []:
        value = part.get("valueCode") or part.get("valueString")
        if isinstance(value, str):
            out[str(part.get("url"))] = value
    return out


def templates_of(activity: dict[str, Any]) -> Templates:
    messages: dict[str, tuple[str, str]] = {}
    lines: dict[tuple[str, str], str] = {}
    for ext in activity.get("extension") or []:
        f = _fields(ext)
        if ext.get("url") == MESSAGE_EXT and {"language", "subject", "text"} <= f.keys():
            messages[_primary(f["language"])] = (f["subject"], f["text"])
        elif ext.get("url") == CRISIS_EXT and {"country", "language", "text"} <= f.keys():
            lines[(f["country"].upper(), _primary(f["language"]))] = f["text"]
    return Templates(messages, lines)


def _primary(tag: str) -> str:
    return (language_tag(tag.replace("_", "-")) or tag).split("-", 1)[0].lower()


def preferred_language(patient: dict[str, Any]) -> str | None:
    """The primary subtag of the patient's preferred language (else their first one), or None,
    read as the rest of the gateway reads languages (``adapters.terminology``): ``hin``, ``HI``,
    ``hi-IN`` and a text-only "Hindi" are all ``hi``."""
    spoken = [c for c in patient.get("communication") or [] if isinstance(c, dict)]
    ordered = [c for c in spoken if c.get("preferred")] + [
        c for c in spoken if not c.get("preferred")
    ]
    for entry in ordered:
        tag = concept_language(entry.get("language"))
        if tag:
            return _primary(tag)
    return None


def given_name(patient: dict[str, Any]) -> str:
    for name in patient.get("name") or []:
        if name.get("use") in ("old", "anonymous"):
            continue
        if name.get("given"):
            return str(name["given"][0])
        if name.get("text"):
            return str(name["text"]).split()[0]
    return ""


def compose(templates: Templates, patient: dict[str, Any], country: str) -> CaringMessage:
    """The message for this patient, in their language when there is a text for it."""
    wanted = preferred_language(patient) or FALLBACK
    language = wanted if wanted in templates.messages else FALLBACK
    if language not in templates.messages:
        raise LookupError("the caring-contact ActivityDefinition has no English message")
    subject, text = templates.messages[language]
    line = templates.crisis_lines.get((country.upper(), language)) or crisis_line(country)
    name = given_name(patient)
    body = text.replace("{crisis_line}", line).replace("{name}", name)
    if not name:  # "Dear ," reads badly: drop the empty placeholder's comma
        body = body.replace(" ,", ",").replace(" :", ":")
    return CaringMessage(language, subject, body)
