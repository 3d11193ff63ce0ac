"""The kit as a pytest plugin: one test item per check, against the server named on the command line.

    pytest -p conformance.pytest_plugin --fhir-base-url http://127.0.0.1:8080 [--fhir-token T]

With ``--fhir-base-url`` only the kit's checks run (other collected tests are deselected), so
pytest's own options apply: ``-k``, ``-x``, ``--junitxml``. A SHOULD-level check that fails passes
with a warning. The data the checks wrote is deleted when the session ends.
"""

from __future__ import annotations

import sys
import warnings
from typing import Any

import pytest

from conformance._registry import Check
from conformance._report import ERROR, FAIL, SKIP, WARN, CheckResult
from conformance._runner import KitSession, ServerUnusable

__all__ = ["ConformanceItem", "ConformanceWarning"]


class ConformanceWarning(UserWarning):
    """A SHOULD of the FHIR specification the server does not meet."""


class ConformanceFailure(Exception):
    def __init__(self, result: CheckResult) -> None:
        super().__init__(result.message)
        self.result = result


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("fhir-conformance", "FHIR conformance kit")
    group.addoption(
        "--fhir-base-url", default=None, help="FHIR base URL to run the conformance kit against"
    )
    group.addoption("--fhir-token", default=None, help="bearer token for the FHIR server")
    group.addoption(
        "--fhir-race",
        type=int,
        default=20,
        help="concurrent creates in the conditional-create race",
    )


class ConformanceItem(pytest.Item):
    def __init__(self, *, kit: KitSession, check: Check, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kit = kit
        self.check = check

    def runtest(self) -> None:
        result = self.kit.run(self.check)
        if result.status == SKIP:
            pytest.skip(result.message)
        if result.status == WARN:
            warnings.warn(ConformanceWarning(f"{result.id}: {result.message}"), stacklevel=1)
        if result.status in (FAIL, ERROR):
            raise ConformanceFailure(result)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ConformanceFailure):
            result = excinfo.value.result
            return f"{result.status} {result.id} — {result.title}\n{result.message}"
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[str, int | None, str]:
        return self.kit.base_url, None, f"{self.check.id}: {self.check.title}"


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    base_url = config.getoption("fhir_base_url")
    if not base_url:
        return
    try:
        kit = KitSession(
            base_url, token=config.getoption("fhir_token"), race_size=config.getoption("fhir_race")
        )
    except ServerUnusable as exc:
        raise pytest.UsageError(str(exc)) from exc

    def close_kit() -> None:
        left = kit.close()  # what the run created and could not delete
        if left:
            print(f"conformance kit could not delete: {', '.join(left[:10])}", file=sys.stderr)

    config.add_cleanup(close_kit)
    if items:
        config.hook.pytest_deselected(items=list(items))
    items[:] = [
        ConformanceItem.from_parent(session, name=check.id, kit=kit, check=check)
        for check in kit.checks()
    ]
