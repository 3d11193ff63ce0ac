"""A signed-in person as a ``Caller``: the same role ceiling and row policy as an API client.

A user is granted ``system/*.cruds`` within its role's ceiling (``TokenCaller``), the way a client
registered with every scope its role allows would be; the role and Organization decide the rest.
"""

from __future__ import annotations

from fhir_gateway.context import Caller
from fhir_gateway.security import TokenCaller
from fhir_gateway.web._users import User

__all__ = ["caller_of", "PARTNER", "CASE_TEAM"]

PARTNER = frozenset({"partner"})
CASE_TEAM = frozenset({"case-manager", "admin"})
_ALL = frozenset({"system/*.cruds"})


def caller_of(user: User, address: str | None) -> Caller:
    return TokenCaller(
        client_id=f"user:{user.username}",
        role=user.role,
        organization=user.organization,
        scopes=_ALL,
        address=address,
    )
