"""The audit trail: an AuditEvent for every read, search, write, refusal and token; append-only;
searchable by administrators only."""

from __future__ import annotations

from security_helpers import (
    assertion,
    bearer,
    flush_audit,
    get_token,
    register,
    secure_client,
    token_form,
)


def _events(client, headers, query: str = "") -> list[dict]:  # type: ignore[no-untyped-def]
    flush_audit(client)
    bundle = client.get(f"/AuditEvent?_count=1000{query}", headers=headers).json()
    return [e["resource"] for e in bundle.get("entry", [])]


def _subtypes(events: list[dict]) -> list[str]:
    return [e["subtype"][0]["code"] for e in events]


def test_every_interaction_and_refusal_is_audited_with_who_what_patient_outcome(
    database, database_url
):  # type: ignore[no-untyped-def]
    with secure_client(database, database_url) as client:
        admin_key = register(
            database, "admin", ["system/*.cruds"], "Organization/care-coordination"
        )
        cm_key = register(
            database, "case-manager", ["system/*.cruds"], "Organization/care-coordination"
        )
        admin, cm = bearer(get_token(client, admin_key)), bearer(get_token(client, cm_key))
        created = client.post(
            "/Patient", json={"resourceType": "Patient", "name": [{"family": "Audit"}]}, headers=cm
        )
        pid = created.json()["id"]
        client.get(f"/Patient/{pid}", headers=cm)
        client.get(f"/Condition?patient={pid}", headers=cm)
        client.delete(f"/Patient/{pid}", headers=cm)
        client.get("/Patient", headers={"Authorization": "Bearer not-a-token"})
        client.get("/AuditEvent", headers=cm)  # a case manager may not read the trail: refused
        client.post("/auth/token", data=token_form(assertion(cm_key, aud="https://wrong")))

        events = _events(client, admin)
        kinds = _subtypes(events)
        for kind in ("create", "read", "search-type", "delete", "token-issued", "token-refused"):
            assert kind in kinds, kind
        read = next(e for e in events if e["subtype"][0]["code"] == "read")
        assert read["action"] == "R" and read["outcome"] == "0"
        assert read["agent"][0]["who"]["identifier"]["value"] == cm_key.client_id
        assert read["agent"][0]["network"]["address"]
        assert read["agent"][1]["who"]["reference"] == "Organization/care-coordination"
        assert {"reference": f"Patient/{pid}"} in [x.get("what") for x in read["entity"]]
        search = next(
            e
            for e in events
            if e["subtype"][0]["code"] == "search-type"
            and any("/Condition" in x.get("description", "") for x in e.get("entity", []))
        )
        assert {"reference": f"Patient/{pid}"} in [x.get("what") for x in search["entity"]]
        refused = [e for e in events if e["outcome"] == "4"]
        assert any(
            e["agent"][0]["who"]["display"] == "unauthenticated" for e in refused
        )  # the bad token
        assert any(
            e["agent"][0].get("altId") == cm_key.client_id and e["outcomeDesc"] == "403"
            for e in refused
        )
        assert any(e["subtype"][0]["code"] == "token-refused" for e in refused)
        assert "not-a-token" not in str(events)

        # searchable like any resource, by the admin
        by_client = _events(client, admin, f"&altid={cm_key.client_id}&outcome=4")
        assert by_client and all(e["outcome"] == "4" for e in by_client)
        about_patient = _events(client, admin, f"&patient=Patient/{pid}")
        assert {"read", "search-type", "delete"} <= set(_subtypes(about_patient))


def test_audit_events_are_append_only_even_for_admins(database, database_url):  # type: ignore[no-untyped-def]
    with secure_client(database, database_url) as client:
        admin = bearer(get_token(client, register(database, "admin", ["system/*.cruds"], None)))
        client.get("/Patient", headers=admin)
        event = _events(client, admin)[0]
        changed = {**event, "outcome": "0", "outcomeDesc": "nothing happened"}
        assert (
            client.put(f"/AuditEvent/{event['id']}", json=changed, headers=admin).status_code == 403
        )
        patch = [{"op": "replace", "path": "/outcome", "value": "0"}]
        assert (
            client.patch(
                f"/AuditEvent/{event['id']}",
                json=patch,
                headers={**admin, "Content-Type": "application/json-patch+json"},
            ).status_code
            == 403
        )
        assert client.delete(f"/AuditEvent/{event['id']}", headers=admin).status_code == 403
        assert (
            client.get(f"/AuditEvent/{event['id']}", headers=admin).json()["outcomeDesc"]
            == event["outcomeDesc"]
        )


def test_the_trail_can_be_turned_off(database, database_url):  # type: ignore[no-untyped-def]
    with secure_client(database, database_url, audit_enabled=False) as client:
        admin = bearer(get_token(client, register(database, "admin", ["system/*.cruds"], None)))
        client.get("/Patient", headers=admin)
        assert _events(client, admin) == []
