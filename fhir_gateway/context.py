"""Who is asking and with which rights: carried by every request down to the store.

Authentication (the security issue) builds a Caller from a token; until then, and for internal
work (intake, workers, CLI), the gateway acts as ``SYSTEM``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Caller", "SYSTEM"]


@dataclass(frozen=True, slots=True)
class Caller:
    client_id: str
    role: str  # system | admin | case-manager | ehr | hospital | partner
    organization: str | None = None  # "Organization/ID" the caller acts for
    scopes: frozenset[str] = field(default_factory=frozenset)
    address: str | None = None  # network source, for the audit trail

    def can(self, resource_type: str, action: str) -> bool:
        """SMART v2 style check: ``action`` is one of c, r, u, d, s."""
        if self.role in ("system", "admin"):
            return True
        for scope in self.scopes:
            context, _, rest = scope.partition("/")
            rtype, _, perms = rest.partition(".")
            if rtype not in ("*", resource_type):
                continue
            if perms in ("*", "write" if action in "cud" else "read"):
                return True
            if perms == "read" and action in "rs":
                return True
            if action in perms:
                return True
        return False


SYSTEM = Caller(client_id="fhir-gateway", role="system")
