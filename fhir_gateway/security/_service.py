"""One app's security machinery: keys, tokens, client keys, audit writer, rate limiter."""

from __future__ import annotations

from fhir_gateway.context import Caller
from fhir_gateway.security._auditor import Auditor
from fhir_gateway.security._clients import JwksResolver
from fhir_gateway.security._keys import SigningKeys
from fhir_gateway.security._ratelimit import RateLimiter
from fhir_gateway.security._tokens import TokenService
from fhir_gateway.settings import Settings
from fhir_gateway.store.db import Database

__all__ = ["SecurityService"]


class SecurityService:
    def __init__(self, settings: Settings, database: Database) -> None:
        self.settings = settings
        self.database = database
        self.keys = SigningKeys(database, settings.signing_key_file)
        self.jwks = JwksResolver()
        self.tokens = TokenService(database, self.keys, self.jwks)
        self.auditor = Auditor(database, enabled=settings.audit_enabled)
        self.limiter = RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst)

    def insecure_caller(self, address: str | None) -> Caller:
        # --insecure-dev: no access control at all; the audit trail still names the address.
        return Caller(client_id="insecure-dev", role="system", address=address)

    def close(self) -> None:
        self.auditor.close()
