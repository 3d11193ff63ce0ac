"""history at instance, type and system level; _since, _count and stable paging."""

from __future__ import annotations

from datetime import UTC, datetime

from fhir_gateway import clock

FHIR = {"Content-Type": "application/fhir+json"}


def at(minute: int) -> None:
    moment = datetime(2026, 1, 1, 12, minute, tzinfo=UTC)
    clock.set_clock(lambda: moment)


def test_instance_history_newest_first(client):
    at(0)
    client.put(
        "/Patient/h1", json={"resourceType": "Patient", "id": "h1", "gender": "male"}, headers=FHIR
    )
    at(1)
    client.put(
        "/Patient/h1",
        json={"resourceType": "Patient", "id": "h1", "gender": "female"},
        headers=FHIR,
    )
    body = client.get("/Patient/h1/_history").json()
    assert body["type"] == "history"
    assert [e["resource"]["meta"]["versionId"] for e in body["entry"]] == ["2", "1"]
    assert [e["request"]["method"] for e in body["entry"]] == ["PUT", "PUT"]


def test_type_history_since(client):
    at(0)
    client.post("/Patient", json={"resourceType": "Patient"}, headers=FHIR)
    at(10)
    client.post("/Patient", json={"resourceType": "Patient", "gender": "male"}, headers=FHIR)
    client.post(
        "/Observation",
        json={"resourceType": "Observation", "status": "final", "code": {"text": "x"}},
        headers=FHIR,
    )
    since = clock.to_instant(datetime(2026, 1, 1, 12, 5, tzinfo=UTC))
    body = client.get("/Patient/_history", params={"_since": since}).json()
    assert body["total"] == 1
    assert body["entry"][0]["resource"]["gender"] == "male"
    assert client.get("/_history").json()["total"] == 3


def test_history_paging_is_stable_while_new_versions_arrive(client):
    for minute in range(5):
        at(minute)
        client.post("/Patient", json={"resourceType": "Patient", "id": f"x{minute}"}, headers=FHIR)
    at(30)
    first = client.get("/Patient/_history", params={"_count": 2}).json()
    assert len(first["entry"]) == 2
    next_url = next(link["url"] for link in first["link"] if link["relation"] == "next")
    at(31)
    client.post("/Patient", json={"resourceType": "Patient"}, headers=FHIR)  # arrives between pages
    second = client.get(next_url.replace("http://testserver", "")).json()
    seen_first = {e["resource"]["id"] for e in first["entry"]}
    seen_second = {e["resource"]["id"] for e in second["entry"]}
    assert len(seen_second) == 2 and not seen_first & seen_second
    assert second["total"] == 5


def test_history_with_bad_since_is_400(client):
    assert client.get("/_history", params={"_since": "yesterday"}).status_code == 400
    assert client.get("/_history", params={"_count": "many"}).status_code == 400


def test_last_updated_follows_the_clock(client):
    at(42)
    body = client.post("/Patient", json={"resourceType": "Patient"}, headers=FHIR).json()
    assert body["meta"]["lastUpdated"].startswith("2026-01-01T12:42:00")
