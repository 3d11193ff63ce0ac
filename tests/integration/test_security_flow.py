"""A SMART backend-services client from nothing to an API call, as a deployer would do it."""

from __future__ import annotations

import json

from security_helpers import TOKEN_URL, assertion, bearer, make_key, secure_client, token_form
from typer.testing import CliRunner

from fhir_gateway.cli import app as cli


def test_key_pair_registration_token_and_api_call(database, database_url, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    ck = make_key("case-manager-app", alg="RS384")
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps(ck.public_jwks))
    monkeypatch.setenv("FHIR_GATEWAY_DATABASE_URL", database_url)
    from fhir_gateway.settings import get_settings

    get_settings.cache_clear()
    result = CliRunner().invoke(
        cli,
        [
            "clients",
            "add",
            "--client-id",
            ck.client_id,
            "--jwks",
            str(jwks_file),
            "--role",
            "case-manager",
            "--organization",
            "Organization/care-coordination",
            "--scope",
            "system/*.cruds",
        ],
    )
    get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert ck.client_id in result.output

    with secure_client(database, database_url) as client:
        config = client.get("/.well-known/smart-configuration").json()
        assert config["token_endpoint"] == TOKEN_URL
        assert "private_key_jwt" in config["token_endpoint_auth_methods_supported"]

        assert client.get("/Patient").status_code == 401  # nothing without a token

        answer = client.post(
            config["token_endpoint"], data=token_form(assertion(ck), "system/Patient.cruds")
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["token_type"] == "bearer" and body["expires_in"] == 300
        assert body["scope"] == "system/Patient.cruds"
        assert answer.headers["cache-control"] == "no-store"

        headers = bearer(body["access_token"])
        created = client.post(
            "/Patient",
            json={"resourceType": "Patient", "name": [{"family": "Flow"}]},
            headers=headers,
        )
        assert created.status_code == 201, created.text
        read = client.get(f"/Patient/{created.json()['id']}", headers=headers)
        assert read.status_code == 200 and read.json()["name"][0]["family"] == "Flow"
        # the token carries only the granted scope: other types stay closed
        assert client.get("/Task", headers=headers).status_code == 403


def test_clients_list_and_remove(database, database_url, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    ck = make_key("partner-app")
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps(ck.public_jwks))
    monkeypatch.setenv("FHIR_GATEWAY_DATABASE_URL", database_url)
    from fhir_gateway.settings import get_settings

    runner = CliRunner()
    get_settings.cache_clear()
    try:
        add = runner.invoke(
            cli,
            [
                "clients",
                "add",
                "--client-id",
                ck.client_id,
                "--jwks",
                str(jwks_file),
                "--role",
                "partner",
                "--organization",
                "Organization/hope",
                "--scope",
                "system/Task.rus",
                "--scope",
                "system/Patient.rs",
            ],
        )
        assert add.exit_code == 0, add.output
        listed = runner.invoke(cli, ["clients", "list"])
        assert "partner-app" in listed.output and "Organization/hope" in listed.output
        too_much = runner.invoke(
            cli,
            [
                "clients",
                "add",
                "--jwks",
                str(jwks_file),
                "--role",
                "partner",
                "--organization",
                "Organization/hope",
                "--scope",
                "system/Condition.rs",
            ],
        )
        assert too_much.exit_code != 0 and "partner" in too_much.output
        private = tmp_path / "private.json"
        private.write_text(json.dumps({"keys": [ck.key.as_dict(private=True)]}))
        leaked = runner.invoke(
            cli,
            [
                "clients",
                "add",
                "--jwks",
                str(private),
                "--role",
                "partner",
                "--organization",
                "Organization/hope",
                "--scope",
                "system/Task.rs",
            ],
        )
        assert leaked.exit_code != 0 and "private" in leaked.output
        removed = runner.invoke(cli, ["clients", "remove", ck.client_id])
        assert removed.exit_code == 0
        assert "partner-app" not in runner.invoke(cli, ["clients", "list"]).output
    finally:
        get_settings.cache_clear()

    with secure_client(database, database_url) as client:  # a removed client gets no token
        refused = client.post("/auth/token", data=token_form(assertion(ck)))
        assert refused.status_code == 401
        assert refused.json()["resourceType"] == "OperationOutcome"


def test_readme_flow_keygen_add_and_token_from_the_command_line(
    database, database_url, tmp_path, monkeypatch, serve_app
):  # type: ignore[no-untyped-def]
    """What the README tells a new user to type, against a real server with authentication on."""
    import httpx
    from security_helpers import secure_settings

    from fhir_gateway.app import create_app

    base = serve_app(
        factory=lambda url: create_app(
            secure_settings(database_url, base_url=url), database=database
        )
    )
    monkeypatch.setenv("FHIR_GATEWAY_DATABASE_URL", database_url)
    monkeypatch.chdir(tmp_path)
    from fhir_gateway.settings import get_settings

    runner = CliRunner()
    get_settings.cache_clear()
    try:
        assert runner.invoke(cli, ["clients", "keygen", "demo"]).exit_code == 0
        added = runner.invoke(
            cli,
            [
                "clients",
                "add",
                "--client-id",
                "demo",
                "--jwks",
                "demo.jwks.json",
                "--role",
                "case-manager",
                "--organization",
                "Organization/care-coordination",
                "--scope",
                "system/*.cruds",
            ],
        )
        assert added.exit_code == 0, added.output
        issued = runner.invoke(
            cli, ["clients", "token", "demo", "--key", "demo.private.jwk.json", "--url", base]
        )
        assert issued.exit_code == 0, issued.output
        answer = httpx.get(
            f"{base}/CarePlan", headers={"Authorization": f"Bearer {issued.output.strip()}"}
        )
        assert answer.status_code == 200 and answer.json()["resourceType"] == "Bundle"
        wrong = runner.invoke(
            cli, ["clients", "token", "nobody", "--key", "demo.private.jwk.json", "--url", base]
        )
        assert wrong.exit_code == 1 and "refused (401)" in wrong.output
    finally:
        get_settings.cache_clear()
