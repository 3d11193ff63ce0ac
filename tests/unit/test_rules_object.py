"""The rules object: the order rules run in, per resource type, and what a session without an
app's rules does."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.orm import Session

from fhir_gateway.context import SYSTEM
from fhir_gateway.hooks import Rules, WriteEvent, rules_of


def _event(res_type: str) -> WriteEvent:
    return WriteEvent(Session(), SYSTEM, res_type, "create", None, {"resourceType": res_type})


def test_every_type_rules_run_first_then_the_types_own_and_first_goes_before_them() -> None:
    ran: list[str] = []
    rules = Rules()

    def rule(name: str) -> Any:
        def consequence(event: WriteEvent, stored: Any) -> None:
            ran.append(name)

        consequence.__qualname__ = name
        return consequence

    later, every, grants = rule("later"), rule("every"), rule("grants")
    rules.after_write("Consent", later)
    rules.after_write(None, every)
    rules.after_write("Consent", grants, first=True)
    rules.after_write("Consent", later)  # a second registration changes nothing
    rules.run_consequences(_event("Consent"), None)
    assert ran == ["every", "grants", "later"]
    ran.clear()
    rules.run_consequences(_event("Task"), None)
    assert ran == ["every"]
    names = [r["name"].rsplit(".", 1)[-1] for r in rules.listing()["after_write"]]
    assert names == ["every", "grants", "later"]


def test_a_removed_rule_no_longer_runs() -> None:
    seen: list[Any] = []
    rules = Rules()
    remove = rules.on_discharge(lambda session, context: seen.append(context))
    rules.run("discharge", None, "first")
    remove()
    rules.run("discharge", None, "second")
    assert seen == ["first"]


def test_checks_gather_warnings_and_an_unknown_point_is_refused() -> None:
    rules = Rules()
    rules.before_write("Task", lambda event: ["careful"])  # type: ignore[list-item]
    assert rules.run_checks(_event("Task")) == ["careful"]
    assert rules.run_checks(_event("Patient")) == []
    with pytest.raises(ValueError, match="no hook point"):
        rules.add("after_lunch", print)


def test_a_session_without_an_apps_rules_runs_none_and_takes_none() -> None:
    session = Session()
    assert rules_of(session).run_checks(_event("Task")) == []
    with pytest.raises(RuntimeError, match="no rules"):
        rules_of(session).after_write("Task", lambda event, stored: None)


def test_a_batch_rule_runs_once_for_writes_stored_together_and_per_write_rules_once_each() -> None:
    ran: list[tuple[str, list[str]]] = []
    rules = Rules()

    def per_write(event: WriteEvent, stored: Any) -> None:
        ran.append(("per-write", [stored]))

    def batch(written: list[tuple[WriteEvent, Any]]) -> None:
        ran.append(("batch", [stored for _event, stored in written]))

    def later(event: WriteEvent, stored: Any) -> None:
        ran.append(("later", [stored]))

    rules.after_write("Task", per_write)
    rules.after_write_batch("Task", batch)
    rules.after_write("Task", later)
    rules.after_write_batch("Goal", batch)
    written = [(_event("Task"), "t1"), (_event("Goal"), "g1"), (_event("Task"), "t2")]
    rules.run_consequences_many(written)  # type: ignore[arg-type]
    assert ran == [
        ("per-write", ["t1"]),
        ("per-write", ["t2"]),
        ("batch", ["t1", "t2"]),
        ("later", ["t1"]),
        ("later", ["t2"]),
        ("batch", ["g1"]),
    ]
    ran.clear()
    rules.run_consequences(_event("Task"), "t3")  # type: ignore[arg-type]  # a single write
    assert ran == [("per-write", ["t3"]), ("batch", ["t3"]), ("later", ["t3"])]
    listed = [
        (r["name"].rsplit(".", 1)[-1], r.get("batch")) for r in rules.listing()["after_write"]
    ]
    assert listed == [("per_write", None), ("batch", True), ("later", None), ("batch", True)]
    with pytest.raises(ValueError, match="batches"):
        rules.add("before_write", batch, "Task", batch=True)
