"""Clients for community partners' FHIR servers (the SDOH Clinical Care IG's "direct" pattern).
Pure outbound I/O over httpx; nothing of the gateway is imported here.

    with PartnerClient("https://partner.example/fhir", transport=...) as partner:
        partner.transaction(bundle)
        task = partner.read("Task", "123")
"""

from __future__ import annotations

from ._client import FHIR_JSON, PartnerClient
from ._errors import PartnerError, PartnerRefused, PartnerUnavailable

__all__ = ["FHIR_JSON", "PartnerClient", "PartnerError", "PartnerRefused", "PartnerUnavailable"]
