"""ABDM identifiers as they arrive: ABHA numbers (14 digits), ABHA addresses, HFR ids."""

from __future__ import annotations

import pytest

from adapters.abdm import AbdmSystems, abha_address, abha_number, hfr_id


@pytest.mark.parametrize(
    "sent", ["91-4410-2288-6631", "91441022886631", "9144 1022 8866 31", " 91-4410-22886631 "]
)
def test_an_abha_number_in_any_grouping_is_kept_in_the_igs_form(sent):  # type: ignore[no-untyped-def]
    assert abha_number(sent) == "91-4410-2288-6631"


@pytest.mark.parametrize(
    "sent", ["91-4410-2288-663", "914410228866311", "91-4410-2288-663X", "٩١٤٤١٠٢٢٨٨٦٦٣١", ""]
)
def test_anything_but_14_digits_is_no_abha_number(sent):  # type: ignore[no-untyped-def]
    assert abha_number(sent) is None


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("Suresh.Kumar@ABDM", "suresh.kumar@abdm"),
        ("meena_g@sbx", "meena_g@sbx"),
        ("91441022886631@abdm", "91441022886631@abdm"),  # the default address of an ABHA number
        ("ravi1988@ndhm", "ravi1988@ndhm"),  # made before the rename
    ],
)
def test_abha_addresses(sent, kept):  # type: ignore[no-untyped-def]
    assert abha_address(sent) == kept


@pytest.mark.parametrize(
    "sent",
    [
        "abc@abdm",
        "1suresh@abdm",
        ".suresh@abdm",
        "suresh.@abdm",
        "su..resh@abdm",
        "suresh@gmail.com",
        "suresh",
    ],
)
def test_what_is_no_abha_address(sent):  # type: ignore[no-untyped-def]
    assert abha_address(sent) is None


def test_hfr_ids_and_the_systems_they_go_under():  # type: ignore[no-untyped-def]
    assert hfr_id("in2910004512") == "IN2910004512"
    assert hfr_id("IN291000451") is None and hfr_id("2910004512") is None
    systems = AbdmSystems()
    assert systems.abha("91441022886631") == ("https://healthid.ndhm.gov.in", "91-4410-2288-6631")
    assert systems.abha("Suresh.Kumar@abdm") == (systems.abha_address, "suresh.kumar@abdm")
    assert systems.abha("UHID26001234") is None
    assert systems.check("https://facility.ndhm.gov.in", "IN2910004512") == "IN2910004512"
    assert systems.check("urn:oid:1.2.3", "anything") == "anything"
