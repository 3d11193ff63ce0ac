"""Settings of a conversion: per-sender zone, code-map directory, limits."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from adapters.abdm import AbdmSystems

from ._parse import DEFAULT_MAX_BYTES

__all__ = [
    "ConvertOptions",
    "SenderProfile",
    "DEFAULT_COUNTRY",
    "DEFAULT_ZONE",
    "DEFAULT_LOCAL_BASE",
]

DEFAULT_ZONE = "UTC"
DEFAULT_COUNTRY = "US"
DEFAULT_LOCAL_BASE = "urn:fhir-gateway:hl7v2:"


@dataclass(frozen=True, slots=True)
class SenderProfile:
    """What we know about one sender that its messages do not say.

    ``zone`` (an IANA name) gives an offset to times sent without one; FHIR requires an offset
    on any value with a time. The default is UTC: set the facility's zone for every sender
    whose clocks are local. ``country`` (ISO 3166 alpha-2) is the facility's jurisdiction: it
    decides what ambiguous codes mean (``ICD10`` is ICD-10-CM in the US, WHO ICD-10 in India).
    ``abdm`` (an Indian sender's) gives the systems of ABDM identifiers, and ``abdm_authorities``
    which assigning authorities (CX.4 / HD namespace or universal id, upper case) assign them:
    ``abha`` (an ABHA number or address, told apart by its form) or ``hfr`` (a facility id). Such
    an identifier is checked and normalised (``adapters.abdm``); a malformed one is kept under the
    sender's own assigning authority, with a warning in the ACK.
    """

    zone: str = DEFAULT_ZONE
    country: str = DEFAULT_COUNTRY
    abdm: AbdmSystems | None = None
    abdm_authorities: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ConvertOptions:
    """Options for :func:`convert`.

    ``senders`` is keyed by sending facility (MSH-4.1) or ``application|facility``
    (MSH-3.1|MSH-4.1); the most specific key wins, then ``default_sender``.
    ``mappings_dir`` holds user ConceptMaps that override the built-in ones code by code.
    ``local_base`` prefixes the URIs made for assigning authorities and coding systems that no
    map knows (``<base>assigning-authority:<name>``, ``<base>coding-system:<name>``).
    """

    default_sender: SenderProfile = field(default_factory=SenderProfile)
    senders: Mapping[str, SenderProfile] = field(default_factory=dict)
    mappings_dir: Path | str | None = None
    max_bytes: int = DEFAULT_MAX_BYTES
    strict: bool = False
    local_base: str = DEFAULT_LOCAL_BASE

    def sender(self, application: str, facility: str) -> SenderProfile:
        return (
            self.senders.get(f"{application}|{facility}")
            or self.senders.get(facility)
            or self.default_sender
        )
