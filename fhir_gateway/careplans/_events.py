"""Discharge events from what the intake applied: the finished Encounters of a transaction."""

from __future__ import annotations

from typing import Any

from fhir_gateway.fhir.references import Reference

__all__ = ["discharged_encounters"]


def discharged_encounters(
    request_bundle: dict[str, Any], response_bundle: dict[str, Any]
) -> list[str]:
    """``Encounter/id`` of every Encounter the transaction left ``finished`` (request entry i →
    response entry i), for a converted A03 or a FHIR discharge Bundle alike."""
    out = []
    for sent, answer in zip(
        request_bundle.get("entry", []), response_bundle.get("entry", []), strict=False
    ):
        resource = sent.get("resource") or {}
        if resource.get("resourceType") != "Encounter" or resource.get("status") != "finished":
            continue
        location = (answer.get("response") or {}).get("location", "")
        ref = Reference.parse(location)
        if ref is not None and ref.type == "Encounter":
            out.append(ref.relative)
    return list(dict.fromkeys(out))
