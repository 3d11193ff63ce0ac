"""Shared helpers for the HL7 v2 adapter tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[4]
DATA = ROOT / "tests" / "data" / "hl7v2"
MS = DATA / "microsoft-fhir-converter"


def ms_message(name: str) -> bytes:
    return (MS / "messages" / f"{name}.hl7").read_bytes()


MSH = "MSH|^~\\&|APP|FAC^1.2.3^ISO|GW|GWFAC|20240102030405+0100||ADT^{event}^ADT_{event}|CTRL1|P|2.5\r"
EVN = "EVN|{event}|20240102030405+0100\r"
PID = "PID|1||MRN1^^^HOSP^MR~999^^^USSSA^SS||DOE^JANE^Q||19800102|F|||1 MAIN ST^^BOSTON^MA^02110||^PRN^PH^^1^617^5551234|||M\r"
PV1 = "PV1|1|I|W1^101^A^FAC||||1234^SMITH^JOHN^^^DR^^^NPI&2.16.840.1.113883.4.6&ISO|||PSY||||7|||||V100^^^HOSP^VN|||||||||||||||||01||||||||20240101120000+0100|{end}\r"


def adt(
    event: str = "A01", *, pid: str = PID, pv1: str | None = None, end: str = "", extra: str = ""
) -> str:
    pv1 = PV1.format(end=end) if pv1 is None else pv1
    return MSH.format(event=event) + EVN.format(event=event) + pid + pv1 + extra


def resources(bundle: dict[str, Any], rtype: str) -> list[dict[str, Any]]:
    return [
        e["resource"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == rtype and e["request"]["method"] in ("POST", "PUT")
    ]


def patch_for(bundle: dict[str, Any], rtype: str) -> list[dict[str, Any]]:
    """The operations of the first PATCH entry on ``rtype``, as dicts of their parts."""
    for e in bundle["entry"]:
        if e["request"]["method"] == "PATCH" and e["request"]["url"].startswith(rtype + "?"):
            return [
                {p["name"]: next(v for k, v in p.items() if k != "name") for p in op["part"]}
                for op in e["resource"]["parameter"]
            ]
    raise AssertionError(f"no PATCH for {rtype}")
