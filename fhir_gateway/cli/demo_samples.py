"""The demo's two invented hospitals and the discharges they send: HL7 v2 ADT^A03 dated today, with
fresh control ids and patient identifiers on every run (so every run makes new discharges).

Springfield, IL (US, America/Chicago) sends in the style of an Epic interface; Bengaluru (India,
Asia/Kolkata) in the style of an Indian hospital information system: a Kannada-speaking patient,
a PIN-code address and WHO ICD-10 diagnoses. Both hospitals are in the default settings
(``DEMO_SENDER_ZONES``, ``DEMO_SENDER_COUNTRIES``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from fhir_gateway.settings import DEMO_SENDER_COUNTRIES, DEMO_SENDER_ZONES

__all__ = ["DemoSite", "DemoDischarge", "SITES", "discharge"]


@dataclass(frozen=True, slots=True)
class DemoSite:
    key: str  # what the command line calls it
    label: str
    application: str  # MSH-3
    facility: str  # MSH-4: the key of the demo settings

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(DEMO_SENDER_ZONES[self.facility])

    @property
    def country(self) -> str:
        return DEMO_SENDER_COUNTRIES[self.facility]


@dataclass(frozen=True, slots=True)
class DemoDischarge:
    site: DemoSite
    control_id: str
    mrn: str
    visit: str
    discharged: datetime
    message: bytes


SPRINGFIELD = DemoSite("springfield", "Springfield, IL (demo)", "DEMO-EHR", "DEMO-SPRINGFIELD")
BENGALURU = DemoSite("bengaluru", "Bengaluru (demo)", "DEMO-HIS", "DEMO-BENGALURU")
SITES = (SPRINGFIELD, BENGALURU)


def _ts(value: datetime) -> str:
    return value.strftime("%Y%m%d%H%M%S%z")


def _segments(
    site: DemoSite, ids: dict[str, str], admitted: datetime, discharged: datetime
) -> list[str]:
    sent, adm, dis = _ts(discharged), _ts(admitted), _ts(discharged)
    pv1_gap = "|" * 17 + "01" + "|" * 8  # PV1-20 … PV1-44: disposition 01 (home) in PV1-36
    if site is SPRINGFIELD:
        return [
            f"MSH|^~\\&|{site.application}|{site.facility}|GW|GW|{sent}||ADT^A03^ADT_A03|{ids['control']}|P|2.5.1",
            f"EVN|A03|{sent}",
            f"PID|1||{ids['mrn']}^^^DEMOSPR^MR||Rivera^Alex^J||19900412|X|||HOMELESS^^Springfield^IL^62701^USA",
            "NK1|1|Rivera^Maria|MTH^Mother^HL70063||^PRN^PH^^^217^5550199",
            f"PV1|1|I|PSY^204^B^DEMOSPR||||4411^Okafor^Ngozi^^^Dr^MD|||PSY|||||||||{ids['visit']}^^^DEMOSPR^VN"
            + pv1_gap
            + f"{adm}|{dis}",
            "DG1|1||F32.2^Major depressive disorder, single episode, severe^I10|||F|||||||||1",
            "DG1|2||F10.20^Alcohol dependence, uncomplicated^I10|||F",
            "DG1|3||Z56.0^Unemployment, unspecified^I10|||F",
        ]
    return [
        f"MSH|^~\\&|{site.application}|{site.facility}|GW|GW|{sent}||ADT^A03^ADT_A03|{ids['control']}|P|2.5",
        f"EVN|A03|{sent}",
        f"PID|1||{ids['mrn']}^^^DEMOBLR^MR||Gowda^Kavya||19960823|F|||"
        "14 3rd Cross^Jayanagar 4th Block^Bengaluru^Karnataka^560011^IND^H||||kn^Kannada^ISO6391",
        "NK1|1|Gowda^Shanta|MTH^Mother^HL70063||^PRN^CP^^91^80^55501234",
        f"PV1|1|I|PSY^12^A^DEMOBLR||||5521^Rao^Meera^^^Dr^MD|||PSY|||||||||{ids['visit']}^^^DEMOBLR^VN"
        + pv1_gap
        + f"{adm}|{dis}",
        "DG1|1||F20.0^Paranoid schizophrenia^I10|||F|||||||||1",
        "DG1|2||Z56.0^Unemployment, unspecified^I10|||F",
    ]


def discharge(site: DemoSite, now: datetime, run: str | None = None) -> DemoDischarge:
    """A discharge from ``site`` at ``now`` (in its zone), admitted nine days before, with ids of
    its own run."""
    run = run or uuid.uuid4().hex[:8].upper()
    ids = {"control": f"{site.facility}-{run}", "mrn": f"DEMO-{run}", "visit": f"DEMO-V-{run}"}
    discharged = now.astimezone(site.zone).replace(second=0, microsecond=0)
    admitted = (discharged - timedelta(days=9)).replace(hour=10, minute=15)
    text = "\r".join(_segments(site, ids, admitted, discharged))
    return DemoDischarge(site, ids["control"], ids["mrn"], ids["visit"], discharged, text.encode())
