"""Shared pieces of the monitor tests: St Mary's (America/Chicago) sends HL7 v2 through the real
intake; the clock is the test's. Jane Doe (MRN100) is discharged from psychiatry on 2025-03-10 at
14:00 local time (CDT, UTC-5): day 0 is 10 March, day 7 is 17 March, day 30 is 9 April."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from careplan_helpers import Gateway, adt, make_gateway, segment
from workflow_helpers import ManualClock

from fhir_gateway.monitors import MONITOR_FLAGS
from fhir_gateway.store.db import Database

CHICAGO = ZoneInfo("America/Chicago")
DISCHARGED = "20250310140000"


def local(text: str) -> datetime:
    """``20250310140000`` (St Mary's local time) as an aware UTC instant."""
    return datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=CHICAGO).astimezone(UTC)


def visit(
    event: str,
    patient_class: str,
    *,
    when: str,
    control: str,
    visit_no: str = "V200",
    mrn: str = "MRN100",
    service: str = "PSY",
    start: str = "",
    end: str = "",
) -> bytes:
    """An ADT for a new visit: A01/A06 (PV1-2 I), A04 (E or O), A11 or A03 of that visit."""
    msh = f"MSH|^~\\&|EPIC|STMARYS^1.2.3^ISO|GW|GW|{when}||ADT^{event}^ADT_A01|{control}|P|2.5.1"
    evn = segment("EVN", {1: event, 2: when})
    pid = segment(
        "PID", {1: "1", 3: f"{mrn}^^^STMARYS&1.2.3&ISO^MR", 5: "Doe^Jane^Q", 7: "19850214", 8: "F"}
    )
    pv1 = segment(
        "PV1",
        {
            1: "1",
            2: patient_class,
            3: f"{service}^101^A^STMARYS",
            10: service,
            19: f"{visit_no}^^^STMARYS^VN",
            36: "01" if end else "",
            44: start or when,
            45: end,
        },
    )
    return "\r".join([msh, evn, pid, pv1]).encode()


class Monitored:
    """A gateway plus its clock; ``at(local_time)`` moves the clock to a St Mary's local time."""

    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway
        self.clock = ManualClock(local(DISCHARGED))

    def at(self, when: str) -> None:
        self.clock.now = local(when)

    def send(self, raw: bytes, when: str | None = None) -> None:
        if when:
            self.at(when)
        self.gw.send(raw)

    def discharge(self, **kwargs: Any) -> dict[str, Any]:
        self.send(adt(**{"discharged": DISCHARGED, **kwargs}), kwargs.get("discharged", DISCHARGED))
        return self.plan()

    def plan(self) -> dict[str, Any]:
        return self.gw.plan()

    def flags(self, code: str | None = None) -> list[dict[str, Any]]:
        params = [("_tag", f"{MONITOR_FLAGS}|{code}")] if code else []
        return self.gw.all("Flag", *params)

    def communications(self, code: str) -> list[dict[str, Any]]:
        return [
            c
            for c in self.gw.all("Communication")
            if any(
                cd.get("code") == code
                for cat in c.get("category", [])
                for cd in cat.get("coding", [])
            )
        ]

    def patient(self) -> str:
        return f"Patient/{self.gw.all('Patient')[0]['id']}"


@pytest.fixture
def monitored(database: Database, database_url: str) -> Iterator[Monitored]:
    for gateway in make_gateway(database, database_url, "auto"):
        yield Monitored(gateway)


@pytest.fixture
def reviewed(database: Database, database_url: str) -> Iterator[Monitored]:
    for gateway in make_gateway(database, database_url, "review"):
        yield Monitored(gateway)
