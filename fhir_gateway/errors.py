"""The gateway's exception tree, mapped in one place to an HTTP status and an OperationOutcome.

    GatewayError                    500 exception    (never raised for client input)
    ├── InvalidRequest              400 invalid      bad JSON, bad resource, bad parameter
    │   ├── InvalidSearch           400 invalid      unknown or malformed search parameter
    │   └── TooCostly               400 too-costly   over a configured bound (sort keys, repeats,
    │                                                 entries, time budget); names the limit
    ├── Unauthorized                401 login
    ├── Forbidden                   403 forbidden
    ├── NotFound                    404 not-found
    │   └── UnknownType             404 not-supported
    ├── MethodNotAllowed            405 not-supported
    ├── Conflict                    409 conflict      e.g. id mismatch, concurrent write
    ├── Gone                        410 deleted
    ├── PreconditionFailed          412 conflict      If-Match / conditional on many matches
    ├── PreconditionRequired        428 business-rule a change that must be conditional (If-Match)
    ├── PayloadTooLarge             413 too-costly
    ├── UnsupportedMediaType        415 not-supported
    ├── BusinessRule                422 business-rule  (also processing errors on valid input)
    ├── PatchError                  422 processing    a patch that cannot be applied
    ├── TooManyRequests             429 throttled     a client over its rate limit (Retry-After)
    └── Unavailable                 503 transient     database busy or unreachable; retry

Foreign errors (SQLAlchemy, pydantic, httpx) are translated where they enter; nothing else raises
them past a service boundary.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "GatewayError",
    "InvalidRequest",
    "InvalidSearch",
    "TooCostly",
    "Unauthorized",
    "Forbidden",
    "NotFound",
    "UnknownType",
    "MethodNotAllowed",
    "Conflict",
    "Gone",
    "PreconditionFailed",
    "PreconditionRequired",
    "PayloadTooLarge",
    "UnsupportedMediaType",
    "BusinessRule",
    "PatchError",
    "TooManyRequests",
    "Unavailable",
    "Issue",
]


class Issue:
    """One OperationOutcome.issue: severity, code, text and the element path it concerns."""

    __slots__ = ("severity", "code", "diagnostics", "expression")

    def __init__(
        self,
        diagnostics: str,
        *,
        code: str = "invalid",
        severity: str = "error",
        expression: list[str] | None = None,
    ) -> None:
        self.severity = severity
        self.code = code
        self.diagnostics = diagnostics
        self.expression = expression or []

    def to_fhir(self) -> dict[str, Any]:
        out: dict[str, Any] = {"severity": self.severity, "code": self.code}
        if self.diagnostics:
            out["diagnostics"] = self.diagnostics
        if self.expression:
            out["expression"] = list(self.expression)
        return out


class GatewayError(Exception):
    status = 500
    code = "exception"

    def __init__(
        self,
        message: str,
        *,
        expression: list[str] | None = None,
        issues: list[Issue] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}
        self.issues = issues or [Issue(message, code=self.code, expression=expression)]

    def outcome(self) -> dict[str, Any]:
        return {
            "resourceType": "OperationOutcome",
            "issue": [issue.to_fhir() for issue in self.issues],
        }


class InvalidRequest(GatewayError):
    status = 400
    code = "invalid"


class InvalidSearch(InvalidRequest):
    pass


class TooCostly(InvalidRequest):
    """Over a bound of decision 15: a 400, not a 503, since retrying the same request cannot help."""

    code = "too-costly"


class Unauthorized(GatewayError):
    status = 401
    code = "login"


class Forbidden(GatewayError):
    status = 403
    code = "forbidden"


class NotFound(GatewayError):
    status = 404
    code = "not-found"


class UnknownType(NotFound):
    code = "not-supported"


class MethodNotAllowed(GatewayError):
    status = 405
    code = "not-supported"


class Conflict(GatewayError):
    status = 409
    code = "conflict"


class Gone(GatewayError):
    status = 410
    code = "deleted"


class PreconditionFailed(GatewayError):
    status = 412
    code = "conflict"


class PreconditionRequired(GatewayError):
    status = 428
    code = "business-rule"


class PayloadTooLarge(GatewayError):
    status = 413
    code = "too-costly"


class UnsupportedMediaType(GatewayError):
    status = 415
    code = "not-supported"


class BusinessRule(GatewayError):
    status = 422
    code = "business-rule"


class PatchError(GatewayError):
    status = 422
    code = "processing"


class TooManyRequests(GatewayError):
    status = 429
    code = "throttled"


class Unavailable(GatewayError):
    status = 503
    code = "transient"
