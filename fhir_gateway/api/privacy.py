"""``Patient/{id}/$disclosures``: the accounting of a patient's 42 CFR Part 2 disclosures (2.24,
2.25) for an administrator — a Bundle of the disclosure AuditEvents of the last three years, or
since ``since`` (a date or an instant), oldest first; each names the recipient, the moment, the
resources disclosed and the Consent the disclosure rested on."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response

from fhir_gateway.api.deps import CallerDep, DatabaseDep, search_params_of
from fhir_gateway.api.responses import fhir_json
from fhir_gateway.errors import Forbidden, InvalidRequest
from fhir_gateway.security import accounting_bundle

__all__ = ["router", "parse_since"]

router = APIRouter(tags=["privacy"])


def parse_since(value: str | None) -> datetime | None:
    """A date or an instant (a time without an offset is UTC); None when not given."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidRequest(f"since is not a date or an instant: {value[:40]!r}") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@router.get("/Patient/{res_id}/$disclosures")
def disclosures(res_id: str, request: Request, db: DatabaseDep, caller: CallerDep) -> Response:
    if not caller.can("AuditEvent", "r"):
        raise Forbidden("Not permitted: the accounting of disclosures reads AuditEvents")
    since = parse_since(dict(search_params_of(request)).get("since"))
    return fhir_json(db.read(accounting_bundle, f"Patient/{res_id}", since=since))
