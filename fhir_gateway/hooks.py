"""The rules that ride on resource writes: one ``Rules`` object per app, with named, ordered hook
points, built in the composition root (``app.build_rules``) and read from the session a write runs
in. Nothing here is process-wide: two apps in one process each have their own rules.

The hook points, in the order a write meets them:

* ``before_write`` (a *check*, per resource type or every type): runs before a create, update,
  patch or delete is stored; it may refuse the change (raise a GatewayError, e.g. BusinessRule for
  an illegal Task transition) or return warnings the response carries in an OperationOutcome.
* ``after_write`` (a *consequence*, per type or every type): runs after the change is stored, in
  the same transaction (a completed Task completes its ServiceRequest; a finished inpatient
  Encounter is a discharge). A *batch* consequence (``after_write_batch``) takes the writes of its
  type that were stored together (``run_consequences_many``: a care plan's Tasks, say) in one call,
  so that it reads what it needs once for all of them; a single write calls it with one.
* ``discharge``: each discharge detected in the transaction (``services.discharge``), in it.
* ``plan``: a care plan the engine drafted on a discharge, before it is stored:
  ``hook(session, drafted) -> resources`` (``careplans.DraftedPlan``), activities a rule adds to it
  (the measurement schedule's Tasks), stored with the plan in its one write and named in its
  ``activity``, rather than stored after it in a second version of the plan.
* ``message_applied``: each intake message, after its Bundle and its discharges, in its transaction.
* ``before_commit``, ``after_commit``, ``after_rollback``: the session's transaction ends.
* ``after_soft_rollback``: any rollback, a savepoint's included: ``hook(session, transaction)``
  (what a rolled-back savepoint wrote is forgotten, ``transaction.nested``).
* ``scheduled``: the jobs the scheduled monitor run calls, by name.

Within a point rules run in registration order (for a type: the every-type rules first), unless
registered ``first=True`` (what the others build on, such as the consent grants every later rule's
visibility check reads). Every rule has a name (its module-qualified function name) so that
``fhir-gateway rules`` and ``GET /_rules`` can list what runs, in order.

Wiring: the ``Database`` the composition root builds carries the app's rules (``use_rules``);
every session it opens has them in ``session.info`` (``rules_of``) and its transaction events are
dispatched to them, so the write path (``services.resources``, the intake) needs no global.
Registering a function twice at the same point and type is a no-op.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from fhir_gateway.context import Caller
from fhir_gateway.errors import Issue
from fhir_gateway.settings import Settings, get_settings
from fhir_gateway.store.db import RULES
from fhir_gateway.store.repository import StoredResource

__all__ = [
    "WriteEvent",
    "Check",
    "Consequence",
    "BatchConsequence",
    "Written",
    "SessionHook",
    "POINTS",
    "RuleEntry",
    "Rules",
    "rules_of",
    "settings_of",
    "run_checks",
    "run_consequences",
    "run_consequences_many",
]


@dataclass(frozen=True, slots=True)
class WriteEvent:
    session: Session
    caller: Caller
    res_type: str
    interaction: str  # create | update | patch | delete
    before: StoredResource | None  # the current version, None for a create (or a deleted one)
    after: dict[str, Any] | None  # the proposed content, None for a delete
    if_match: int | None = None  # the version the client made the change conditional on (If-Match)


Check = Callable[[WriteEvent], list[Issue] | None]
Consequence = Callable[[WriteEvent, StoredResource | None], None]
Written = tuple[WriteEvent, StoredResource | None]  # a write and what it stored (None: nothing)
BatchConsequence = Callable[[list[Written]], None]
SessionHook = Callable[[Session], None]

POINTS = (
    "before_write",
    "after_write",
    "discharge",
    "plan",
    "message_applied",
    "before_commit",
    "after_commit",
    "after_rollback",
    "after_soft_rollback",
    "scheduled",
)
_TYPED = frozenset({"before_write", "after_write"})


@dataclass(frozen=True, slots=True)
class RuleEntry:
    point: str
    name: str
    res_type: str | None  # None: every type (or a point without types)
    fn: Callable[..., Any]
    batch: bool = False  # an after_write rule called once with all the writes stored together

    def as_dict(self) -> dict[str, Any]:
        listed: dict[str, Any] = {"name": self.name, "resource_type": self.res_type}
        if self.batch:
            listed["batch"] = True
        return listed


def _name(fn: Callable[..., Any]) -> str:
    module = getattr(fn, "__module__", None) or "?"
    return f"{module}.{getattr(fn, '__qualname__', repr(fn))}"


class Rules:
    """One app's rules. ``settings`` are those the engines read while they run (``settings_of``)."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings
        self._rules: dict[str, list[RuleEntry]] = {point: [] for point in POINTS}
        self._lookup: dict[tuple[str, str | None], tuple[Callable[..., Any], ...]] = {}
        # per resource type, for the two points every write meets (one dict lookup each)
        self._checks: dict[str, tuple[Check, ...]] = {}
        self._consequences: dict[str, tuple[tuple[Callable[..., Any], bool], ...]] = {}

    # -- registering -------------------------------------------------------------------------

    def add(
        self,
        point: str,
        fn: Callable[..., Any],
        res_type: str | None = None,
        *,
        first: bool = False,
        name: str | None = None,
        batch: bool = False,
    ) -> Callable[[], None]:
        """Register ``fn`` at ``point``; returns a function that removes it again."""
        if point not in self._rules:
            raise ValueError(f"no hook point {point!r}; the points are {', '.join(POINTS)}")
        if res_type is not None and point not in _TYPED:
            raise ValueError(f"{point} rules are not per resource type")
        if batch and point != "after_write":
            raise ValueError("only after_write rules take their writes in batches")
        rules = self._rules[point]
        if not any(r.fn is fn and r.res_type == res_type for r in rules):
            rule = RuleEntry(point, name or _name(fn), res_type, fn, batch)
            rules.insert(0, rule) if first else rules.append(rule)
            self._forget()
        return lambda: self._remove(point, fn, res_type)

    def _remove(self, point: str, fn: Callable[..., Any], res_type: str | None) -> None:
        self._rules[point] = [
            r for r in self._rules[point] if not (r.fn is fn and r.res_type == res_type)
        ]
        self._forget()

    def _forget(self) -> None:
        self._lookup.clear()
        self._checks.clear()
        self._consequences.clear()

    def before_write(self, res_type: str | None, check: Check) -> None:
        self.add("before_write", check, res_type)

    def after_write(
        self, res_type: str | None, consequence: Consequence, *, first: bool = False
    ) -> None:
        self.add("after_write", consequence, res_type, first=first)

    def after_write_batch(
        self, res_type: str | None, consequence: BatchConsequence, *, first: bool = False
    ) -> None:
        """An after_write rule that takes a list of (event, stored) pairs of its type: all the
        writes stored together, or the one of a single write. It runs where a per-write rule
        registered at the same place would."""
        self.add("after_write", consequence, res_type, first=first, batch=True)

    def on_discharge(self, hook: Callable[[Session, Any], None]) -> Callable[[], None]:
        return self.add("discharge", hook)

    def on_plan(self, hook: Callable[[Session, Any], list[dict[str, Any]]]) -> None:
        self.add("plan", hook)

    def on_message_applied(self, hook: Callable[[Session, Any], None]) -> None:
        self.add("message_applied", hook)

    def on_session(self, point: str, hook: Callable[..., None]) -> None:
        """``before_commit``, ``after_commit`` or ``after_rollback``: ``hook(session)``;
        ``after_soft_rollback``: ``hook(session, transaction)``."""
        self.add(point, hook)

    def scheduled(self, name: str, job: Callable[..., int]) -> None:
        """``job(database, settings) -> patients checked`` in every scheduled monitor run; one
        per name (the latest wins)."""
        self._rules["scheduled"] = [r for r in self._rules["scheduled"] if r.name != name]
        self.add("scheduled", job, name=name)

    # -- running -----------------------------------------------------------------------------

    def hooks(self, point: str, res_type: str | None = None) -> tuple[Callable[..., Any], ...]:
        """The functions at ``point`` in order: for a type, the every-type rules, then its own.
        Computed once per (point, type) until a rule is added or removed."""
        key = (point, res_type)
        found = self._lookup.get(key)
        if found is None:
            rules = self._rules[point]
            found = tuple(r.fn for r in rules if r.res_type is None)
            if res_type is not None:
                found += tuple(r.fn for r in rules if r.res_type == res_type)
            self._lookup[key] = found
        return found

    def run_checks(self, event: WriteEvent) -> list[Issue]:
        checks = self._checks.get(event.res_type)
        if checks is None:
            checks = self._checks[event.res_type] = self.hooks("before_write", event.res_type)
        warnings: list[Issue] = []
        for fn in checks:
            warnings.extend(fn(event) or [])
        return warnings

    def run_consequences(self, event: WriteEvent, stored: StoredResource | None) -> None:
        for fn, batch in self._consequences_of(event.res_type):
            if batch:
                fn([(event, stored)])
            else:
                fn(event, stored)

    def run_consequences_many(self, written: list[Written]) -> None:
        """The after_write rules of writes stored together, per resource type (in the order the
        types first appear), rule by rule in the usual order: a per-write rule for each write in
        turn, a batch rule once with all of them."""
        by_type: dict[str, list[Written]] = {}
        for pair in written:
            by_type.setdefault(pair[0].res_type, []).append(pair)
        for res_type, pairs in by_type.items():
            for fn, batch in self._consequences_of(res_type):
                if batch:
                    fn(pairs)
                else:
                    for event, stored in pairs:
                        fn(event, stored)

    def _consequences_of(self, res_type: str) -> tuple[tuple[Callable[..., Any], bool], ...]:
        found = self._consequences.get(res_type)
        if found is None:  # as ``hooks``: the every-type rules, then the type's own
            rules = self._rules["after_write"]
            found = tuple((r.fn, r.batch) for r in rules if r.res_type is None)
            found += tuple((r.fn, r.batch) for r in rules if r.res_type == res_type)
            self._consequences[res_type] = found
        return found

    def run(self, point: str, *args: Any) -> None:
        """Every hook of an untyped point, in order (``discharge``, ``message_applied`` and the
        session points)."""
        for fn in self.hooks(point):
            fn(*args)

    def contributions(self, session: Session, drafted: Any) -> list[dict[str, Any]]:
        """What the ``plan`` rules add to a drafted care plan, in order."""
        return [doc for fn in self.hooks("plan") for doc in fn(session, drafted)]

    def session_event(self, point: str, session: Session, *args: Any) -> None:
        """What the ``Database`` calls at the end of each of its sessions' transactions."""
        for fn in self.hooks(point):
            fn(session, *args)

    def scheduled_jobs(self) -> list[tuple[str, Callable[..., int]]]:
        return [(r.name, r.fn) for r in self._rules["scheduled"]]

    # -- listing -----------------------------------------------------------------------------

    def listing(self) -> dict[str, list[dict[str, Any]]]:
        """Hook point → its rules in the order they run (for one type: every-type rules first)."""
        return {point: [r.as_dict() for r in self._ordered(point)] for point in POINTS}

    def _ordered(self, point: str) -> Iterable[RuleEntry]:
        rules = self._rules[point]
        return [*(r for r in rules if r.res_type is None), *(r for r in rules if r.res_type)]


class _NoRules(Rules):
    """The rules of a session whose Database no app gave rules to: nothing rides on its writes,
    and nothing may be added (it would ride on every such session in the process)."""

    def add(
        self, point: str, fn: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> Callable[[], None]:
        raise RuntimeError("this session's database has no rules: give it an app's (use_rules)")


_NONE = _NoRules()


def rules_of(session: Session) -> Rules:
    rules: Rules = session.info.get(RULES) or _NONE  # put there by the Database (use_rules)
    return rules


def settings_of(session: Session) -> Settings:
    """The settings of the app whose session this is (the environment's when it has none)."""
    return rules_of(session).settings or get_settings()


def run_checks(event: WriteEvent) -> list[Issue]:
    return rules_of(event.session).run_checks(event)


def run_consequences(event: WriteEvent, stored: StoredResource | None) -> None:
    rules_of(event.session).run_consequences(event, stored)


def run_consequences_many(written: list[Written]) -> None:
    if written:
        rules_of(written[0][0].session).run_consequences_many(written)
