"""The patient page's consent forms, checked (pure: fields in, the builder's arguments or the
errors a person can fix out; no database).

A Part 2 consent form asks for each element of 42 CFR 2.31(a): who may disclose, to whom (named
partners, or every treating provider for treatment, payment and health-care operations), what,
why, until when, who signed and on which day, and the signed document itself. The document must be
a PDF, PNG or JPEG (by its bytes, not only its name) of at most ``MAX_DOCUMENT_BYTES``.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

__all__ = [
    "MAX_DOCUMENT_BYTES",
    "PURPOSES",
    "UploadedDocument",
    "ConsentChoices",
    "CheckedForm",
    "check_part2",
    "check_family",
    "check_note",
    "document_types",
    "Fields",
]

MAX_DOCUMENT_BYTES = 4 * 1024 * 1024
MAX_SCOPE = 2000
MAX_NOTE = 1000
PURPOSES = {
    "TREAT": "Treatment",
    "HPAYMT": "Payment",
    "HOPERAT": "Health care operations",
    "COC": "Coordination of care",
}
_SIGNATURES = {  # the first bytes of each accepted document type
    "application/pdf": (b"%PDF-",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
}
_FILENAME = re.compile(r"[^A-Za-z0-9 ._()\-]")


def document_types() -> str:
    return "PDF, PNG or JPEG"


@dataclass(frozen=True, slots=True)
class UploadedDocument:
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class ConsentChoices:
    """What the form offers: values outside these are refused (never a free reference)."""

    partners: Mapping[str, str]  # Organization/ID → name
    disclosers: Mapping[str, str]
    signers: Mapping[str, str]  # Patient/ID and RelatedPerson/ID → name
    related: Mapping[str, str]  # RelatedPerson/ID → name


@dataclass(slots=True)
class CheckedForm:
    arguments: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)  # field name → what to fix

    @property
    def ok(self) -> bool:
        return not self.errors


Fields = Mapping[str, Sequence[str]]


def _one(fields: Fields, name: str) -> str:
    values = fields.get(name) or []
    return str(values[0]).strip() if values else ""


def _date(
    checked: CheckedForm, fields: Fields, name: str, label: str, *, required: bool
) -> date | None:
    text = _one(fields, name)
    if not text:
        if required:
            checked.errors[name] = f"Enter the {label}."
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        checked.errors[name] = f"Enter the {label} as a real date, like 2026-03-31."
        return None


def _text(checked: CheckedForm, fields: Fields, name: str, missing: str, limit: int) -> str:
    text = _one(fields, name)
    if "\x00" in text:
        checked.errors[name] = "This text holds a character that cannot be stored; retype it."
    elif not text:
        checked.errors[name] = missing
    elif len(text) > limit:
        checked.errors[name] = f"Keep this to {limit} characters (it has {len(text)})."
    return text


def _choice(
    checked: CheckedForm, fields: Fields, name: str, options: Mapping[str, str], missing: str
) -> str:
    value = _one(fields, name)
    if value not in options:
        checked.errors[name] = missing
    return value


def _signed(checked: CheckedForm, fields: Fields, today: date) -> date | None:
    signed = _date(checked, fields, "signed_on", "date the form was signed", required=True)
    if signed is not None and signed > today:
        checked.errors["signed_on"] = "The signature date is in the future; check the signed form."
        return None
    return signed


def _expiry(
    checked: CheckedForm, fields: Fields, signed: date | None, today: date, *, required: bool
) -> date | None:
    expires = _date(checked, fields, "expires", "date the consent ends", required=required)
    if expires is None:
        return None
    if signed is not None and expires < signed:
        checked.errors["expires"] = "The consent cannot end before the day it was signed."
    elif expires < today:
        checked.errors["expires"] = "That day has passed: the consent would permit nothing now."
    return expires


def _document(checked: CheckedForm, upload: UploadedDocument | None) -> dict[str, Any] | None:
    if upload is None or not upload.filename:
        checked.errors["document"] = "Attach the signed consent form (a scan or photo of it)."
        return None
    size = len(upload.data)
    if size > MAX_DOCUMENT_BYTES:
        checked.errors["document"] = (
            f"The file is {size / 1048576:.1f} MB; the limit is "
            f"{MAX_DOCUMENT_BYTES // 1048576} MB. Scan it at a lower resolution and attach it again."
        )
        return None
    if size == 0:
        checked.errors["document"] = "The attached file is empty."
        return None
    kind = next((t for t, sigs in _SIGNATURES.items() if upload.data.startswith(sigs)), None)
    if kind is None:
        checked.errors["document"] = f"Attach the signed form as a {document_types()} file."
        return None
    return {
        "contentType": kind,
        "data": base64.b64encode(upload.data).decode("ascii"),
        "title": _FILENAME.sub("_", upload.filename)[-120:] or "signed consent",
        "size": size,
        "hash": base64.b64encode(hashlib.sha1(upload.data).digest()).decode("ascii"),  # noqa: S324  # FHIR Attachment.hash is SHA-1
    }


def check_part2(
    fields: Fields,
    upload: UploadedDocument | None,
    choices: ConsentChoices,
    *,
    patient: str,
    today: date,
) -> CheckedForm:
    """The arguments of ``privacy.consent_forms.part2_consent``, or what to fix."""
    checked = CheckedForm()
    discloser = _choice(
        checked, fields, "discloser", choices.disclosers, "Choose who may disclose the records."
    )
    to = _one(fields, "recipients")
    named = [p for p in fields.get("partner") or [] if p]
    if to not in ("named", "treating"):
        checked.errors["recipients"] = "Choose to whom: named partners, or every treating provider."
    elif to == "named" and not named:
        checked.errors["partner"] = "Choose at least one partner the patient named."
    elif to == "named" and any(p not in choices.partners for p in named):
        checked.errors["partner"] = "Choose partners from the list."
    purposes = [p for p in fields.get("purpose") or [] if p]
    if not purposes or any(p not in PURPOSES for p in purposes):
        checked.errors["purpose"] = "Choose at least one purpose the patient agreed to."
    notes = _one(fields, "counselling_notes") == "yes"
    if notes and to == "treating":
        checked.errors["counselling_notes"] = (
            "A consent for counselling notes must name each recipient; choose named partners."
        )
    scope = _text(
        checked,
        fields,
        "data_scope",
        "Describe what may be disclosed, as the form says.",
        MAX_SCOPE,
    )
    signed = _signed(checked, fields, today)
    expires = _expiry(checked, fields, signed, today, required=True)
    signed_by = _choice(
        checked,
        fields,
        "signed_by",
        choices.signers,
        "Say who signed: the patient or their representative.",
    )
    document = _document(checked, upload)
    if checked.ok:
        checked.arguments = {
            "patient": patient,
            "discloser": discloser,
            "recipients": list(dict.fromkeys(named)) if to == "named" else None,
            "purposes": list(dict.fromkeys(purposes)),
            "data_scope": scope,
            "expires": expires,
            "signed_on": signed,
            "signed_by": signed_by,
            "document": document,
            "counselling_notes": notes,
        }
    return checked


def check_family(
    fields: Fields,
    upload: UploadedDocument | None,
    choices: ConsentChoices,
    *,
    patient: str,
    today: date,
) -> CheckedForm:
    """The arguments of ``privacy.consent_forms.family_involvement_consent``, or what to fix."""
    checked = CheckedForm()
    related = _choice(
        checked, fields, "related_person", choices.related, "Choose the family member or carer."
    )
    scope = _text(
        checked, fields, "data_scope", "Describe what may be shared, as the form says.", MAX_SCOPE
    )
    signed = _signed(checked, fields, today)
    expires = _expiry(checked, fields, signed, today, required=False)
    document = _document(checked, upload)
    if checked.ok:
        checked.arguments = {
            "patient": patient,
            "related_person": related,
            "data_scope": scope,
            "expires": expires,
            "signed_on": signed,
            "document": document,
        }
    return checked


def check_note(fields: Fields) -> CheckedForm:
    checked = CheckedForm()
    note = _text(checked, fields, "note", "Write a note: what was done, or why.", MAX_NOTE)
    if checked.ok:
        checked.arguments = {"note": note}
    return checked
