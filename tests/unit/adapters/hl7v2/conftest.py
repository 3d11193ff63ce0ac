from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[4]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DATA = ROOT / "tests" / "data" / "hl7v2"
MS = DATA / "microsoft-fhir-converter"


def ms_message(name: str) -> bytes:
    return (MS / "messages" / f"{name}.hl7").read_bytes()


@pytest.fixture
def ms():
    return ms_message
