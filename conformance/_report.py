"""Results of a kit run, as a readable table and as JUnit XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["PASS", "FAIL", "ERROR", "WARN", "SKIP", "CheckResult", "Report"]

PASS, FAIL, ERROR, WARN, SKIP = "pass", "FAIL", "ERROR", "warn", "skip"
_FAILING = (FAIL, ERROR)


@dataclass(frozen=True, slots=True)
class CheckResult:
    id: str
    title: str
    status: str
    message: str = ""
    seconds: float = 0.0
    level: str = "must"

    @property
    def category(self) -> str:
        return self.id.split(".", 1)[0]


@dataclass(slots=True)
class Report:
    base_url: str
    results: list[CheckResult] = field(default_factory=list)
    seconds: float = 0.0
    cleanup_failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(r.status in _FAILING for r in self.results)

    @property
    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if r.status in _FAILING]

    def counts(self) -> Counter[str]:
        return Counter(r.status for r in self.results)

    def summary(self) -> str:
        counts = self.counts()
        parts = [
            f"{counts[s]} {name}"
            for s, name in (
                (PASS, "passed"),
                (FAIL, "failed"),
                (ERROR, "errors"),
                (WARN, "warnings"),
                (SKIP, "skipped"),
            )
            if counts[s]
        ]
        verdict = "CONFORMANT" if self.ok else "NOT CONFORMANT"
        return f"{verdict}: {', '.join(parts)} in {self.seconds:.1f}s against {self.base_url}"

    def table(self, *, verbose: bool = False, width: int = 100) -> str:
        """One line per check (passes folded into a per-category count unless ``verbose``)."""
        lines: list[str] = []
        passed: Counter[str] = Counter()
        for result in self.results:
            if result.status == PASS and not verbose:
                passed[result.category] += 1
                continue
            detail = result.message if result.status != PASS else result.title
            detail = " ".join(detail.split())
            room = max(20, width - 54)
            lines.append(
                f"{result.status:<6}  {result.id[:44]:<44}  {detail[:room] + ('…' if len(detail) > room else '')}"
            )
        if lines:
            lines[:0] = [
                f"{'status':<6}  {'check':<44}  detail",
                f"{'-' * 6}  {'-' * 44}  {'-' * 40}",
            ]
        if passed:
            lines.append("")
            lines.append("passed: " + ", ".join(f"{cat} {n}" for cat, n in sorted(passed.items())))
        if self.cleanup_failures:
            lines.append(f"could not delete: {', '.join(self.cleanup_failures[:10])}")
        lines.append(self.summary())
        return "\n".join(lines)

    def details(self) -> str:
        """Full messages of the failures and warnings (the table shortens them)."""
        return "\n\n".join(
            f"{r.status} {r.id} — {r.title}\n  {r.message}"
            for r in self.results
            if r.status in (*_FAILING, WARN)
        )

    def junit_xml(self) -> str:
        counts = self.counts()
        suite = ET.Element(
            "testsuite",
            name="fhir-conformance",
            tests=str(len(self.results)),
            failures=str(counts[FAIL]),
            errors=str(counts[ERROR]),
            skipped=str(counts[SKIP]),
            time=f"{self.seconds:.3f}",
        )
        ET.SubElement(
            ET.SubElement(suite, "properties"), "property", name="base_url", value=self.base_url
        )
        for result in self.results:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=f"conformance.{result.category}",
                name=result.id,
                time=f"{result.seconds:.3f}",
            )
            if result.status == FAIL:
                ET.SubElement(
                    case, "failure", message=result.message[:500]
                ).text = f"{result.title}\n{result.message}"
            elif result.status == ERROR:
                ET.SubElement(
                    case, "error", message=result.message[:500]
                ).text = f"{result.title}\n{result.message}"
            elif result.status == SKIP:
                ET.SubElement(case, "skipped", message=result.message)
            elif result.status == WARN:  # a SHOULD not met: visible, not failing
                ET.SubElement(case, "system-out").text = f"warning (SHOULD): {result.message}"
        ET.indent(suite)
        return ET.tostring(suite, encoding="unicode", xml_declaration=True)

    def write_junit(self, path: str | Path) -> None:
        Path(path).write_text(self.junit_xml(), encoding="utf-8")
