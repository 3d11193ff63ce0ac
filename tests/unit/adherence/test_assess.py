"""From dispenses, administrations and orders (FHIR as pharmacies send them) to PDC per class,
late refills, missed injections and unknown supplies. Pure: orders resolved from a dict."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from fhir_gateway.adherence import (
    HospitalStay,
    PdcWindow,
    assess,
    daily_dose,
    days_supply,
    load_catalog,
)

RX = "http://www.nlm.nih.gov/research/umls/rxnorm"
ZONE = ZoneInfo("America/Chicago")
CATALOG = load_catalog()


def order(
    oid: str, dose: float, unit: str, *, frequency: int = 1, status: str = "active", **timing: Any
) -> dict[str, Any]:
    repeat = timing or {"frequency": frequency, "period": 1, "periodUnit": "d"}
    return {
        "resourceType": "MedicationRequest",
        "id": oid,
        "status": status,
        "intent": "order",
        "dosageInstruction": [
            {
                "timing": {"repeat": repeat},
                "doseAndRate": [{"doseQuantity": {"value": dose, "unit": unit}}],
            }
        ],
    }


def dispense(
    did: str,
    when: date,
    *,
    text: str = "quetiapine 100 MG Oral Tablet",
    days: int | None = 30,
    quantity: float | None = None,
    unit: str = "TAB",
    prescription: str | None = None,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "resourceType": "MedicationDispense",
        "id": did,
        "status": "completed",
        "medicationCodeableConcept": {"text": text},
        "subject": {"reference": "Patient/p"},
        "whenHandedOver": f"{when.isoformat()}T10:30:00-06:00",
    }
    if days is not None:
        doc["daysSupply"] = {
            "value": days,
            "unit": "day",
            "system": "http://unitsofmeasure.org",
            "code": "d",
        }
    if quantity is not None:
        doc["quantity"] = {"value": quantity, "unit": unit}
    if prescription:
        doc["authorizingPrescription"] = [{"reference": f"MedicationRequest/{prescription}"}]
    return doc


def administration(aid: str, when: date, text: str, request: str | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "resourceType": "MedicationAdministration",
        "id": aid,
        "status": "completed",
        "medicationCodeableConcept": {"text": text},
        "subject": {"reference": "Patient/p"},
        "effectiveDateTime": f"{when.isoformat()}T09:00:00-06:00",
    }
    if request:
        doc["request"] = {"reference": f"MedicationRequest/{request}"}
    return doc


def run(
    today: date,
    dispenses: list[dict[str, Any]] = (),  # type: ignore[assignment]
    administrations: list[dict[str, Any]] = (),  # type: ignore[assignment]
    orders: list[dict[str, Any]] = (),  # type: ignore[assignment]
    stays: list[HospitalStay] = (),  # type: ignore[assignment]
    grace: int = 7,
):  # type: ignore[no-untyped-def]
    known = {f"MedicationRequest/{o['id']}": o for o in orders}
    window = PdcWindow(today - timedelta(days=179), today, grace)
    return assess(
        CATALOG, list(dispenses), list(administrations), list(stays), window, ZONE, known.get
    )


TODAY = date(2026, 6, 30)


# -- days' supply ---------------------------------------------------------------------------------


def test_days_supply_comes_from_the_dispense_when_sent():
    assert days_supply(dispense("a", TODAY, days=28), None).days == 28


@pytest.mark.parametrize(
    ("request_", "quantity", "unit", "days"),
    [
        (order("o", 2, "TAB"), 60, "TAB", 30),  # 2 tablets a day
        (order("o", 1, "tablet", frequency=2), 60, "TAB", 30),  # twice a day, words differ
        (order("o", 1, "{tbl}", frequency=3), 45, "tablets", 15),
        (order("o", 1, "CAP", frequency=1, period=12, periodUnit="h"), 28, "capsule", 14),
        (order("o", 10, "mL"), 300, "mL", 30),  # methadone 10 mg/mL oral solution, 10 mL a day
    ],
)
def test_days_supply_is_the_amount_divided_by_the_orders_daily_dose(request_, quantity, unit, days):
    supplied = days_supply(dispense("a", TODAY, days=None, quantity=quantity, unit=unit), request_)
    assert supplied.days == days


def test_a_bid_timing_code_is_twice_a_day():
    request = order("o", 1, "TAB")
    request["dosageInstruction"][0]["timing"] = {"code": {"coding": [{"code": "BID"}]}}
    assert daily_dose(request) == (2.0, "tablet")


@pytest.mark.parametrize(
    ("request_", "quantity", "missing"),
    [
        (None, 60, "no authorizing prescription gives the daily dose"),
        (order("o", 2, "TAB"), None, "neither days' supply nor the quantity dispensed was sent"),
        (order("o", 100, "mg"), 60, "the order's dose is in mg while the dispense counts tablet"),
        (
            {"resourceType": "MedicationRequest", "id": "o"},
            60,
            "the order has no dosage instructions",
        ),
    ],
)
def test_an_unknown_supply_says_what_is_missing(request_, quantity, missing):
    supplied = days_supply(dispense("a", TODAY, days=None, quantity=quantity), request_)
    assert supplied.days is None
    assert missing in supplied.missing


def test_an_as_needed_order_gives_no_daily_dose():
    request = order("o", 1, "TAB")
    request["dosageInstruction"][0]["asNeededBoolean"] = True
    assert "as needed" in str(daily_dose(request))


# -- classes --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("concept", "class_id"),
    [
        ({"coding": [{"system": RX, "code": "312940"}]}, "antidepressants"),  # SCD via the table
        ({"coding": [{"system": RX, "code": "51272"}]}, "antipsychotics"),  # ingredient
        ({"text": "Lithium Carbonate 300 MG Oral Capsule"}, "mood-stabilisers"),  # by name
        (
            {"coding": [{"system": "http://www.whocc.no/atc", "code": "N05AN01"}]},
            "mood-stabilisers",
        ),
        ({"coding": [{"system": "http://www.whocc.no/atc", "code": "N05AH04"}]}, "antipsychotics"),
        (
            {"coding": [{"system": "http://www.whocc.no/atc", "code": "N07BC02"}]},
            "substance-use-disorder-medications",
        ),
        (
            {"text": "buprenorphine 8 MG / naloxone 2 MG Sublingual Film"},
            "substance-use-disorder-medications",
        ),
    ],
)
def test_a_medication_falls_in_its_class(concept, class_id):
    med = CATALOG.medicine(concept)
    assert med.med_class is not None and med.med_class.id == class_id


def test_lithium_is_a_mood_stabiliser_not_an_antipsychotic_and_lisinopril_is_in_no_class():
    atc = {"coding": [{"system": "http://www.whocc.no/atc", "code": "N05AN01"}]}
    assert not CATALOG.by_id("antipsychotics").has_code("http://www.whocc.no/atc", "N05AN01")  # type: ignore[union-attr]
    assert CATALOG.medicine(atc).med_class.id == "mood-stabilisers"  # type: ignore[union-attr]
    assert CATALOG.medicine({"text": "lisinopril 10 MG Oral Tablet"}).med_class is None


def test_a_three_monthly_injection_is_not_read_as_a_monthly_one():
    trinza = CATALOG.medicine({"text": "paliperidone palmitate 546 MG [Invega Trinza]"})
    sustenna = CATALOG.medicine({"text": "paliperidone palmitate 156 MG/ML [Invega Sustenna]"})
    assert trinza.injectable is not None and trinza.injectable.interval == 84
    assert sustenna.injectable is not None and sustenna.injectable.interval == 28
    assert sustenna.med_class is not None and sustenna.med_class.id == "antipsychotics"


# -- assessments ----------------------------------------------------------------------------------

SUSTENNA = "paliperidone palmitate 156 MG/ML Prefilled Syringe [Invega Sustenna]"


def test_monthly_injections_on_time_are_full_cover_and_no_missed_injection():
    shots = [administration(f"s{i}", TODAY - timedelta(days=28 * i), SUSTENNA) for i in range(6)]
    found = run(TODAY, administrations=shots)
    result = found.classes["antipsychotics"]
    assert result.coverage is not None and result.coverage.pdc == 1.0
    assert [m.overdue for m in found.injections] == [False]
    assert result.late_days == 0  # injections never make a refill late


def test_a_missed_injection_is_raised_only_after_due_date_plus_grace():
    given = date(2026, 5, 1)  # due 29 May, grace 7 days: latest 5 June
    shots = [administration(f"s{i}", given - timedelta(days=28 * i), SUSTENNA) for i in range(5)]
    assert [m.overdue for m in run(date(2026, 6, 5), administrations=shots).injections] == [False]
    [missed] = run(date(2026, 6, 6), administrations=shots).injections
    assert missed.overdue and missed.due == date(2026, 5, 29)
    # the PDC has hardly moved yet: the missed injection is raised sooner than a PDC drop
    pdc = run(date(2026, 6, 6), administrations=shots).classes["antipsychotics"].coverage.pdc  # type: ignore[union-attr]
    assert pdc is not None and pdc >= 0.8


def test_a_stopped_injectable_order_is_not_a_missed_injection():
    stopped = order("lai", 1, "syringe", status="stopped", period=28, periodUnit="d")
    shots = [administration("s1", date(2026, 4, 1), SUSTENNA, request="lai")]
    [missed] = run(TODAY, administrations=shots, orders=[stopped]).injections
    assert not missed.overdue


def test_methadone_dosed_at_the_clinic_counts_from_administrations():
    doses = [
        administration(
            f"m{i}", TODAY - timedelta(days=i), "methadone hydrochloride 10 MG/ML Oral Solution"
        )
        for i in range(60)
    ]
    result = run(TODAY, administrations=doses).classes["substance-use-disorder-medications"]
    assert result.coverage is not None and result.coverage.pdc == 1.0
    assert result.late_days == 0


def test_a_refill_is_late_only_after_the_configured_days():
    # 30 days from 1 May: supply covers 1–30 May; with 7 days' grace, late on 7 June (8 days)
    fills = [dispense("d1", date(2026, 5, 1))]
    assert run(date(2026, 6, 6), dispenses=fills).classes["antipsychotics"].late_days == 0
    assert run(date(2026, 6, 7), dispenses=fills).classes["antipsychotics"].late_days == 8
    refilled = [*fills, dispense("d2", date(2026, 6, 7))]
    assert run(date(2026, 6, 7), dispenses=refilled).classes["antipsychotics"].late_days == 0


def test_no_late_refill_while_in_hospital_or_after_the_order_was_stopped():
    fills = [dispense("d1", date(2026, 5, 1), prescription="q")]
    ward = [HospitalStay(date(2026, 6, 1), date(2026, 6, 30))]
    assert run(TODAY, dispenses=fills, stays=ward).classes["antipsychotics"].late_days == 0
    stopped = order("q", 1, "TAB", status="stopped")
    assert run(TODAY, dispenses=fills, orders=[stopped]).classes["antipsychotics"].late_days == 0


def test_an_unknown_supply_gives_no_pdc_for_its_class_and_says_why():
    fills = [
        dispense("d1", date(2026, 5, 1)),
        dispense("d2", date(2026, 6, 1), days=None, quantity=30, prescription="prn"),
    ]
    prn = order("prn", 1, "TAB")
    prn["dosageInstruction"][0]["asNeededBoolean"] = True
    found = run(TODAY, dispenses=fills, orders=[prn])
    [unknown] = found.unknown
    assert unknown.dispense["id"] == "d2" and "as needed" in unknown.missing
    result = found.classes["antipsychotics"]
    assert [u.dispense["id"] for u in result.unknown] == ["d2"]
    assert result.late_days == 0  # a refill came, even though its supply is unknown


def test_a_users_folder_adds_an_injectable_and_a_broken_file_is_left_out(tmp_path):
    aristada = {
        "resourceType": "ActivityDefinition",
        "id": "lai-aripiprazole-lauroxil",
        "extension": [
            {
                "url": "http://fhir-gateway.org/fhir/StructureDefinition/medication-class",
                "valueCanonical": "http://fhir-gateway.org/fhir/ValueSet/antipsychotics",
            },
            {
                "url": "http://fhir-gateway.org/fhir/StructureDefinition/medication-name",
                "valueString": "Aristada",
            },
        ],
        "status": "active",
        "productCodeableConcept": {"text": "aripiprazole lauroxil"},
        "dosage": [{"timing": {"repeat": {"period": 56, "periodMax": 70, "periodUnit": "d"}}}],
    }
    (tmp_path / "ActivityDefinition-lai-aripiprazole-lauroxil.json").write_text(
        json.dumps(aristada)
    )
    (tmp_path / "broken.json").write_text("{not json")
    catalog = load_catalog(str(tmp_path))
    med = catalog.medicine({"text": "aripiprazole lauroxil 882 MG [Aristada]"})
    assert med.injectable is not None and (med.injectable.interval, med.injectable.grace) == (
        56,
        14,
    )
    assert med.med_class is not None and med.med_class.id == "antipsychotics"
    assert len(catalog.classes) == len(CATALOG.classes)  # the shipped ones are all still there


def test_a_contained_or_referenced_medication_is_read_for_its_code():
    contained = dispense("c1", date(2026, 6, 1))
    del contained["medicationCodeableConcept"]
    contained["contained"] = [
        {
            "resourceType": "Medication",
            "id": "m",
            "code": {"coding": [{"system": RX, "code": "312940"}]},
        }
    ]
    contained["medicationReference"] = {"reference": "#m"}
    stored = {
        **contained,
        "id": "c2",
        "contained": [],
        "medicationReference": {"reference": "Medication/lith"},
    }
    lithium = {
        "resourceType": "Medication",
        "id": "lith",
        "code": {"text": "lithium carbonate 300 MG Oral Capsule"},
    }
    found = assess(
        CATALOG,
        [contained, stored],
        [],
        [],
        PdcWindow(TODAY - timedelta(days=179), TODAY, 7),
        ZONE,
        {"Medication/lith": lithium}.get,
    )
    assert sorted(found.classes) == ["antidepressants", "mood-stabilisers"]
