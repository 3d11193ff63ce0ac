"""A patient's language as senders send it → the shortest valid BCP-47 tag.

Senders use ISO 639-1 (``en``), ISO 639-2/B and /T (``ger``, ``deu``), HL7 table 0296 values
(ISO codes, often upper case: ``ENG``), or the name (``English``, ``Español``). FHIR wants
BCP-47 (``urn:ietf:bcp:47``), which uses the shortest ISO code: ``eng`` is not a BCP-47 tag.
The tables are langcodes' (IANA registry, ISO 639, CLDR names); nothing is listed here.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

import langcodes

__all__ = [
    "BCP47",
    "ISO639_2",
    "LanguageResult",
    "concept_language",
    "language_tag",
    "normalise_language",
    "normalise_patient_languages",
]

BCP47 = "urn:ietf:bcp:47"
ISO639_2 = "http://terminology.hl7.org/CodeSystem/iso639-2"

# A code rather than a name: a 2-3 letter language subtag with optional subtags, or a
# private-use / grandfathered form. Anything else is looked up as a language name.
_CODE = re.compile(r"(?:[A-Za-z]{2,3}|[xXiI])(?:[-_][A-Za-z0-9]{1,8})*")
_ALPHA3 = re.compile(r"[A-Za-z]{3}")
_MIN_NAME, _MAX_NAME = 4, 60  # shorter is no name (fuzzy look-ups would guess), longer a sentence


def _canonical(code: str) -> str | None:
    try:
        tag = langcodes.standardize_tag(code.replace("_", "-"), macro=True)
        return tag if langcodes.Language.get(tag).is_valid() else None
    except (ValueError, LookupError):  # LanguageTagError is a ValueError
        return None


def _by_name(name: str) -> str | None:
    # No name holds control characters or lone surrogates, and a NUL crashes langcodes' trie.
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in name):
        return None
    try:
        return _canonical(langcodes.find(name).to_tag())
    except (ValueError, LookupError):
        return None


def language_tag(value: str | None) -> str | None:
    """The shortest valid BCP-47 tag for a language code or name, or None when it names none."""
    text = (value or "").strip()
    if _CODE.fullmatch(text):
        return _canonical(text)
    return _by_name(text) if _MIN_NAME <= len(text) <= _MAX_NAME else None


def concept_language(concept: dict[str, Any] | None) -> str | None:
    """The BCP-47 tag a CodeableConcept names: a BCP-47 coding first, then any coding's code,
    then the displays and text as names."""
    if not isinstance(concept, dict):
        return None
    codings = [c for c in concept.get("coding") or [] if isinstance(c, dict)]
    ordered = sorted(codings, key=lambda c: c.get("system") != BCP47)
    for text in (
        *(c.get("code") for c in ordered),
        *(c.get("display") for c in ordered),
        concept.get("text"),
    ):
        tag = language_tag(text) if isinstance(text, str) else None
        if tag:
            return tag
    return None


@dataclass(frozen=True, slots=True)
class LanguageResult:
    """A normalised ``language`` CodeableConcept; ``tag`` is None when nothing was recognised."""

    concept: dict[str, Any]
    tag: str | None


def normalise_language(concept: dict[str, Any]) -> LanguageResult:
    """The concept with a BCP-47 coding first and the sender's own codings kept after it.

    A sender's coding that claims BCP-47 but holds an ISO 639-2 code (``urn:ietf:bcp:47|eng``)
    is kept under ISO 639-2; one that is no language code at all becomes the text. Idempotent:
    a concept that already leads with a canonical BCP-47 coding is returned as it is.
    """
    codings = [c for c in concept.get("coding") or [] if isinstance(c, dict)]
    tag = concept_language(concept)
    if tag and codings and codings[0].get("system") == BCP47 and codings[0].get("code") == tag:
        return LanguageResult(concept, tag)
    out: dict[str, Any] = {k: v for k, v in concept.items() if k not in ("coding", "text")}
    text = concept.get("text")
    kept: list[dict[str, Any]] = []
    for coding in codings:
        original = _original(coding, tag)
        if original is not None:
            kept.append(original)
        elif not text and not _same_tag(coding.get("code"), tag):
            text = coding.get("display") or coding.get("code")
    if tag:
        kept.insert(0, {"system": BCP47, "code": tag, "display": _display(tag)})
    elif not text and kept:  # unrecognised: a reader still sees what was sent
        text = kept[0].get("display") or kept[0].get("code")
    if kept:
        out["coding"] = kept
    if text:
        out["text"] = text
    return LanguageResult(out, tag)


def _original(coding: dict[str, Any], tag: str | None) -> dict[str, Any] | None:
    """A sender's coding as it may stay beside the BCP-47 one (None: nothing worth keeping)."""
    system, code = coding.get("system"), coding.get("code")
    if system not in (BCP47, None, ""):
        return coding
    if not isinstance(code, str) or not code:
        return None
    if _same_tag(code, tag):
        return None
    if _is_iso639_2(code):
        return {**coding, "system": ISO639_2}  # eng, ger, spa: ISO 639-2, not BCP-47
    if system == BCP47 and _canonical(code):
        return coding  # a valid BCP-47 tag in a longer or older form (en-US, iw)
    return None


def _same_tag(code: Any, tag: str | None) -> bool:
    """The BCP-47 tag itself, differently cased (BCP-47 tags are case-insensitive)."""
    return bool(tag) and isinstance(code, str) and code.lower() == str(tag).lower()


def _is_iso639_2(code: str) -> bool:
    """An alpha-3 code that BCP-47 writes shorter (eng → en), so it cannot stand as a tag."""
    if not _ALPHA3.fullmatch(code):
        return False
    try:
        return langcodes.standardize_tag(code) != code.lower() and _canonical(code) is not None
    except (ValueError, LookupError):
        return False


def _display(tag: str) -> str:
    try:
        return str(langcodes.Language.get(tag).display_name())
    except (ValueError, LookupError):
        return tag


def normalise_patient_languages(patient: dict[str, Any]) -> dict[str, Any]:
    """``Patient.communication[].language`` normalised (the Patient itself is not changed)."""
    comms = patient.get("communication")
    if not isinstance(comms, list):
        return patient
    out = []
    changed = False
    for comm in comms:
        language = comm.get("language") if isinstance(comm, dict) else None
        if not isinstance(language, dict):
            out.append(comm)
            continue
        result = normalise_language(language)
        changed = changed or result.concept is not language
        out.append({**comm, "language": result.concept})
    return {**patient, "communication": out} if changed else patient
