"""Response and remission over a worked PHQ-9 series (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

from fhir_gateway.assessments import MBC, derive, totals_of
from fhir_gateway.assessments._mbc_codes import INSTRUMENTS

PHQ9, GAD7 = INSTRUMENTS
DISCHARGE = datetime(2026, 3, 2, 18, 0, tzinfo=UTC)


def _total(obs_id: str, when: str, value: int | None, status: str = "final") -> dict:
    doc = {
        "resourceType": "Observation",
        "id": obs_id,
        "status": status,
        "code": {"coding": [{"system": "http://loinc.org", "code": "44261-6"}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": when,
    }
    if value is not None:
        doc["valueInteger"] = value
    return doc


# a patient seen before the discharge (22), then 18 at baseline, 12, 8 (response), 4 (remission)
SERIES = [
    _total("t0", "2026-02-20T10:00:00Z", 22),
    _total("t3", "2026-04-01T10:00:00Z", 8),
    _total("t1", "2026-03-10T10:00:00Z", 18),
    _total("t2", "2026-03-20T10:00:00Z", 12),
    _total("t4", "2026-05-30T10:00:00Z", 4),
    _total("gap", "2026-04-10T10:00:00Z", None),  # incomplete: no total
    _total("err", "2026-04-11T10:00:00Z", 1, status="entered-in-error"),
]


def _by(derived: list[dict], kind: str) -> dict[str, dict]:
    out = {}
    for doc in derived:
        if doc["code"]["coding"][0] == {**doc["code"]["coding"][0], "system": MBC, "code": kind}:
            out[doc["derivedFrom"][-1]["reference"]] = doc
    return out


def test_the_series_uses_only_final_totals_oldest_first() -> None:
    assert [t.value for t in totals_of(SERIES)] == [22, 18, 12, 8, 4]


def test_response_is_a_drop_of_half_from_the_first_total_after_discharge() -> None:
    derived = derive(PHQ9, "Patient/p1", totals_of(SERIES), [DISCHARGE])
    response = _by(derived, "response")
    # the pre-discharge 22 is another episode; 18 is the baseline and has no response of its own
    assert "Observation/t0" not in response and "Observation/t1" not in response
    assert response["Observation/t2"]["valueBoolean"] is False  # 18 → 12: 33%
    assert response["Observation/t3"]["valueBoolean"] is True  # 18 → 8: 56%
    assert response["Observation/t4"]["valueBoolean"] is True
    assert response["Observation/t3"]["derivedFrom"] == [
        {"reference": "Observation/t1"},
        {"reference": "Observation/t3"},
    ]
    change = response["Observation/t3"]["component"][-1]["valueQuantity"]
    assert change["value"] == -55.6 and change["code"] == "%"
    assert response["Observation/t3"]["component"][0]["valueInteger"] == 8


def test_remission_is_a_total_below_five() -> None:
    derived = derive(PHQ9, "Patient/p1", totals_of(SERIES), [DISCHARGE])
    remission = _by(derived, "remission")
    assert {k: v["valueBoolean"] for k, v in remission.items()} == {
        "Observation/t0": False,
        "Observation/t1": False,
        "Observation/t2": False,
        "Observation/t3": False,
        "Observation/t4": True,
    }
    assert remission["Observation/t4"]["derivedFrom"] == [{"reference": "Observation/t4"}]


def test_exactly_half_is_a_response_and_five_is_not_remission() -> None:
    series = totals_of(
        [_total("a", "2026-03-05T00:00:00Z", 10), _total("b", "2026-03-25T00:00:00Z", 5)]
    )
    derived = derive(PHQ9, "Patient/p1", series, [DISCHARGE])
    assert _by(derived, "response")["Observation/b"]["valueBoolean"] is True
    assert _by(derived, "remission")["Observation/b"]["valueBoolean"] is False


def test_a_baseline_of_zero_has_no_response_and_ids_are_stable() -> None:
    series = totals_of(
        [_total("a", "2026-03-05T00:00:00Z", 0), _total("b", "2026-03-25T00:00:00Z", 3)]
    )
    first = derive(GAD7, "Patient/p1", series, [DISCHARGE])
    assert _by(first, "response") == {}
    assert [d["id"] for d in first] == [
        d["id"] for d in derive(GAD7, "Patient/p1", series, [DISCHARGE])
    ]
    assert first[0]["code"]["text"] == "GAD-7 remission"


def test_a_new_discharge_starts_a_new_baseline() -> None:
    later = datetime(2026, 4, 5, 0, 0, tzinfo=UTC)
    derived = derive(PHQ9, "Patient/p1", totals_of(SERIES), [DISCHARGE, later])
    response = _by(derived, "response")
    assert "Observation/t4" not in response  # t4 is the only total after the second discharge
    assert set(response) == {"Observation/t2", "Observation/t3"}


def test_what_is_derived_carries_the_labels_of_the_totals() -> None:
    psy = {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "PSY"}
    labelled = [
        {**SERIES[2], "meta": {"security": [psy]}},  # t1, the baseline
        SERIES[1],  # t3
    ]
    derived = derive(PHQ9, "Patient/p1", totals_of(labelled), [DISCHARGE])
    response = _by(derived, "response")["Observation/t3"]
    assert response["meta"]["security"] == [psy]  # from the baseline it compares against
    assert "meta" not in _by(derived, "remission")["Observation/t3"]
