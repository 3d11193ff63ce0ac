"""Scopes, role ceilings, granted scopes, the rate limiter, audit classification, log redaction."""

from __future__ import annotations

import pytest

from fhir_gateway.context import Caller, scope_grants
from fhir_gateway.security._audit import interaction_of, request_event
from fhir_gateway.security._ratelimit import RateLimiter
from fhir_gateway.security._roles import TokenCaller
from fhir_gateway.security._tokens import granted_scopes
from fhir_gateway.security.logs import redact


@pytest.mark.parametrize(
    ("scope", "rtype", "action", "granted"),
    [
        ("system/Task.rs", "Task", "r", True),
        ("system/Task.rs", "Task", "u", False),
        ("system/Task.rs", "Patient", "r", False),
        ("system/*.cruds", "Condition", "d", True),
        ("system/Task.read", "Task", "s", True),
        ("system/Task.read", "Task", "c", False),
        ("system/Task.write", "Task", "u", True),
        ("system/Task.write", "Task", "r", False),
        ("patient/Task.rs", "Task", "r", False),  # backend services act in the system context only
        (
            "system/Observation.rs?category=laboratory",
            "Observation",
            "c",
            False,
        ),  # no granular scopes
        ("system/Task.xyz", "Task", "r", False),
    ],
)
def test_scope_grants(scope, rtype, action, granted):  # type: ignore[no-untyped-def]
    assert scope_grants(scope, rtype, action) is granted


def test_the_role_ceiling_bounds_the_scopes():  # type: ignore[no-untyped-def]
    everything = frozenset({"system/*.cruds"})
    partner = TokenCaller("p", "partner", "Organization/x", everything)
    assert (
        partner.can("Task", "u")
        and not partner.can("Task", "c")
        and not partner.can("Condition", "r")
    )
    admin = TokenCaller("a", "admin", None, everything)
    assert (
        admin.can("AuditEvent", "s")
        and not admin.can("AuditEvent", "u")
        and not admin.can("AuditEvent", "d")
    )
    cm = TokenCaller("c", "case-manager", None, everything)
    assert cm.can("CarePlan", "d") and not cm.can("AuditEvent", "r")
    assert not TokenCaller("e", "ehr", None, everything).can("Patient", "c")
    assert not TokenCaller("u", "stranger", None, everything).can("Patient", "r")
    assert Caller("legacy", "admin").can("AuditEvent", "d")  # a plain Caller keeps its old meaning


def test_granted_scopes_are_the_requested_ones_the_registration_covers():  # type: ignore[no-untyped-def]
    registered = ("system/Task.rus", "system/Patient.rs")
    assert granted_scopes(None, registered) == list(registered)
    assert granted_scopes("system/Task.rs system/Condition.rs", registered) == ["system/Task.rs"]
    assert granted_scopes("system/Task.cruds", registered) == []
    assert granted_scopes("system/*.rs", ("system/*.cruds",)) == ["system/*.rs"]
    assert granted_scopes("system/*.rs", registered) == []
    assert granted_scopes("system/Patient.read", registered) == ["system/Patient.read"]


def test_token_bucket_refills_with_time():  # type: ignore[no-untyped-def]
    now = [0.0]
    limiter = RateLimiter(60, 2, now=lambda: now[0])
    assert limiter.take("a") is None and limiter.take("a") is None
    wait = limiter.take("a")
    assert wait is not None and 0 < wait <= 1.0
    assert limiter.take("b") is None  # another client has its own bucket
    now[0] += 1.0
    assert limiter.take("a") is None
    assert RateLimiter(0, 5).take("a") is None  # 0: no limit


@pytest.mark.parametrize(
    ("method", "path", "code", "action", "target"),
    [
        ("GET", "/Patient/1", "read", "R", "Patient/1"),
        ("GET", "/Patient/1/_history/2", "vread", "R", "Patient/1"),
        ("GET", "/Patient/1/_history", "history-instance", "R", "Patient/1"),
        ("GET", "/Patient", "search-type", "E", "Patient"),
        ("POST", "/Patient/_search", "search-type", "E", "Patient/_search"),
        ("POST", "/Patient", "create", "C", "Patient"),
        ("PUT", "/Patient/1", "update", "U", "Patient/1"),
        ("DELETE", "/Patient/1", "delete", "D", "Patient/1"),
        ("POST", "/", "transaction", "E", None),
        ("GET", "/_history", "history-system", "R", None),
        ("POST", "/hl7v2", "hl7v2", "C", "hl7v2"),
    ],
)
def test_interactions_are_classified_from_method_and_path(method, path, code, action, target):  # type: ignore[no-untyped-def]
    what = interaction_of(method, path)
    assert (what.code, what.action, what.target) == (code, action, target)


def test_an_audit_event_names_the_patient_of_a_query():  # type: ignore[no-untyped-def]
    caller = Caller("c1", "ehr", "Organization/x", address="10.0.0.1")
    event = request_event(
        method="GET",
        path="/Condition",
        query="subject=Patient/p9&code=F10",
        status=200,
        caller=caller,
        address="10.0.0.1",
    )
    assert {"reference": "Patient/p9"} in [e.get("what") for e in event["entity"]]
    assert event["outcome"] == "0" and event["agent"][0]["network"]["address"] == "10.0.0.1"


def test_log_redaction_masks_jwts_and_bearer_values():  # type: ignore[no-untyped-def]
    jwt_like = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    text = redact(f"Authorization: Bearer abc.def and {jwt_like} and client_assertion=xyz&scope=a")
    assert (
        "abc.def" not in text and jwt_like not in text and "xyz" not in text and "scope=a" in text
    )
