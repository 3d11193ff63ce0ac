"""Mental Healthcare Act 2017: which senders are MHCA facilities, and the nominated representative
the gateway proposes (s14(4), s15) without ever appointing one."""

from __future__ import annotations

import copy
from datetime import date
from typing import Any

from fhir_gateway import privacy
from fhir_gateway.privacy import (
    MHCA_SYSTEM,
    is_mhca_sender,
    is_part2_sender,
    nominated_representative,
    propose_representative,
)
from fhir_gateway.settings import Settings

ON = date(2026, 11, 27)
V3 = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
V2 = "http://terminology.hl7.org/CodeSystem/v2-0063"


def _settings(**values: object) -> Settings:
    return Settings(database_url="sqlite://", **values)  # type: ignore[arg-type]


def person(
    pid: str, *codes: tuple[str, str], born: str | None = None, **extra: Any
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "resourceType": "RelatedPerson",
        "id": pid,
        "patient": {"reference": "Patient/p"},
        "name": [{"given": [pid.title()], "family": "Gowda"}],
        "relationship": [{"coding": [{"system": s, "code": c}]} for s, c in codes],
        **extra,
    }
    if born:
        doc["birthDate"] = born
    return doc


def _proposed(
    people: list[dict[str, Any]], named: tuple[str, ...] = (), born: str = "1990-01-01"
) -> tuple[str | None, str | None, list[str]]:
    first, all_ = propose_representative(people, named, patient_birth_date=born, on=ON)
    return (
        (first.person if first else None),
        (first.basis if first else None),
        [c.person for c in all_],
    )


# -- the setting ---------------------------------------------------------------------------------


def test_indian_facilities_are_mhca_facilities_and_not_part2_senders_by_default():  # type: ignore[no-untyped-def]
    settings = _settings(sender_countries={"BMHI": "IN", "EPIC|STMARYS": "US"})
    assert is_mhca_sender(settings, "BMHIS|BMHI") and not is_part2_sender(settings, "BMHIS|BMHI")
    assert not is_mhca_sender(settings, "EPIC|STMARYS") and is_part2_sender(
        settings, "EPIC|STMARYS"
    )
    assert not is_mhca_sender(settings, None)  # unknown: the default country (US)
    assert is_mhca_sender(_settings(default_country="IN"), "ANY|WHERE")


def test_a_sender_the_mhca_list_names_is_never_a_part2_sender():  # type: ignore[no-untyped-def]
    settings = _settings(
        sender_countries={"NIMHANS": "US"}, mhca_senders=["NIMHANS"], part2_senders=["*"]
    )
    assert is_mhca_sender(settings, "HIS|NIMHANS")
    assert not is_part2_sender(settings, "HIS|NIMHANS")
    assert is_part2_sender(settings, "EPIC|STMARYS")  # '*' still holds for the others


def test_a_named_part2_program_in_india_is_not_an_mhca_facility_by_country():  # type: ignore[no-untyped-def]
    settings = _settings(sender_countries={"NIMHANS": "IN"}, part2_senders=["HIS|NIMHANS"])
    assert is_part2_sender(settings, "HIS|NIMHANS") and not is_mhca_sender(settings, "HIS|NIMHANS")


# -- the nominated representative ----------------------------------------------------------------


def test_a_recorded_representative_means_nothing_is_proposed():  # type: ignore[no-untyped-def]
    appointed = person("ravi", (V3, "BRO"), (MHCA_SYSTEM, "nominated-representative"))
    assert (
        nominated_representative([person("lakshmi", (V3, "MTH")), appointed])
        == "RelatedPerson/ravi"
    )
    assert _proposed([person("lakshmi", (V3, "MTH")), appointed]) == (None, None, [])


def test_the_person_the_advance_directive_names_comes_first():  # type: ignore[no-untyped-def]
    people = [person("lakshmi", (V3, "MTH")), person("anil", (V3, "FRND"))]
    assert _proposed(people, named=("RelatedPerson/anil",))[:2] == (
        "RelatedPerson/anil",
        "s14(4)(a)",
    )


def test_then_a_relative_closest_first_whatever_the_order_sent():  # type: ignore[no-untyped-def]
    people = [
        person("ravi", (V3, "BRO"), (V2, "BRO")),
        person("lakshmi", (V3, "MTH"), (V2, "MTH")),
        person("kavya", (V3, "SPS")),
    ]
    first, basis, order = _proposed(people)
    assert (first, basis) == ("RelatedPerson/kavya", "s14(4)(b)")
    assert order == ["RelatedPerson/kavya", "RelatedPerson/lakshmi", "RelatedPerson/ravi"]


def test_then_a_care_giver_and_never_a_minor_an_inactive_or_an_ended_relation():  # type: ignore[no-untyped-def]
    people = [
        person("son", (V3, "SON"), born="2012-05-01"),  # a minor (s14(3))
        person("sister", (V3, "SIS"), active=False),
        person("uncle", (V3, "UNCLE"), period={"end": "2025-01-01"}),
        person("meena", (V3, "FAMMEMB"), (V2, "CGV")),  # v2 care giver
    ]
    assert _proposed(people)[:3] == ("RelatedPerson/meena", "s14(4)(c)", ["RelatedPerson/meena"])


def test_board_appointments_are_candidates_only_when_recorded_and_nobody_is_invented():  # type: ignore[no-untyped-def]
    assert _proposed([person("friend", (V3, "FRND"))]) == (None, None, [])
    board = person("director", (MHCA_SYSTEM, "social-welfare-director"))
    assert _proposed([board])[:2] == ("RelatedPerson/director", "s14(4)(e)")


def test_for_a_minor_the_legal_guardian_is_proposed():  # type: ignore[no-untyped-def]
    people = [person("lakshmi", (V3, "MTH")), person("uncle", (V3, "UNCLE"), (V3, "GUARD"))]
    assert _proposed(people, born="2010-03-01")[:2] == ("RelatedPerson/uncle", "s15(1)")


def test_proposing_changes_no_one_and_confirming_adds_the_role_once():  # type: ignore[no-untyped-def]
    people = [person("lakshmi", (V3, "MTH"))]
    before = copy.deepcopy(people)
    propose_representative(people, (), patient_birth_date=None, on=ON)
    assert people == before and nominated_representative(people) is None  # never appoints
    confirmed = privacy.as_nominated_representative(people[0], "s14(4)(b)")
    assert nominated_representative([confirmed]) == "RelatedPerson/lakshmi"
    assert privacy.as_nominated_representative(confirmed, "again") is confirmed
