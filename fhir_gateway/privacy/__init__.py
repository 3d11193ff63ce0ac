"""Privacy: every rule about who may receive which patient data, decided here and nowhere else
(DESIGN decision 10). The protective answer is the default.

Rules:

* **Labels** (``_labels``): ICD-10 F10–F19 but F17 is substance-use data (ETH, PSY; from a Part 2
  sender also R and 42CFRPart2); other F codes are PSY; an uncoded diagnosis from a Part 2 sender
  is R/ETH/42CFRPart2 until coded; a care-plan activity of a substance-use template is labelled
  like its diagnosis; a Task and a message on a referral carry the referral's R/ETH/42CFRPart2
  (``LABEL_SOURCES``). Medication data (``_medications``) are labelled as diagnoses are: a
  medicine for opioid or alcohol use disorder is ETH/PSY, and R/42CFRPart2 too from a Part 2
  sender; an uncoded drug from a Part 2 sender is R/ETH/42CFRPart2 until coded. ETH/42CFRPart2 data need the patient's Consent to leave the care team, and
  carry NORDSCLCD when they do. Text copied from a labelled resource (a reference's display, a
  description, a note, a notification) goes only where the source's labels go with it.
* **The Part 2 rule** (``_part2``): a sender is a 42 CFR Part 2 program when its facility is in
  the US (``jurisdiction.country_of``), unless ``part2_senders`` names the senders explicitly.
* **India's Mental Healthcare Act 2017** (``_mhca``: which senders are MHCA facilities, the
  ``MHCA2017`` label and the Act's code system; ``_mhca_representative``: the nominated
  representative and whom to propose, s14–17; ``_mhca_directives``: advance directives, s5–13;
  ``_mhca_discharge``: who takes part in discharge planning, s98; ``_mhca_records``: release only
  under s23(2), the patient's access to records, s25). An MHCA facility is never a Part 2 sender.
* **Consent evaluation** (``_consent``): ``evaluate_consent(consents, patient=…, recipient=…,
  purpose=…, labels=…, at=…)`` → permit or deny, and why; ``grants_of`` is the same reading as
  time-bounded grants, kept in ``consent_grants`` for the row policy's SQL.

* **The 2024 Part 2 rule** (``consent_forms``, ``_recipients``, ``_disclosure``): the Consent
  shapes (a TPO consent to the class of treating providers; counselling notes apart; the written
  revocation); the directory's marks of a recipient (treating provider; HIPAA covered entity or
  business associate) and its treating relationship with the patient; what travels with every
  disclosed copy (the 2.32 notice, the consent and its scope in words, purposes of use, CPLYCD and
  — except to a covered entity or business associate — NORDSCLCD, as DS4P labels and markings),
  and elements with inline labels the recipient may not see left out with their labels.

* **The treating partner and the relapse-prevention plan** (``_treating``,
  ``treating_partner_relapse_rule``): a partner that owns an accepted, in-progress or on-hold
  referral of the patient reads the patient's plan and reports warning signs against it as
  itself, ``basedOn`` that referral; no other response, no other patient.

Who asks: the row policy and the label and grant write hooks (``security``), the care-plan engine
(labels of what it renders, whether a referral may be released to its partner), the monitors
(family messages, alert labels), notifications and partner pushes (the labels travel with every
copy). This package imports no api or services module.
"""

from __future__ import annotations

from fhir_gateway.privacy._consent import (
    CARE_COORDINATION,
    TREATING_CLASS,
    ConsentDecision,
    Grant,
    consents_of,
    evaluate_consent,
    grants_of,
    patient_of,
)
from fhir_gateway.privacy._disclosure import (
    CPLYCD,
    DISPLAY,
    INLINE_LABEL,
    NOTICE_2_32,
    RELATED_ARTIFACT,
    Disclosure,
    disclosure_copy,
    inline_labels,
    travelling_meta,
    with_inline_labels,
    without_unseen_elements,
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
    PSYTHPN,
    RESTRICTED,
    SENSITIVE,
    SUBSTANCE_USE,
    activity_labels,
    condition_labels,
    counselling_note_labels,
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
from fhir_gateway.privacy._medications import (
    MEDICATION_TYPES,
    is_substance_use_medication,
    is_uncoded_drug,
    medication_labels,
)
from fhir_gateway.privacy._mhca import (
    MHCA,
    MHCA_SYSTEM,
    consent_in_force,
    is_mhca,
    is_mhca_sender,
    mhca_codesystem,
    mhca_coding,
)
from fhir_gateway.privacy._mhca_directives import (
    DirectiveFinding,
    advance_directive_searches,
    advance_directives,
    directive_findings,
    directive_in_force,
    has_capacity,
    is_advance_directive,
    is_emergency,
    preferred_contacts,
    representatives_named,
    unreadable_directives,
)
from fhir_gateway.privacy._mhca_discharge import discharge_planning_gaps
from fhir_gateway.privacy._mhca_records import (
    ReleaseDecision,
    patient_records,
    release_decision,
    release_exception,
    release_problems,
    withholding_ground,
    withholding_problems,
)
from fhir_gateway.privacy._mhca_representative import (
    Candidate,
    as_nominated_representative,
    is_minor,
    nominated_representative,
    propose_representative,
)
from fhir_gateway.privacy._part2 import counselling_note_types, is_part2_sender
from fhir_gateway.privacy._recipients import (
    NOT_RELATED_STATUSES,
    PART2_RECIPIENT,
    TREATING_PROVIDER,
    Recipient,
    recipient_marks,
)
from fhir_gateway.privacy._treating import (
    PARTNER_REPORTER,
    RELAPSE_PLAN_URL,
    RELAPSE_QUESTIONNAIRES,
    TREATING_STATUSES,
    WARNING_SIGNS_REPORT_URL,
    TreatingDecision,
    treating_partner_relapse_rule,
)
from fhir_gateway.privacy.consent_forms import consent_labels

__all__ = [
    "ACT_CODE",
    "ALWAYS_INHERITS",
    "CPLYCD",
    "DISPLAY",
    "Disclosure",
    "INLINE_LABEL",
    "NOTICE_2_32",
    "NOT_RELATED_STATUSES",
    "PART2_RECIPIENT",
    "RELATED_ARTIFACT",
    "Recipient",
    "TREATING_CLASS",
    "TREATING_PROVIDER",
    "consent_labels",
    "counselling_note_labels",
    "counselling_note_types",
    "inline_labels",
    "recipient_marks",
    "travelling_meta",
    "with_inline_labels",
    "without_unseen_elements",
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
    "PSYTHPN",
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
__all__ += [  # medication data, labelled as diagnoses are
    "MEDICATION_TYPES",
    "is_substance_use_medication",
    "is_uncoded_drug",
    "medication_labels",
]
__all__ += [  # India's Mental Healthcare Act 2017
    "MHCA",
    "MHCA_SYSTEM",
    "Candidate",
    "DirectiveFinding",
    "ReleaseDecision",
    "advance_directive_searches",
    "advance_directives",
    "directive_in_force",
    "as_nominated_representative",
    "consent_in_force",
    "directive_findings",
    "discharge_planning_gaps",
    "has_capacity",
    "is_advance_directive",
    "is_emergency",
    "is_minor",
    "is_mhca",
    "is_mhca_sender",
    "mhca_codesystem",
    "mhca_coding",
    "nominated_representative",
    "patient_records",
    "preferred_contacts",
    "propose_representative",
    "release_decision",
    "release_exception",
    "release_problems",
    "representatives_named",
    "unreadable_directives",
    "withholding_ground",
    "withholding_problems",
]
__all__ += [  # a treating partner and the relapse-prevention plan (issue 19)
    "PARTNER_REPORTER",
    "RELAPSE_PLAN_URL",
    "RELAPSE_QUESTIONNAIRES",
    "TREATING_STATUSES",
    "WARNING_SIGNS_REPORT_URL",
    "TreatingDecision",
    "treating_partner_relapse_rule",
]
