"""Who is asking and with which rights: carried by every request down to the store.

Authentication (the security issue) builds a Caller from a token; until then, and for internal
work (intake, workers, CLI), the gateway acts as ``SYSTEM``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Caller", "SYSTEM", "scope_grants"]


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
        return any(scope_grants(scope, resource_type, action) for scope in self.scopes)


_V1 = {"read": "rs", "write": "cud", "*": "cruds"}


def scope_grants(scope: str, resource_type: str, action: str) -> bool:
    """Does one ``system/Type.perms`` scope allow ``action`` on ``resource_type``?

    Only the ``system`` context counts (backend services act for no user or patient). Granular
    scopes (``?param=value``) are not supported and grant nothing: honouring their letters alone
    would widen them.
    """
    context, _, rest = scope.partition("/")
    rtype, _, perms = rest.partition(".")
    if context != "system" or rtype not in ("*", resource_type) or "?" in perms:
        return False
    letters = _V1.get(perms, perms)
    if not letters or any(ch not in "cruds" for ch in letters):
        return False
    return action in letters


SYSTEM = Caller(client_id="fhir-gateway", role="system")
