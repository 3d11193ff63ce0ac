"""Shared pieces of the intake tests: the intake over the test database, an MLLP listener on a
loopback port in a background event loop, and helpers for HL7 text and ACKs."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from adapters.mllp import ListenerConfig, MLLPListener
from fhir_gateway.services import discharge
from fhir_gateway.services.ingest import Intake
from fhir_gateway.settings import Settings
from fhir_gateway.store.db import Database
from fhir_gateway.workers.mllp import listener_config, make_handler

DATA = Path(__file__).resolve().parents[1] / "data"
MS_MESSAGES = DATA / "hl7v2" / "microsoft-fhir-converter" / "messages"
DAVINCI = DATA / "fhir" / "davinci"


def microsoft_messages() -> list[Path]:
    """The 57 Microsoft samples (not the extra time-zone one)."""
    return sorted(p for p in MS_MESSAGES.glob("*.hl7") if not p.name.startswith("timezone"))


def with_control_id(raw: bytes, control_id: str) -> bytes:
    """The message with MSH-10 replaced. The Microsoft samples all reuse MSG00001 from one
    sender, which a real sender never does: given as is, they would rightly be duplicates."""
    text = raw.decode("utf-8")
    sep = "\r" if "\r" in text.split("\n", 1)[0] else "\n"
    first, _, rest = text.partition(sep)
    fields = first.split("|")
    fields[9] = control_id
    return ("|".join(fields) + sep + rest).encode("utf-8")


def adt(
    event: str,
    control_id: str,
    *,
    mrn: str = "MRN1",
    visit: str = "V1",
    when: str = "20240101120000",
    patient_class: str = "I",
    family: str = "DOE",
    sender: str = "ADT1^GOOD",
    extra: str = "",
) -> bytes:
    app, facility = sender.split("^")
    structure = {"A03": "ADT_A03", "A40": "ADT_A39", "A08": "ADT_A01"}.get(event, "ADT_A01")
    segments = [
        f"MSH|^~\\&|{app}|{facility}|GW|GW|{when}+0000||ADT^{event}^{structure}|{control_id}|P|2.5",
        f"EVN|{event}|{when}+0000",
        f"PID|1||{mrn}^^^HOSP^MR||{family}^JOHN||19800101|M",
    ]
    if extra:
        segments.append(extra)
    if event != "A40":
        pv1 = ["PV1", "1", patient_class, "WARD^1^1"] + [""] * 42
        pv1[10] = "PSY"
        pv1[19] = f"{visit}^^^HOSP^VN"
        pv1[44] = f"{when}+0000"
        if event == "A03":
            pv1[45] = f"{when}+0000"
        segments.append("|".join(pv1).rstrip("|"))
    return "\r".join(segments).encode()


def ack_fields(ack: bytes | str) -> dict[str, str]:
    """MSA-1, MSA-2 and whether an ERR segment is present."""
    text = ack.decode() if isinstance(ack, bytes) else ack
    segments = {s.split("|", 1)[0]: s.split("|") for s in text.replace("\n", "\r").split("\r") if s}
    msa = segments.get("MSA", [])
    return {
        "code": msa[1] if len(msa) > 1 else "",
        "control_id": msa[2] if len(msa) > 2 else "",
        "err": "ERR" in segments,
        "msh": "|".join(segments.get("MSH", [])),
    }


class ListenerThread:
    """An MLLPListener running in its own event loop thread (the test talks to it over TCP)."""

    def __init__(self, intake: Intake, config: ListenerConfig) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.listener = MLLPListener(make_handler(intake, intake.settings.mllp_workers), config)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.listener.start(), self.loop).result(10)

    @property
    def port(self) -> int:
        return self.listener.port

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.listener.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def recorded_discharges(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every discharge announced during the test, whichever app's rules the session carries."""
    seen: list[Any] = []
    run = discharge.on_discharge

    def recording(session: Any, context: Any) -> None:
        seen.append(context)
        run(session, context)

    monkeypatch.setattr(discharge, "on_discharge", recording)
    return seen


@pytest.fixture
def intake(database: Database, settings: Settings) -> Intake:
    return Intake(database, settings)


@pytest.fixture
def mllp_factory(database: Database, settings: Settings) -> Iterator[Any]:
    started: list[ListenerThread] = []

    def start(intake_settings: Settings | None = None, **config: Any) -> ListenerThread:
        s = intake_settings or settings
        base = replace(listener_config(s), host="127.0.0.1", port=0, reuse_port=False)
        thread = ListenerThread(Intake(database, s), replace(base, **config))
        started.append(thread)
        return thread

    yield start
    for thread in started:
        thread.stop()
