"""What travels with a disclosed copy (42 CFR 2.32 as amended in 2024; the FHIR DS4P IG).

Every copy of ETH/42CFRPart2 data that leaves the care team carries, in ``meta``:

* its labels as stored (confidentiality R, sensitivity ETH/PSY, policy 42CFRPart2, PSYTHPN for
  counselling notes);
* the purposes of use the consent allows (v3-ActReason: TREAT, HPAYMT, HOPERAT, …);
* the obligation CPLYCD (comply with the consent directive) and, unless the recipient is a HIPAA
  covered entity or business associate (which may redisclose as HIPAA allows, 42 CFR 2.33(b)),
  the refrain NORDSCLCD (no redisclosure without consent);
* on its 42CFRPart2 label, the consent that permitted the disclosure (DS4P
  ``extension-sec-label-related-artifact``: a justification whose ``url`` is the Consent, which
  the recipient may read, and whose ``display`` is its scope in words, 42 CFR 2.32(b)) and the
  basis (``extension-sec-label-basis``: the 42 CFR Part 2 policy);
* the notice of 42 CFR 2.32(a)(1), as a DS4P ``extension-display`` marking on ``meta``.

Elements may carry labels of their own (DS4P ``extension-inline-sec-label``): an element whose
inline labels the recipient may not see is left out of the copy, and with it those labels, so a
label never tells anyone about data it may not see (``without_unseen_elements``; the narrative,
which may tell of them, goes too).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fhir_gateway.privacy._labels import (
    ACT_CODE,
    NORDSCLCD,
    PART2,
    is_part2,
    is_sensitive,
    label_codes,
    labels_of,
    merge_labels,
)
from fhir_gateway.privacy._recipients import Recipient
from fhir_gateway.privacy.consent_forms import ACT_REASON, describe

__all__ = [
    "DS4P",
    "INLINE_LABEL",
    "DISPLAY",
    "RELATED_ARTIFACT",
    "LABEL_BASIS",
    "CPLYCD",
    "NOTICE_2_32",
    "Disclosure",
    "disclosure_copy",
    "travelling_meta",
    "inline_labels",
    "with_inline_labels",
    "without_unseen_elements",
]

DS4P = "http://hl7.org/fhir/uv/security-label-ds4p/StructureDefinition"
INLINE_LABEL = f"{DS4P}/extension-inline-sec-label"
DISPLAY = f"{DS4P}/extension-display"
RELATED_ARTIFACT = f"{DS4P}/extension-sec-label-related-artifact"
LABEL_BASIS = f"{DS4P}/extension-sec-label-basis"
_INLINE = frozenset({"R", "ETH", "42CFRPart2", "PSYTHPN"})
CPLYCD = {"system": ACT_CODE, "code": "CPLYCD", "display": "comply with consent directive"}

# 42 CFR 2.32(a)(1), as amended by the final rule of 16 February 2024.
NOTICE_2_32 = (
    "This record which has been disclosed to you is protected by Federal confidentiality rules "
    "(42 CFR part 2). These rules prohibit you from using or disclosing this record, or testimony "
    "that describes the information contained in this record, in any civil, criminal, "
    "administrative, or legislative proceedings by any Federal, State, or local authority, "
    "against the patient, unless authorized by the consent of the patient, except as provided "
    "at 42 CFR 2.12(c)(5) or as authorized by a court in accordance with 42 CFR 2.64 or 2.65. "
    "In addition, the Federal rules prohibit you from making any other use or disclosure of this "
    "record unless at least one of the following applies: (i) further use or disclosure is "
    "expressly permitted by the written consent of the individual whose information is being "
    "disclosed in this record or as otherwise permitted by 42 CFR part 2; (ii) you are a covered "
    "entity or business associate and have received the record for treatment, payment, or health "
    "care operations; or (iii) you have received the record from a covered entity or business "
    "associate as permitted by 45 CFR part 164, subparts A and E. A general authorization for the "
    "release of medical or other information is NOT sufficient to meet the required elements of "
    "written consent to further use or redisclose the record (see 42 CFR 2.31)."
)


@dataclass(frozen=True, slots=True)
class Disclosure:
    """Why a copy may go: the Consent that permits it, to whom."""

    consent: dict[str, Any]
    recipient: Recipient


def _purposes(consent: dict[str, Any]) -> list[dict[str, Any]]:
    listed = [
        {k: p[k] for k in ("system", "code", "display") if k in p}
        for p in (consent.get("provision") or {}).get("purpose") or []
        if isinstance(p, dict) and p.get("code")
    ]
    return listed or [{"system": ACT_REASON, "code": "COC", "display": "coordination of care"}]


def _justified(label: dict[str, Any], consent: dict[str, Any]) -> dict[str, Any]:
    """The 42CFRPart2 label with the consent behind this disclosure and the policy."""
    artifact = {
        "url": RELATED_ARTIFACT,
        "valueRelatedArtifact": {
            "type": "justification",
            "display": describe(consent),
            "url": f"Consent/{consent.get('id')}",
        },
    }
    basis = {"url": LABEL_BASIS, "valueCoding": dict(PART2)}
    kept = [
        e
        for e in label.get("extension") or []
        if e.get("url") not in (RELATED_ARTIFACT, LABEL_BASIS)
    ]
    return {**label, "extension": [*kept, basis, artifact]}


def disclosure_copy(
    resource: dict[str, Any], disclosure: Disclosure | None = None
) -> dict[str, Any]:
    """The copy disclosed outside the care team. ETH/42CFRPart2 data gain NORDSCLCD; under a
    consent (``disclosure``) also the purposes, CPLYCD, the consent and, for Part 2 data, the
    2.32 notice; a HIPAA covered entity or business associate gets no NORDSCLCD."""
    if not is_sensitive(resource):
        return resource
    if disclosure is None:
        added = [dict(NORDSCLCD)]
        return {**resource, "meta": _meta(resource, merge_labels(labels_of(resource), added))}
    refrain = [] if disclosure.recipient.hipaa else [dict(NORDSCLCD)]
    labels = merge_labels(
        labels_of(resource), _purposes(disclosure.consent), [dict(CPLYCD)], refrain
    )
    labels = [
        _justified(lb, disclosure.consent) if lb.get("code") == PART2["code"] else lb
        for lb in labels
    ]
    meta = _meta(resource, labels)
    if is_part2(resource):
        notice = {"url": DISPLAY, "valueAnnotation": {"text": NOTICE_2_32}}
        kept = [e for e in meta.get("extension") or [] if e.get("url") != DISPLAY]
        meta["extension"] = [*kept, notice]
    return {**resource, "meta": meta}


def _meta(resource: dict[str, Any], labels: list[dict[str, Any]]) -> dict[str, Any]:
    return {**(resource.get("meta") or {}), "security": labels}


def travelling_meta(resource: dict[str, Any], base_url: str = "") -> dict[str, Any] | None:
    """What of ``meta`` goes with a copy sent elsewhere (a notification, a push): the labels and
    the DS4P markings (the notice) — the receiver must know what it may do with the copy. With
    ``base_url`` the consent a label rests on is named by its absolute URL (the recipient reads
    it there)."""
    meta = resource.get("meta") or {}
    out: dict[str, Any] = {}
    if meta.get("security"):
        out["security"] = [_absolute_artifact(lb, base_url) for lb in meta["security"]]
    markings = [e for e in meta.get("extension") or [] if e.get("url") == DISPLAY]
    if markings:
        out["extension"] = markings
    return out or None


def _absolute_artifact(label: Any, base_url: str) -> Any:
    if not base_url or not isinstance(label, dict) or not label.get("extension"):
        return label
    extensions = []
    for ext in label["extension"]:
        artifact = ext.get("valueRelatedArtifact") if isinstance(ext, dict) else None
        url = artifact.get("url") if isinstance(artifact, dict) else None
        if isinstance(artifact, dict) and isinstance(url, str) and "://" not in url:
            ext = {**ext, "valueRelatedArtifact": {**artifact, "url": f"{base_url}/{url}"}}
        extensions.append(ext)
    return {**label, "extension": extensions}


# -- inline (element) labels ---------------------------------------------------------------------


def inline_labels(element: Any) -> frozenset[str]:
    """The codes of the DS4P inline labels an element carries."""
    if not isinstance(element, dict):
        return frozenset()
    return label_codes(
        e["valueCoding"]
        for e in element.get("extension") or []
        if isinstance(e, dict)
        and e.get("url") == INLINE_LABEL
        and isinstance(e.get("valueCoding"), dict)
    )


def with_inline_labels(element: dict[str, Any], labels: list[dict[str, Any]]) -> dict[str, Any]:
    """The element with inline labels for what in ``labels`` needs a consent (R, ETH, 42CFRPart2,
    PSYTHPN): for an element of a resource that also holds what needs none (a plan mixing a
    substance-use referral with psychiatric ones), so a recipient knows which part is Part 2. The
    resource itself keeps the high-water mark of its elements' labels."""
    own = [dict(lb) for lb in labels if lb.get("code") in _INLINE]
    if not own:
        return element
    kept = [e for e in element.get("extension") or [] if e.get("url") != INLINE_LABEL]
    return {
        **element,
        "extension": [*kept, *({"url": INLINE_LABEL, "valueCoding": lb} for lb in own)],
    }


def without_unseen_elements(
    resource: dict[str, Any], may_see: Callable[[frozenset[str]], bool]
) -> dict[str, Any]:
    """The resource without the elements whose inline labels ``may_see`` refuses (the element and
    its labels go together). Returns ``resource`` itself when nothing is left out."""
    changed = False

    def walk(node: Any) -> Any:
        nonlocal changed
        if isinstance(node, dict):
            out = {}
            for key, value in node.items():
                if isinstance(value, list):
                    kept = [walk(v) for v in value if not _unseen(v, may_see)]
                    changed = changed or len(kept) != len(value)
                    if kept:
                        out[key] = kept
                elif _unseen(value, may_see):
                    changed = True
                else:
                    out[key] = walk(value)
            return out
        return node

    copy = walk(resource)
    if not changed:
        return resource
    copy.pop("text", None)  # the narrative may tell of what was left out
    return copy


def _unseen(element: Any, may_see: Callable[[frozenset[str]], bool]) -> bool:
    codes = inline_labels(element)
    return bool(codes) and not may_see(codes)
