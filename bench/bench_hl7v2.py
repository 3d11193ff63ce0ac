"""HL7 v2 adapter throughput: our parse+map+build against hl7apy's and python-hl7's bare parse.

Run: ``python bench/bench_hl7v2.py``. Prints conversions per second for the maximal
(ADT-A03-01) and minimal (ADT-A03-02) Microsoft A03, measured in one run, as ratios.
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from adapters.hl7v2 import convert  # noqa: E402

DATA = ROOT / "tests" / "data" / "hl7v2" / "microsoft-fhir-converter" / "messages"
SAMPLES = {"maximal ADT-A03-01": "ADT-A03-01.hl7", "minimal ADT-A03-02": "ADT-A03-02.hl7"}


def _rate(fn: Callable[[], object], budget: float = 1.0) -> float:
    """Calls per second, best of three rounds of about ``budget``/3 seconds each."""
    fn()  # warm caches (code maps, hl7apy references)
    best = 0.0
    for _ in range(3):
        n, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < budget / 3:
            fn()
            n += 1
        best = max(best, n / elapsed)
    return best


def _er7(text: str) -> str:
    """hl7apy and python-hl7 want CR-separated segments and no BOM."""
    text = text.lstrip("\ufeff")
    return "\r".join(
        line for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n") if line
    )


def run(budget: float = 1.0) -> dict[str, dict[str, float]]:
    """Per sample: conversions/s of ours, parses/s of hl7apy and python-hl7, and the ratios."""
    import hl7
    from hl7apy.parser import parse_message

    warnings.simplefilter("ignore")
    out: dict[str, dict[str, float]] = {}
    for label, name in SAMPLES.items():
        text = (DATA / name).read_text(encoding="utf-8-sig")
        er7 = _er7(text)
        ours = _rate(partial(convert, text), budget)
        apy = _rate(partial(parse_message, er7, find_groups=False), budget)
        py = _rate(partial(hl7.parse, er7), budget)
        out[label] = {
            "convert_per_s": ours,
            "hl7apy_parse_per_s": apy,
            "python_hl7_parse_per_s": py,
            "vs_hl7apy": ours / apy,
            "vs_python_hl7": ours / py,
        }
    return out


def main() -> None:
    results = run()
    print(
        f"{'message':<20} {'convert/s':>10} {'hl7apy/s':>10} {'hl7/s':>10} {'x hl7apy':>9} {'x hl7':>7}"
    )
    for label, r in results.items():
        print(
            f"{label:<20} {r['convert_per_s']:>10.0f} {r['hl7apy_parse_per_s']:>10.0f} "
            f"{r['python_hl7_parse_per_s']:>10.0f} {r['vs_hl7apy']:>9.1f} {r['vs_python_hl7']:>7.2f}"
        )
    print("goal: x hl7apy >= 20 (convert vs hl7apy's parse alone), x hl7 >= 0.5 (within 2x)")


if __name__ == "__main__":
    main()
