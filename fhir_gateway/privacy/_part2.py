"""Whose substance-use diagnoses are 42 CFR Part 2 records.

42 CFR Part 2 is US law: by default a sender is a Part 2 program when its facility is in the US
(``jurisdiction.country_of``: ``sender_countries``, else ``default_country``), and not when it is
elsewhere (an Indian facility follows the Mental Healthcare Act instead). An explicit
``part2_senders`` list ('APP|FACILITY', 'FACILITY' or a FHIR source endpoint; ``*``: every
sender) overrides the country. The protective answer wins: a sender that is not known is a Part 2
sender under a list (it could be on it), and takes the default country otherwise.

Which documents are SUD counselling notes is the sender's to say: ``counselling_note_types``
maps a sender ('APP|FACILITY', 'FACILITY' or ``*`` for every sender) to DocumentReference types
(``system|code``).
"""

from __future__ import annotations

from fhir_gateway.jurisdiction import US, country_of
from fhir_gateway.privacy._mhca import is_mhca_sender
from fhir_gateway.settings import Settings

__all__ = ["is_part2_sender", "counselling_note_types"]


def _listed(listed: list[str], sender: str) -> bool:
    facility = sender.rpartition("|")[2]
    return sender in listed or facility in listed


def is_part2_sender(settings: Settings, *senders: str | None) -> bool:
    """Are the substance-use diagnoses of what these senders sent (any of them) Part 2 records?"""
    known = [s for s in senders if s]
    if (
        settings.mhca_senders is not None
        and known
        and all(is_mhca_sender(settings, s) for s in known)
    ):
        return False
    listed = settings.part2_senders
    if listed is not None:
        return "*" in listed or not known or any(_listed(listed, s) for s in known)
    if not known:
        return country_of(settings, None) == US
    return any(country_of(settings, s) == US for s in known)


def counselling_note_types(settings: Settings, *senders: str | None) -> frozenset[str]:
    """The document types (``system|code``) these senders' SUD counselling notes have; with no
    sender known, those of every sender (the protective answer)."""
    named = settings.counselling_note_types
    known = [s for s in senders if s]
    if not known:
        return frozenset(t for types in named.values() for t in types)
    keys = {"*"} | {k for s in known for k in (s, s.rpartition("|")[2])}
    return frozenset(t for key in keys for t in named.get(key, []))
