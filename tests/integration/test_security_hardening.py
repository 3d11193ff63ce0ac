"""Hardening: rate limits, CORS off by default, body and depth limits before any work, the
insecure development mode on loopback only, and the payload seam notifications must use."""

from __future__ import annotations

import logging

from security_data import CLIENTS, consent, seed
from security_helpers import bearer, get_token, register, secure_client
from typer.testing import CliRunner

from fhir_gateway.cli import app as cli
from fhir_gateway.context import Caller
from fhir_gateway.security import partner_caller, redact_for, visible_to
from fhir_gateway.store import repository as repo


def test_a_client_over_its_rate_gets_429_with_retry_after(database, database_url):  # type: ignore[no-untyped-def]
    with secure_client(
        database, database_url, rate_limit_per_minute=6, rate_limit_burst=3
    ) as client:
        key = register(database, "ehr", ["system/*.rs"], "Organization/ehr-clinic")
        other = register(database, "ehr", ["system/*.rs"], "Organization/ehr-clinic")
        token, other_token = get_token(client, key), get_token(client, other)
        answers = [client.get("/Patient", headers=bearer(token)).status_code for _ in range(4)]
        assert answers[:3] == [200, 200, 200] and answers[3] == 429
        limited = client.get("/Patient", headers=bearer(token))
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        assert limited.json()["issue"][0]["code"] == "throttled"
        assert client.get("/Patient", headers=bearer(other_token)).status_code == 200  # per client


def test_cors_is_off_unless_origins_are_configured(database, database_url):  # type: ignore[no-untyped-def]
    preflight = {"Origin": "https://app.example", "Access-Control-Request-Method": "GET"}
    with secure_client(database, database_url) as client:
        answer = client.get("/metadata", headers={"Origin": "https://app.example"})
        assert "access-control-allow-origin" not in answer.headers
        assert (
            "access-control-allow-origin"
            not in client.options("/Patient", headers=preflight).headers
        )
    with secure_client(database, database_url, cors_origins=["https://app.example"]) as client:
        answer = client.options("/Patient", headers=preflight)
        assert answer.headers["access-control-allow-origin"] == "https://app.example"
        other = client.get("/metadata", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


def test_body_size_and_depth_limits_hold_with_authentication(database, database_url):  # type: ignore[no-untyped-def]
    with secure_client(database, database_url, max_body_bytes=2000, max_json_depth=10) as client:
        cm = bearer(get_token(client, register(database, "case-manager", ["system/*.cruds"], None)))
        big = {"resourceType": "Patient", "name": [{"family": "x" * 5000}]}
        assert client.post("/Patient", json=big, headers=cm).status_code == 413
        deep: dict = {"resourceType": "Patient", "extension": []}
        node = deep
        for _ in range(12):
            child: dict = {"url": "http://x", "extension": []}
            node["extension"].append(child)
            node = child
        assert client.post("/Patient", json=deep, headers=cm).status_code == 400
        assert (
            client.post(
                "/auth/token",
                content=b"a=" + b"x" * 70000,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            ).status_code
            == 413
        )


def test_insecure_dev_refuses_anything_but_loopback(monkeypatch):  # type: ignore[no-untyped-def]
    from fhir_gateway.settings import get_settings

    monkeypatch.setenv("FHIR_GATEWAY_AUTH_ENABLED", "true")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(
            cli, ["serve", "--insecure-dev", "--host", "0.0.0.0", "--no-migrate"]
        )
        assert result.exit_code == 2 and "loopback" in result.output
        monkeypatch.setenv("FHIR_GATEWAY_AUTH_ENABLED", "false")
        get_settings.cache_clear()
        result = CliRunner().invoke(cli, ["serve", "--host", "10.1.2.3", "--no-migrate"])
        assert result.exit_code == 2 and "authentication is off" in result.output
    finally:
        get_settings.cache_clear()


def test_insecure_dev_mode_serves_without_tokens(database, database_url):  # type: ignore[no-untyped-def]
    with secure_client(database, database_url, auth_enabled=False) as client:
        assert client.get("/Patient").status_code == 200


def test_no_token_reaches_the_log_even_at_debug(database, database_url, caplog):  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    with secure_client(database, database_url) as client:
        key = register(database, "admin", ["system/*.cruds"], None)
        token = get_token(client, key)
        client.get("/Patient", headers=bearer(token))
        client.get("/Nonsense/1", headers=bearer(token))
        client.get("/Patient", headers=bearer(token + "x"))
    assert token not in caplog.text and token.split(".")[2] not in caplog.text
    redacted = logging.LogRecord(
        "x", logging.INFO, "", 0, "Authorization: Bearer %s", (token,), None
    )
    from fhir_gateway.security.logs import SecretFilter

    SecretFilter().filter(redacted)
    assert token not in redacted.getMessage()


def test_notification_payloads_go_through_the_row_policy(database, database_url):  # type: ignore[no-untyped-def]
    with secure_client(database, database_url) as client:
        seed(database)
        hope, prairie = partner_caller("Organization/hope"), partner_caller("Organization/prairie")
        # a plain Caller (as kept beside a Subscription) is bounded by its role just the same
        stored_viewer = Caller(
            "sub-owner", "partner", "Organization/hope", frozenset({"system/*.rs"})
        )
        with database.session(readonly=True) as session:
            task = repo.read(session, "Task", "t-hope").content
            part2 = repo.read(session, "Task", "t-prairie").content
            patient = repo.read(session, "Patient", "pat-psy").content
            condition = repo.read(session, "Condition", "c-psy").content
            assert visible_to(session, hope, "Task", "t-hope")
            assert not visible_to(session, prairie, "Task", "t-hope")
            assert redact_for(session, hope, task) == task
            assert redact_for(session, prairie, part2) is None  # no consent yet
            assert redact_for(session, stored_viewer, condition) is None
            minimal = redact_for(session, hope, patient)
            assert (
                minimal is not None
                and "identifier" not in minimal
                and "maritalStatus" not in minimal
            )
        cm = bearer(get_token(client, register(database, *CLIENTS["case-manager"])))
        assert (
            client.post(
                "/Consent", json=consent("pat-psy", "Organization/prairie"), headers=cm
            ).status_code
            == 201
        )
        with database.session(readonly=True) as session:
            assert (
                redact_for(session, prairie, part2) is None
            )  # another patient's consent opens nothing here
        assert (
            client.post(
                "/Consent", json=consent("pat-sud", "Organization/prairie"), headers=cm
            ).status_code
            == 201
        )
        with database.session(readonly=True) as session:
            copy = redact_for(session, prairie, part2)
            assert copy is not None and "NORDSCLCD" in {s["code"] for s in copy["meta"]["security"]}
