"""Pure terminology helpers shared by the HL7 v2 mapping and the FHIR side: language codes as
senders send them → BCP-47 tags (tables from ``langcodes``), ICD-10 codes with their dot.

language_tag("eng") == "en"; language_tag("English") == "en"; language_tag("junk") is None
normalise_language({"coding": [{"system": ISO639_2, "code": "spa"}]})  # BCP-47 "es" first
icd10_code("F332") == "F33.2"
"""

from __future__ import annotations

from ._icd import ICD10, ICD10_CM, ICD10_SYSTEMS, icd10_code
from ._languages import (
    BCP47,
    ISO639_2,
    LanguageResult,
    concept_language,
    language_tag,
    normalise_language,
    normalise_patient_languages,
)

__all__ = [
    "BCP47",
    "ICD10",
    "ICD10_CM",
    "ICD10_SYSTEMS",
    "ISO639_2",
    "LanguageResult",
    "concept_language",
    "icd10_code",
    "language_tag",
    "normalise_language",
    "normalise_patient_languages",
]
