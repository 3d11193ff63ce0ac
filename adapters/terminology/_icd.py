"""ICD-10 codes as senders send them → the form the code systems publish (``F332`` → ``F33.2``)."""

from __future__ import annotations

import re

__all__ = ["ICD10", "ICD10_CM", "ICD10_SYSTEMS", "icd10_code"]

ICD10 = "http://hl7.org/fhir/sid/icd-10"  # WHO ICD-10
ICD10_CM = "http://hl7.org/fhir/sid/icd-10-cm"  # US clinical modification
ICD10_SYSTEMS = frozenset({ICD10, ICD10_CM})

# A category is a letter, a digit and a digit or letter (ICD-10-CM has C4A, M1A); after the
# dot come up to four characters (F10.20, F32.A, T36.0X1A).
_DOTTED = re.compile(r"[A-Z][0-9][0-9A-Z](?:\.[0-9A-Z]{1,4})?")
_UNDOTTED = re.compile(r"([A-Z][0-9][0-9A-Z])([0-9A-Z]{1,4})")


def icd10_code(code: str) -> str:
    """The code with its dot after the category and in upper case; anything that is not shaped
    like an ICD-10 code is returned unchanged (a 3-character category gets no dot)."""
    upper = code.strip().upper()
    if _DOTTED.fullmatch(upper):
        return upper
    m = _UNDOTTED.fullmatch(upper)
    if m:
        return f"{m.group(1)}.{m.group(2)}"
    return code
