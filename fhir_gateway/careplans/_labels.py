"""Security labels (DESIGN, Privacy): PSY on mental-health data; 42 CFR Part 2 on what derives from
a Part 2 sender's substance-use diagnoses (confidentiality R, sensitivity ETH, policy 42CFRPart2),
and the no-redisclosure obligation NORDSCLCD added on disclosure."""

from __future__ import annotations

from typing import Any

__all__ = [
    "SUBSTANCE_USE",
    "security_labels",
    "disclosure_labels",
    "is_part2_sender",
    "merge_labels",
]

_CONF = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
_ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"

PSY = {"system": _ACT, "code": "PSY", "display": "psychiatry information sensitivity"}
RESTRICTED = {"system": _CONF, "code": "R", "display": "restricted"}
ETH = {"system": _ACT, "code": "ETH", "display": "substance abuse information sensitivity"}
PART2 = {"system": _ACT, "code": "42CFRPart2", "display": "42 CFR Part2"}
NORDSCLCD = {
    "system": _ACT,
    "code": "NORDSCLCD",
    "display": "no redisclosure without consent directive",
}

SUBSTANCE_USE = "substance-use"  # the value of a template's sensitivity extension


def is_part2_sender(part2_senders: list[str], *senders: str | None) -> bool:
    return "*" in part2_senders or any(s in part2_senders for s in senders if s)


def security_labels(sensitivities: set[str], part2: bool) -> list[dict[str, Any]]:
    if SUBSTANCE_USE not in sensitivities:
        return [dict(PSY)]
    if part2:
        return [dict(RESTRICTED), dict(ETH), dict(PART2), dict(PSY)]
    return [dict(ETH), dict(PSY)]


def merge_labels(*label_lists: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for labels in label_lists:
        for label in labels:
            seen.setdefault((label["system"], label["code"]), label)
    return list(seen.values())


def disclosure_labels(resource: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``resource`` for disclosure to a partner: Part 2 data gains NORDSCLCD."""
    labels = (resource.get("meta") or {}).get("security") or []
    if not any(lb.get("code") == "42CFRPart2" for lb in labels):
        return resource
    meta = {**resource.get("meta", {}), "security": merge_labels(labels, [dict(NORDSCLCD)])}
    return {**resource, "meta": meta}
