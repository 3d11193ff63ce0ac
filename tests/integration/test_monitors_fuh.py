"""FUH from real discharges and visits through the intake (St Mary's, Chicago). Eight psychiatric
discharges in March 2025; day 0 is the local discharge day, 10 March unless said otherwise."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from careplan_helpers import adt
from monitor_helpers import Monitored, visit
from typer.testing import CliRunner

from fhir_gateway import monitors

MARCH = (date(2025, 3, 1), date(2025, 3, 31))


def discharge(
    m: Monitored,
    mrn: str,
    *,
    disposition: str = "01",
    discharged: str = "20250310140000",
    visit_no: str | None = None,
    admitted: str = "20250301090000",
) -> None:
    m.send(
        adt(
            control=f"D-{mrn}-{discharged}",
            mrn=mrn,
            visit=visit_no or f"V-{mrn}",
            disposition=disposition,
            admitted=admitted,
            discharged=discharged,
        ),
        discharged,
    )


def outpatient(m: Monitored, mrn: str, when: str) -> None:
    m.send(
        visit(
            "A04", "O", when=when, control=f"OP-{mrn}-{when}", mrn=mrn, visit_no=f"OP-{mrn}-{when}"
        ),
        when,
    )


def outcomes(
    m: Monitored, start: date = MARCH[0], end: date = MARCH[1]
) -> dict[str, monitors.Outcome]:
    found = m.gw.database.read(monitors.fuh_outcomes, m.gw.settings, start, end)
    mrn = {f"Patient/{p['id']}": p["identifier"][0]["value"] for p in m.gw.all("Patient")}
    return {f"{mrn[o.discharge.patient]}@{o.local_date}": o for o in found}


def complete_follow_up(m: Monitored, mrn: str, done: str) -> None:
    patient = next(p for p in m.gw.all("Patient") if p["identifier"][0]["value"] == mrn)
    plan = next(p for p in m.gw.plans() if p["subject"]["reference"] == f"Patient/{patient['id']}")
    request = m.gw.requests_of(plan)["Psychiatry follow-up visit within 7 days"]
    task = m.gw.task_of(request)
    for doc in (
        {**task, "status": "accepted"},
        {**task, "status": "completed", "executionPeriod": {"end": done}},
    ):
        current = m.gw.read(f"Task/{task['id']}")
        response = m.gw.client.put(
            f"/Task/{task['id']}",
            json={**doc, "meta": current["meta"]},
            headers={"Content-Type": "application/fhir+json"},
        )
        assert response.status_code == 200, response.text


def test_day_7_counts_for_7_days_and_day_8_only_for_30(monitored: Monitored) -> None:
    discharge(monitored, "MRN100")
    discharge(monitored, "MRN200")
    outpatient(
        monitored, "MRN100", "20250317223000"
    )  # day 7, late evening local (already 18 March in UTC)
    outpatient(monitored, "MRN200", "20250318000500")  # day 8
    found = outcomes(monitored)
    assert found["MRN100@2025-03-10"].within(7).day == 7
    assert (
        found["MRN200@2025-03-10"].within(7) is None
        and found["MRN200@2025-03-10"].within(30).day == 8
    )


def test_a_visit_on_the_discharge_day_is_not_a_follow_up(monitored: Monitored) -> None:
    discharge(monitored, "MRN300")
    outpatient(monitored, "MRN300", "20250310180000")
    outcome = outcomes(monitored)["MRN300@2025-03-10"]
    assert outcome.follow_ups == [] and outcome.within(30) is None


def test_a_completed_follow_up_referral_counts_on_its_day(monitored: Monitored) -> None:
    discharge(monitored, "MRN700")
    monitored.at("20250315110000")
    complete_follow_up(monitored, "MRN700", "2025-03-15T10:00:00-05:00")
    outcome = outcomes(monitored)["MRN700@2025-03-10"]
    assert outcome.within(7).day == 5 and outcome.within(7).reference.startswith(
        ("Task/", "ServiceRequest/")
    )


def test_exclusions_death_hospice_and_readmission(monitored: Monitored) -> None:
    discharge(monitored, "MRN400", disposition="50")  # to hospice at home
    discharge(monitored, "MRN600")
    monitored.send(
        adt(
            "A08",
            control="D-MRN600-death",
            mrn="MRN600",
            visit="V-MRN600",
            deceased="Y",
            sent="20250401090000",
        ),
        "20250401090000",
    )
    discharge(monitored, "MRN500")
    monitored.send(
        visit("A01", "I", when="20250409200000", control="R-500", mrn="MRN500", visit_no="V-500b")
    )  # day 30
    discharge(
        monitored,
        "MRN500",
        visit_no="V-500b",
        admitted="20250409200000",
        discharged="20250415120000",
    )
    found = outcomes(monitored, date(2025, 3, 1), date(2025, 4, 30))
    assert found["MRN400@2025-03-10"].exclusion == "hospice"
    assert found["MRN600@2025-03-10"].exclusion == "death"
    assert found["MRN500@2025-03-10"].exclusion == "readmission"
    assert found["MRN500@2025-04-15"].exclusion is None  # only the last discharge counts


def test_an_admission_on_day_31_does_not_exclude_the_discharge(monitored: Monitored) -> None:
    discharge(monitored, "MRN500")
    monitored.send(
        visit("A01", "I", when="20250410080000", control="R-500", mrn="MRN500", visit_no="V-500b")
    )
    assert outcomes(monitored)["MRN500@2025-03-10"].exclusion is None


@pytest.fixture
def march(monitored: Monitored) -> Monitored:
    """Eight discharges: 100 (day 7 visit), 200 (day 8), 300 (same day only), 400 (hospice),
    500 (readmitted on day 17, discharged again on 31 March, no follow-up), 600 (died), 700 (referral
    completed on day 5)."""
    for mrn in ("MRN100", "MRN200", "MRN300", "MRN400", "MRN500", "MRN600", "MRN700"):
        discharge(monitored, mrn, disposition="50" if mrn == "MRN400" else "01")
    outpatient(monitored, "MRN100", "20250317100000")
    outpatient(monitored, "MRN200", "20250318100000")
    outpatient(monitored, "MRN300", "20250310180000")
    monitored.at("20250315110000")
    complete_follow_up(monitored, "MRN700", "2025-03-15T10:00:00-05:00")
    monitored.send(
        visit("A01", "I", when="20250327080000", control="R-500", mrn="MRN500", visit_no="V-500b")
    )
    discharge(
        monitored,
        "MRN500",
        visit_no="V-500b",
        admitted="20250327080000",
        discharged="20250331120000",
    )
    monitored.send(
        adt(
            "A08",
            control="D-600-death",
            mrn="MRN600",
            visit="V-MRN600",
            deceased="Y",
            sent="20250401090000",
        ),
        "20250401090000",
    )
    return monitored


def populations(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out = {}
    for group in report["group"]:
        counts = {p["code"]["coding"][0]["code"]: p["count"] for p in group["population"]}
        out[group["code"]["coding"][0]["code"]] = {
            **counts,
            "score": group.get("measureScore", {}).get("value"),
        }
    return out


def test_summary_measure_report_for_march(march: Monitored) -> None:
    report = march.gw.database.read(monitors.fuh_summary, march.gw.settings, *MARCH)
    assert report["type"] == "summary" and report["period"] == {
        "start": "2025-03-01",
        "end": "2025-03-31",
    }
    assert populations(report) == {
        "fuh-7": {
            "initial-population": 8,
            "denominator": 8,
            "denominator-exclusion": 3,
            "numerator": 2,
            "score": 0.4,
        },
        "fuh-30": {
            "initial-population": 8,
            "denominator": 8,
            "denominator-exclusion": 3,
            "numerator": 3,
            "score": 0.6,
        },
    }
    from careplan_helpers import validate_r4b

    validate_r4b(report)
    # from 11 March on, only MRN500's second discharge (31 March) is in the period
    later = march.gw.database.read(
        monitors.fuh_summary, march.gw.settings, date(2025, 3, 11), date(2025, 3, 31)
    )
    assert populations(later)["fuh-30"] == {
        "initial-population": 1,
        "denominator": 1,
        "denominator-exclusion": 0,
        "numerator": 0,
        "score": 0.0,
    }


def test_evaluate_measure_operation_and_report_command(march: Monitored, monkeypatch: Any) -> None:
    client = march.gw.client
    summary = client.get(
        "/Measure/fuh/$evaluate-measure?periodStart=2025-03-01&periodEnd=2025-03-31"
    )
    assert summary.status_code == 200 and populations(summary.json())["fuh-7"]["numerator"] == 2
    patient = next(p for p in march.gw.all("Patient") if p["identifier"][0]["value"] == "MRN200")
    one = client.get(
        f"/Measure/fuh/$evaluate-measure?periodStart=2025-03-01&periodEnd=2025-03-31"
        f"&subject=Patient/{patient['id']}"
    ).json()
    assert one["type"] == "individual" and one["subject"]["reference"] == f"Patient/{patient['id']}"
    assert {k: v["numerator"] for k, v in populations(one).items()} == {"fuh-7": 0, "fuh-30": 1}
    assert client.get("/Measure/fuh").json()["url"] == "http://fhir-gateway.org/fhir/Measure/fuh"
    bad = client.get("/Measure/fuh/$evaluate-measure?periodStart=2025-03-31&periodEnd=2025-03-01")
    assert bad.status_code == 400 and bad.json()["resourceType"] == "OperationOutcome"
    _report_command_prints_and_stores(march, monkeypatch)


def _report_command_prints_and_stores(march: Monitored, monkeypatch: Any) -> None:
    from fhir_gateway.cli import app
    from fhir_gateway.settings import get_settings

    monkeypatch.setenv("FHIR_GATEWAY_DATABASE_URL", march.gw.settings.database_url)
    monkeypatch.setenv("FHIR_GATEWAY_SENDER_ZONES", '{"STMARYS": "America/Chicago"}')
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(
            app, ["report", "fuh", "--from", "2025-03-01", "--to", "2025-03-31", "--store"]
        )
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "fuh-7   2/5 eligible (3 excluded): 40.0 %" in result.output
    assert "fuh-30  3/5 eligible (3 excluded): 60.0 %" in result.output
    stored = march.gw.all("MeasureReport")
    assert sorted(r["type"] for r in stored) == ["individual"] * 7 + ["summary"]
