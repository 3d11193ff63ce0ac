"""ACKs, time conversion, code maps and their override, the public surface."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hl7v2_helpers import adt, resources

import adapters.hl7v2 as h
from adapters.hl7v2 import (
    ConvertOptions,
    SenderProfile,
    build_ack,
    convert,
    to_fhir_date,
    to_fhir_datetime,
)


def _segments(ack: str) -> dict[str, list[str]]:
    return {s[:3]: s.split("|") for s in ack.strip("\r").split("\r")}


def test_ack_aa_mirrors_sender_and_echoes_control_id():
    ack = build_ack(adt(), "AA", control_id="ACK1", timestamp=datetime(2024, 1, 2, tzinfo=UTC))
    seg = _segments(ack)
    assert seg["MSH"][2:6] == ["GW", "GWFAC", "APP", "FAC^1.2.3^ISO"]
    assert seg["MSH"][8] == "ACK^A01^ACK" and seg["MSH"][9] == "ACK1" and seg["MSH"][11] == "2.5"
    assert seg["MSA"][1:3] == ["AA", "CTRL1"]
    assert "ERR" not in seg


def test_ack_ae_carries_err_with_location_and_code():
    err = h.RequiredFieldMissing("no patient identifier", segment="PID", field=3)
    seg = _segments(build_ack(adt(), error=err, control_id="X"))
    assert seg["MSA"][1] == "AE"
    assert seg["ERR"][2] == "PID^1^3" and seg["ERR"][3].startswith("101^")
    assert seg["ERR"][8] == "no patient identifier"


def test_ack_ar_for_rejected_message_and_v23_err_layout():
    text = adt().replace("|2.5\r", "|2.3\r", 1)
    seg = _segments(
        build_ack(text, error=h.UnsupportedEvent("x", segment="MSH", field=9), control_id="X")
    )
    assert seg["MSA"][1] == "AR" and seg["ERR"][1].startswith("MSH^1^9^201&")


def test_ack_for_unparseable_input_still_builds():
    seg = _segments(build_ack(b"\x00junk", error=h.NotHL7("binary"), control_id="X"))
    assert seg["MSA"][1] == "AR" and seg["MSA"][2] == ""


@pytest.mark.parametrize(
    ("hl7", "fhir"),
    [
        ("2024", "2024"),
        ("202403", "2024-03"),
        ("20240305", "2024-03-05"),
        ("2024030512", "2024-03-05T12:00:00+00:00"),
        ("202403051230", "2024-03-05T12:30:00+00:00"),
        ("20240305123045.123", "2024-03-05T12:30:45.123+00:00"),
        ("20240305123045+0215", "2024-03-05T12:30:45+02:15"),
        ("198908181126+0215", "1989-08-18T11:26:00+02:15"),
        ("20240305-0500", "2024-03-05"),  # a date alone stays a date
    ],
)
def test_datetime_precision_and_offset_kept(hl7, fhir):
    assert to_fhir_datetime(hl7) == fhir


def test_time_without_offset_takes_sender_zone_with_dst():
    assert to_fhir_datetime("20240115083000", "America/New_York") == "2024-01-15T08:30:00-05:00"
    assert to_fhir_datetime("20240715083000", "America/New_York") == "2024-07-15T08:30:00-04:00"
    opts = ConvertOptions(senders={"FAC": SenderProfile(zone="Europe/Paris")})
    text = adt().replace("20240101120000+0100", "20240101120000")
    assert (
        resources(convert(text, options=opts).bundle, "Encounter")[0]["period"]["start"]
        == "2024-01-01T12:00:00+01:00"
    )


@pytest.mark.parametrize("bad", ["20241301", "20240230", "2024010125", "abc", "20240101T1200"])
def test_invalid_dates_raise(bad):
    with pytest.raises(ValueError):
        to_fhir_datetime(bad)
    if len(bad) == 8:
        with pytest.raises(ValueError):
            to_fhir_date(bad)


def test_concept_maps_are_valid_fhir():
    from fhir.resources.R4B.conceptmap import ConceptMap

    from adapters.hl7v2._codes import builtin_mappings_dir

    paths = sorted(builtin_mappings_dir().glob("*.json"))
    assert len(paths) >= 15
    for path in paths:
        ConceptMap.model_validate(json.loads(path.read_text()))


def test_unmapped_code_keeps_original_code_and_system():
    patient = resources(convert(adt().replace("|||M\r", "|||Q\r", 1)).bundle, "Patient")[0]
    assert patient["maritalStatus"]["coding"] == [
        {"system": "http://terminology.hl7.org/CodeSystem/v2-0002", "code": "Q"}
    ]
    enc = resources(convert(adt().replace("PV1|1|I|", "PV1|1|Z|")).bundle, "Encounter")[0]
    assert enc["class"] == {"system": "http://terminology.hl7.org/CodeSystem/v2-0004", "code": "Z"}


def test_user_directory_overrides_maps(tmp_path):
    override = {
        "resourceType": "ConceptMap",
        "id": "assigning-authority",
        "status": "active",
        "group": [
            {
                "source": "http://terminology.hl7.org/CodeSystem/v2-0363",
                "target": "urn:ietf:rfc:3986",
                "element": [
                    {
                        "code": "HOSP",
                        "target": [
                            {"code": "https://hosp.example.org/mrn", "equivalence": "equivalent"}
                        ],
                    }
                ],
            }
        ],
    }
    (tmp_path / "aa.json").write_text(json.dumps(override))
    result = convert(adt(), options=ConvertOptions(mappings_dir=tmp_path))
    assert result.patient_key == "https://hosp.example.org/mrn|MRN1"
    assert convert(adt()).patient_key == "urn:fhir-gateway:hl7v2:assigning-authority:HOSP|MRN1"


def test_public_names_are_exported():
    for name in h.__all__:
        assert hasattr(h, name), name
    assert (
        callable(h.convert)
        and callable(h.split_batch)
        and callable(h.parse)
        and callable(h.build_ack)
    )


def test_result_fields():
    r = convert(adt("A03"))
    assert (r.event, r.message_control_id, r.sending_application, r.sending_facility) == (
        "A03",
        "CTRL1",
        "APP",
        "FAC",
    )
    assert r.patient_key == "urn:fhir-gateway:hl7v2:assigning-authority:HOSP|MRN1"


def test_cli_converts_folder_and_stdin(tmp_path):
    import typer
    from typer.testing import CliRunner

    from fhir_gateway.cli.convert import convert_command

    app = typer.Typer()
    app.command("convert")(convert_command)
    app.command("other")(lambda: None)
    (tmp_path / "a.hl7").write_text(adt())
    (tmp_path / "b.hl7").write_text("garbage")
    runner = CliRunner()
    res = runner.invoke(app, ["convert", str(tmp_path), "--compact", "--validate"])
    assert res.exit_code == 1 and "1 failed" in res.output
    res = runner.invoke(app, ["convert", "-", "--compact"], input=adt())
    assert res.exit_code == 0 and json.loads(res.stdout.splitlines()[-1])["type"] == "transaction"
