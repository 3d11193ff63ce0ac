"""Subscriptions read into what the gateway will do, and the bodies it sends."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from adapters.notifications import read_notification
from fhir_gateway.notifications import (
    CONTENT_EXT,
    FILTER_EXT,
    TASK_TOPIC,
    SubscriptionError,
    davinci_message,
    notification_bundle,
    parse_subscription,
    sign,
    verify,
)
from fhir_gateway.notifications._payloads import rest_hook
from fhir_gateway.workers.retry import RetryPolicy, backoff, decide, retry_after

HOOK = {"type": "rest-hook", "endpoint": "https://ehr.example/hook"}
TASK = {"resourceType": "Task", "id": "t1", "status": "accepted", "intent": "order"}


def _sub(**fields):  # type: ignore[no-untyped-def]
    return {
        "resourceType": "Subscription",
        "id": "s1",
        "status": "requested",
        "reason": "r",
        **fields,
    }


def test_a_classic_subscription_is_a_search_with_headers_and_payload() -> None:
    spec = parse_subscription(
        _sub(
            criteria="Task?owner=Organization/a&status=completed",
            channel={
                **HOOK,
                "payload": "application/fhir+json",
                "header": ["Authorization: Bearer x"],
            },
        )
    )
    assert (spec.kind, spec.resource_type, spec.content) == ("search", "Task", "full-resource")
    assert spec.params == (("owner", "Organization/a"), ("status", "completed"))
    assert spec.headers == {"Authorization": "Bearer x"}
    delivery = rest_hook(spec, TASK, b"{}")
    assert (delivery.method, delivery.url) == ("PUT", "https://ehr.example/hook/Task/t1")
    empty = rest_hook(parse_subscription(_sub(criteria="Task", channel=HOOK)), TASK, b"{}")
    assert (empty.method, empty.url, empty.body) == ("POST", "https://ehr.example/hook", b"")


def test_a_topic_subscription_takes_the_topic_criteria_and_the_filters() -> None:
    spec = parse_subscription(
        _sub(
            criteria=TASK_TOPIC,
            _criteria={
                "extension": [{"url": FILTER_EXT, "valueString": "Task?owner=Organization/a"}]
            },
            channel={
                **HOOK,
                "payload": "application/fhir+json",
                "_payload": {"extension": [{"url": CONTENT_EXT, "valueCode": "id-only"}]},
            },
        )
    )
    assert (spec.kind, spec.content) == ("topic", "id-only")
    assert spec.all_params() == [
        ("status:not", "draft"),
        ("intent", "order"),
        ("owner", "Organization/a"),
    ]


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"criteria": "Task", "channel": {**HOOK, "type": "email"}}, "Subscription.channel.type"),
        (
            {"criteria": "Task", "channel": {**HOOK, "endpoint": "ftp://x"}},
            "Subscription.channel.endpoint",
        ),
        (
            {"criteria": "Task", "channel": {**HOOK, "header": ["no colon"]}},
            "Subscription.channel.header",
        ),
        (
            {"criteria": "http://example.org/topic/unknown", "channel": HOOK},
            "Subscription.criteria",
        ),
        (
            {"criteria": "Patient?name=x", "channel": {**HOOK, "type": "message"}},
            "Subscription.criteria",
        ),
        (
            {
                "criteria": TASK_TOPIC,
                "_criteria": {
                    "extension": [{"url": FILTER_EXT, "valueString": "Task?patient=Patient/1"}]
                },
                "channel": HOOK,
            },
            "Subscription.criteria.extension",
        ),
    ],
)
def test_what_cannot_be_served_says_where(fields, where) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SubscriptionError) as caught:
        parse_subscription(_sub(**fields))
    assert caught.value.expression == where


def _status(bundle):  # type: ignore[no-untyped-def]
    return {p["name"]: p for p in bundle["entry"][0]["resource"]["parameter"]}


@pytest.mark.parametrize("content", ["empty", "id-only", "full-resource"])
def test_a_backport_notification_is_a_history_bundle_led_by_the_subscription_status(
    content: str,
) -> None:
    spec = parse_subscription(
        _sub(
            criteria=TASK_TOPIC,
            channel={
                **HOOK,
                "payload": "application/fhir+json",
                "_payload": {"extension": [{"url": CONTENT_EXT, "valueCode": content}]},
            },
        )
    )
    bundle = notification_bundle(
        spec,
        resource=TASK,
        interaction="update",
        event_number=7,
        timestamp="2025-03-10T12:00:00Z",
        base_url="https://gw.example/fhir",
    )
    assert bundle["type"] == "history"
    status = _status(bundle)
    assert bundle["entry"][0]["resource"]["resourceType"] == "Parameters"
    assert status["type"]["valueCode"] == "event-notification"
    assert status["topic"]["valueCanonical"] == TASK_TOPIC
    assert status["events-since-subscription-start"]["valueString"] == "7"
    assert (
        status["subscription"]["valueReference"]["reference"]
        == "https://gw.example/fhir/Subscription/s1"
    )
    parts = {p["name"]: p for p in status["notification-event"]["part"]}
    assert parts["event-number"]["valueString"] == "7"
    if content == "empty":
        assert len(bundle["entry"]) == 1 and "focus" not in parts
        return
    assert parts["focus"]["valueReference"]["reference"] == "https://gw.example/fhir/Task/t1"
    assert bundle["entry"][1]["fullUrl"] == "https://gw.example/fhir/Task/t1"
    assert ("resource" in bundle["entry"][1]) is (content == "full-resource")


def test_a_davinci_message_is_one_the_intake_of_another_gateway_reads() -> None:
    encounter = {
        "resourceType": "Encounter",
        "id": "e1",
        "status": "finished",
        "class": {"code": "IMP"},
        "subject": {"reference": "Patient/p1"},
        "serviceProvider": {"reference": "Organization/h1"},
    }
    patient = {
        "resourceType": "Patient",
        "id": "p1",
        "identifier": [{"type": {"coding": [{"code": "MR"}]}, "system": "urn:mrn", "value": "42"}],
    }
    org = {"resourceType": "Organization", "id": "h1", "name": "St Mary's"}
    bundle = davinci_message(
        "notification-discharge",
        encounter=encounter,
        others=[patient, org],
        source_endpoint="https://gw.example/fhir",
        destination="https://ehr.example/$process-message",
        timestamp="2025-03-10T12:00:00Z",
    )
    note = read_notification(bundle)
    assert note.event == "notification-discharge"
    header = bundle["entry"][0]["resource"]
    focus = next(e for e in bundle["entry"] if e["fullUrl"] == header["focus"][0]["reference"])
    assert focus["resource"]["resourceType"] == "Encounter"
    patient_url = next(
        e["fullUrl"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
    )
    assert focus["resource"]["subject"]["reference"] == patient_url


def test_a_signature_verifies_only_for_the_same_secret_body_and_a_recent_time() -> None:
    header = sign("s3cret", b'{"a":1}', 1_700_000_000)
    assert verify("s3cret", header, b'{"a":1}', now=1_700_000_010)
    assert not verify("s3cret", header, b'{"a":2}', now=1_700_000_010)
    assert not verify("other", header, b'{"a":1}', now=1_700_000_010)
    assert not verify("s3cret", header, b'{"a":1}', now=1_700_003_600)
    assert not verify("s3cret", None, b"")


NOW = datetime(2025, 3, 10, 12, tzinfo=UTC)


def _decide(status, attempt=1, since=NOW, retry=None, policy=RetryPolicy()):  # type: ignore[no-untyped-def]
    return decide(
        policy,
        status=status,
        attempt=attempt,
        retry_since=since,
        now=NOW,
        rng=random.Random(1),
        retry_after_header=retry,
    )


def test_what_a_receiver_answers_decides_the_next_step() -> None:
    assert _decide(204).outcome == "delivered"
    for refused in (400, 401, 403, 404, 410, 422):
        assert _decide(refused).outcome == "dead"
    for transient in (408, 500, 502, 503, None):
        assert _decide(transient).outcome == "retry"
    assert _decide(429, retry="120").next_attempt_at == NOW + timedelta(seconds=120)
    http_date = "Mon, 10 Mar 2025 12:05:00 GMT"
    assert _decide(429, retry=http_date).next_attempt_at == NOW + timedelta(minutes=5)
    assert retry_after("soon", NOW) is None


def test_backoff_grows_with_jitter_and_the_window_ends_in_a_dead_letter() -> None:
    policy = RetryPolicy(base=10, cap=3600)
    rng = random.Random(7)
    for attempt in range(1, 12):
        full = min(3600, 10 * 2 ** (attempt - 1))
        waits = {backoff(policy, attempt, rng) for _ in range(20)}
        assert all(full / 2 <= w <= full for w in waits) and len(waits) > 1
    assert _decide(500, attempt=10, since=NOW - timedelta(hours=71, minutes=59)).outcome == "dead"
    assert _decide(500, since=NOW - timedelta(hours=1)).outcome == "retry"
    assert _decide(500, attempt=3, policy=RetryPolicy(max_attempts=3)).outcome == "dead"
