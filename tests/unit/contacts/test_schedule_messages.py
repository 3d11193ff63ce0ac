"""Caring contacts' pure rules: the schedule read from the shipped PlanDefinition, the message in
the patient's language with the crisis line of their country, who can be reached, consent, STOP."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fhir_gateway.contacts import (
    asks_to_stop,
    caring_consent,
    compose,
    occurrences,
    permits_contact,
    templates_of,
)
from fhir_gateway.contacts._data import SHIPPED
from fhir_gateway.contacts._reach import address_of
from fhir_gateway.contacts._schedule import ScheduleError

PLAN = orjson.loads((SHIPPED / "PlanDefinition-caring-contacts.json").read_bytes())
TEMPLATES = templates_of(
    orjson.loads((SHIPPED / "ActivityDefinition-caring-contact.json").read_bytes())
)
NOW = datetime(2026, 3, 1, tzinfo=UTC)


def _patient(language: str | None = None, **extra: object) -> dict:
    doc: dict = {"resourceType": "Patient", "name": [{"family": "Rao", "given": ["Asha"]}]}
    if language:
        doc["communication"] = [
            {
                "language": {"coding": [{"system": "urn:ietf:bcp:47", "code": language}]},
                "preferred": True,
            }
        ]
    return {**doc, **extra}


def test_weekly_in_the_first_month_then_monthly_to_twelve_months_at_ten_local() -> None:
    # discharged in Bengaluru late on 31 January: the 31st makes the month ends show
    discharged = datetime(2026, 1, 31, 17, 0, tzinfo=UTC)  # 22:30 IST, still 31 January there
    when = occurrences(PLAN, discharged, "Asia/Kolkata")
    local = [w.astimezone(ZoneInfo("Asia/Kolkata")) for w in when]
    assert [d.date() for d in local] == [
        date(2026, 2, 7),
        date(2026, 2, 14),
        date(2026, 2, 21),
        date(2026, 2, 28),
        *(
            date(2026 + (m - 1) // 12, (m - 1) % 12 + 1, d)
            for m, d in [
                (3, 31),
                (4, 30),
                (5, 31),
                (6, 30),
                (7, 31),
                (8, 31),
                (9, 30),
                (10, 31),
                (11, 30),
                (12, 31),
                (13, 31),
            ]
        ),
    ]
    assert {(d.hour, d.minute) for d in local} == {(10, 0)}
    assert len(when) == 15


def test_a_schedule_that_cannot_be_read_is_refused_with_the_action_named() -> None:
    broken = {
        "action": [{"id": "daily", "timingTiming": {"repeat": {"period": 1, "periodUnit": "d"}}}]
    }
    with pytest.raises(ScheduleError, match="daily"):
        occurrences(broken, NOW, "UTC")
    endless = {
        "action": [
            {
                "id": "hourly",
                "timingTiming": {
                    "repeat": {
                        "boundsRange": {
                            "low": {"value": 0, "code": "d"},
                            "high": {"value": 5, "code": "a"},
                        },
                        "period": 1,
                        "periodUnit": "d",
                    }
                },
            }
        ]
    }
    with pytest.raises(ScheduleError, match="more than 400"):
        occurrences(endless, NOW, "UTC")


@pytest.mark.parametrize(
    ("language", "country", "expected", "crisis", "not_watched"),
    [
        ("hi", "IN", "hi", "14416", "चौबीसों घंटे नहीं"),
        ("kn-IN", "IN", "kn", "14416", "ಇಪ್ಪತ್ತನಾಲ್ಕು ಗಂಟೆಯೂ ಅಲ್ಲ"),
        ("es", "US", "es", "988", "no las 24 horas"),
        ("en", "US", "en", "988", "not around the clock"),
        ("ta", "IN", "en", "14416", "not around the clock"),  # no Tamil text yet: English
        (None, "IN", "en", "14416", "not around the clock"),
        # as hospitals send them: ISO 639-2 codes, capitals, a v2 underscore
        ("hin", "IN", "hi", "14416", "चौबीसों घंटे नहीं"),
        ("KAN", "IN", "kn", "14416", "ಇಪ್ಪತ್ತನಾಲ್ಕು ಗಂಟೆಯೂ ಅಲ್ಲ"),
        ("spa", "US", "es", "988", "no las 24 horas"),
        ("es_US", "US", "es", "988", "no las 24 horas"),
    ],
)
def test_the_message_is_in_the_patients_language_with_their_countrys_crisis_line(
    language: str | None, country: str, expected: str, crisis: str, not_watched: str
) -> None:
    message = compose(TEMPLATES, _patient(language), country)
    assert message.language == expected
    assert crisis in message.text and not_watched in message.text
    assert "Asha" in message.text and "{" not in message.text
    assert "STOP" in message.text


def test_a_language_given_only_by_name_is_read_as_everywhere_else() -> None:
    """A text-only PID-15 ("Kannada") reaches the patient in Kannada, not English."""
    patient = {
        **_patient(),
        "communication": [{"language": {"text": "Kannada"}, "preferred": True}],
    }
    assert compose(TEMPLATES, patient, "IN").language == "kn"


def test_no_shipped_text_names_a_diagnosis() -> None:
    words = (
        "depress",
        "schizo",
        "bipolar",
        "psych",
        "suicid",
        "disorder",
        "F3",
        "F2",
        "मनोरोग",
        "ಖಿನ್ನತೆ",
    )
    for subject, text in TEMPLATES.messages.values():
        assert not any(w.lower() in (subject + text).lower() for w in words)


def test_the_patients_ranked_address_a_configured_channel_can_use() -> None:
    patient = _patient(
        telecom=[
            {"system": "email", "value": "old@example.org", "use": "old"},
            {"system": "phone", "value": "+91 80 2222 3333", "use": "home"},
            {"system": "email", "value": "asha@example.org"},
            {"system": "phone", "value": "+91 98450 12345", "use": "mobile", "rank": 1},
        ]
    )
    assert address_of(patient, ["email", "sms"], NOW).value == "+91 98450 12345"  # type: ignore[union-attr]
    assert address_of(patient, ["email"], NOW).value == "asha@example.org"  # type: ignore[union-attr]
    assert (
        address_of(
            _patient(telecom=[{"system": "phone", "value": "1", "use": "home"}]),
            ["email", "sms"],
            NOW,
        )
        is None
    )


def test_contact_needs_the_patients_consent_and_a_denial_or_withdrawal_wins() -> None:
    yes = caring_consent("Patient/p", signed="2026-01-30")
    assert not permits_contact([], NOW)  # the default: no messages
    assert permits_contact([yes], NOW)
    assert not permits_contact([{**yes, "status": "inactive"}], NOW)
    assert not permits_contact([yes, {**yes, "provision": {"type": "deny"}}], NOW)
    ended = {**yes, "provision": {"type": "permit", "period": {"end": "2026-02-28"}}}
    assert not permits_contact([ended], NOW)
    other = {**yes, "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}]}
    assert not permits_contact([other], NOW)  # a consent to something else says nothing here


@pytest.mark.parametrize("text", ["STOP", "stop", " Stop. ", "unsubscribe", "बंद", "ನಿಲ್ಲಿಸಿ", "Alto"])
def test_a_reply_of_a_stop_word_asks_to_stop(text: str) -> None:
    assert asks_to_stop({"payload": [{"contentString": text}]})


@given(st.text(max_size=200))
def test_a_reply_that_is_not_a_stop_word_never_stops_the_series(text: str) -> None:
    stripped = "".join(ch for ch in text if not ch.isspace() and ch not in ".!।").upper()
    stop_words = {
        "STOP",
        "STOPALL",
        "UNSUBSCRIBE",
        "CANCEL",
        "END",
        "QUIT",
        "बंद",
        "रोकें",
        "ನಿಲ್ಲಿಸಿ",
        "ALTO",
        "PARAR",
        "BAJA",
    }
    assert asks_to_stop({"payload": [{"contentString": text}]}) == (stripped in stop_words)


def test_i_am_not_stopping_my_medication_is_a_reply_not_a_stop() -> None:
    assert not asks_to_stop({"payload": [{"contentString": "I won't stop taking my tablets"}]})
    coded = {
        "reasonCode": [
            {
                "coding": [
                    {
                        "system": "http://fhir-gateway.org/fhir/CodeSystem/caring-contacts",
                        "code": "stop",
                    }
                ]
            }
        ]
    }
    assert asks_to_stop(coded)


_UNIT_DAYS = {"d": 1, "wk": 7, "mo": 28, "a": 365}  # the shortest length of each unit


@given(
    low=st.integers(0, 60),
    span=st.integers(0, 400),
    period=st.integers(1, 30),
    unit=st.sampled_from(["d", "wk", "mo"]),
    hour=st.integers(0, 23),
    zone=st.sampled_from(["UTC", "Asia/Kolkata", "America/Chicago"]),
    day=st.datetimes(datetime(2025, 1, 1), datetime(2027, 12, 31), timezones=st.just(UTC)),
)
def test_any_readable_schedule_stays_within_its_bounds_at_its_time_of_day(
    low: int, span: int, period: int, unit: str, hour: int, zone: str, day: datetime
) -> None:
    repeat = {
        "boundsRange": {
            "low": {"value": low, "code": "d"},
            "high": {"value": low + span, "code": "d"},
        },
        "period": period,
        "periodUnit": unit,
        "timeOfDay": [f"{hour:02d}:00:00"],
    }
    try:
        when = occurrences({"action": [{"timingTiming": {"repeat": repeat}}]}, day, zone)
    except ScheduleError as exc:
        assert "more than 400" in str(exc)
        return
    tz = ZoneInfo(zone)
    day0 = day.astimezone(tz).date()
    local = [w.astimezone(tz) for w in when]
    assert when == sorted(set(when)) and 1 <= len(when) <= 400
    assert all(low <= (d.date() - day0).days <= low + span for d in local)
    assert {d.hour for d in local} <= {hour, (hour + 1) % 24}  # a DST gap moves an hour on
    assert len(when) <= span // (period * _UNIT_DAYS[unit]) + 1
