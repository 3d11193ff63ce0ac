"""Errors of talking to a partner's FHIR server.

PartnerError             anything that went wrong
├── PartnerUnavailable   network error, timeout, 5xx, 429, 408: worth retrying later
└── PartnerRefused       another 4xx: the partner will not take this request as it is
"""

from __future__ import annotations

__all__ = ["PartnerError", "PartnerUnavailable", "PartnerRefused"]


class PartnerError(Exception):
    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class PartnerUnavailable(PartnerError):
    pass


class PartnerRefused(PartnerError):
    pass
