"""Fixtures shared by the integration tests' helper modules, registered once here."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from intake_helpers import intake, mllp_factory, recorded_discharges  # noqa: E402,F401  (fixtures)
