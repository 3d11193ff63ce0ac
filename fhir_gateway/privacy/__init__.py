"""Privacy: every rule about who may receive which patient data, decided here and nowhere else
(DESIGN decision 10). The protective answer is the default.

Rules:

* **Labels** (``_labels``): ICD-10 F10–F19 but F17 is substance-use data (ETH, PSY; from a Part 2
  sender also R and 42CFRPart2); other F codes are PSY; an uncoded diagnosis from a Part 2 sender
  is R/ETH/42CFRPart2 until coded; a care-plan activity of a substance-use template is labelled
  like its diagnosis; a Task and a message on a referral carry the referral's R/ETH/42CFRPart2
  (``LABEL_SOURCES``). ETH/42CFRPart2 data need the patient's Consent to leave the care team, and
  carry NORDSCLCD when they do. Text copied from a labelled resource (a reference's display, a
  description, a note, a notification) goes only where the source's labels go with it.
* **The Part 2 rule** (``_part2``): a sender is a 42 CFR Part 2 program when its facility is in
  the US (``jurisdiction.country_of``), unless ``part2_senders`` names the senders explicitly.
* **Consent evaluation** (``_consent``): ``evaluate_consent(consents, patient=…, recipient=…,
  purpose=…, labels=…, at=…)`` → permit or deny, and why; ``grants_of`` is the same reading as
  time-bounded grants, kept in ``consent_grants`` for the row policy's SQL.

Who asks: the row policy and the label and grant write hooks (``security``), the care-plan engine
(labels of what it renders, whether a referral may be released to its partner), the monitors
(family messages, alert labels), notifications and partner pushes (the labels travel with every
copy). This package imports no api or services module.
"""

from __future__ import annotations

from fhir_gateway.privacy._consent import (
    CARE_COORDINATION,
    ConsentDecision,
    Grant,
    consents_of,
    evaluate_consent,
    grants_of,
    patient_of,
)
from fhir_gateway.privacy._labels import (
    ACT_CODE,
    ALWAYS_INHERITS,
    CONFIDENTIALITY,
    ETH,
    INHERITED,
    LABEL_SOURCES,
    NORDSCLCD,
    PART2,
    PSY,
    RESTRICTED,
    SENSITIVE,
    SUBSTANCE_USE,
    activity_labels,
    condition_labels,
    disclosure_copy,
    is_part2,
    is_sensitive,
    is_substance_use,
    is_uncoded,
    label_codes,
    labels_of,
    may_carry_text_of,
    merge_labels,
    needs_consent,
    reference_to,
    with_labels,
)
from fhir_gateway.privacy._part2 import is_part2_sender

__all__ = [
    "ACT_CODE",
    "ALWAYS_INHERITS",
    "CARE_COORDINATION",
    "CONFIDENTIALITY",
    "ConsentDecision",
    "ETH",
    "Grant",
    "INHERITED",
    "LABEL_SOURCES",
    "NORDSCLCD",
    "PART2",
    "PSY",
    "RESTRICTED",
    "SENSITIVE",
    "SUBSTANCE_USE",
    "activity_labels",
    "condition_labels",
    "consents_of",
    "disclosure_copy",
    "evaluate_consent",
    "grants_of",
    "is_part2",
    "is_part2_sender",
    "is_sensitive",
    "is_substance_use",
    "is_uncoded",
    "label_codes",
    "labels_of",
    "may_carry_text_of",
    "merge_labels",
    "needs_consent",
    "patient_of",
    "reference_to",
    "with_labels",
]
