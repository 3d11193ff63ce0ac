"""What the pages show a person instead of FHIR: names instead of references, times in the
facility's zone in words, and states in the words case managers and partners use.

    names = Names(session, caller)
    names.prefetch(["Organization/harbor", "Patient/p1"])   # one query per type, for a page
    names.of({"reference": "Organization/harbor"})          # "Harbor Counselling"
    clock = Display.for_settings(settings)
    clock.when("2026-11-28T23:59:59+00:00")                 # "Sat 28 Nov at 5:59 pm"
    clock.relative("2026-11-28T23:59:59+00:00")             # "in 3 days" / "2 hours ago"
    task_state("requested")                                  # "Waiting for the partner"

Names are read with the page's Caller, so a name the caller may not see is never shown (the
reference's own ``display``, when the sender put one there, or a neutral word takes its place);
a raw ``Type/id`` is never the answer. The facility's zone is ``default_sender_zone``: the zone the
monitors count deadlines in, so a page and a work item agree on what "today" means.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.orm import Session

from fhir_gateway import clock
from fhir_gateway.context import Caller
from fhir_gateway.errors import GatewayError
from fhir_gateway.fhir.references import Reference
from fhir_gateway.services import resources
from fhir_gateway.settings import Settings
from fhir_gateway.store import repository, visibility

__all__ = [
    "Display",
    "Names",
    "display_zone",
    "serves_several_zones",
    "human_name",
    "resource_name",
    "task_state",
    "plan_state",
    "flag_kind",
    "TASK_STATES",
    "PLAN_STATES",
    "FLAG_KINDS",
]

# -- states in words ----------------------------------------------------------------------------

TASK_STATES: dict[str, str] = {
    "draft": "Not sent yet",
    "requested": "Waiting for the partner",
    "accepted": "Accepted by the partner",
    "in-progress": "In progress",
    "on-hold": "Paused",
    "completed": "Done",
    "failed": "Could not be done",
    "rejected": "Declined by the partner",
    "cancelled": "Cancelled",
    "entered-in-error": "Entered in error",
}
PLAN_STATES: dict[str, str] = {
    "draft": "Waiting for approval",
    "active": "Active",
    "on-hold": "Paused",
    "revoked": "Declined or stopped",
    "completed": "Completed",
    "entered-in-error": "Entered in error",
    "unknown": "Unknown",
}
# the monitors' flag codes (monitors.MONITOR_FLAGS) as the worklist names them
FLAG_KINDS: dict[str, str] = {
    "crisis": "Crisis",
    "readmission": "Readmitted",
    "unassigned": "No partner",
    "late": "Sent late",
    "deadline-at-risk": "Deadline at risk",
    "overdue": "Overdue",
    "unacknowledged": "Not acknowledged",
    "past-deadline": "Past its deadline",
    "escalated": "Escalated",
    "rerouted": "Re-routed again",
    "no-encounter": "Stay not recorded",
    "suicide-risk": "Suicide risk",
    "plan-revision": "Plan revision",
}


def task_state(status: str | None) -> str:
    return TASK_STATES.get(status or "", (status or "unknown").replace("-", " ").capitalize())


def plan_state(status: str | None) -> str:
    return PLAN_STATES.get(status or "", (status or "unknown").replace("-", " ").capitalize())


def flag_kind(code: str | None) -> str:
    return FLAG_KINDS.get(code or "", (code or "alert").replace("-", " ").capitalize())


# -- names ----------------------------------------------------------------------------------------

_UNNAMED = {
    "Patient": "(no name)",
    "Practitioner": "a clinician (no name)",
    "PractitionerRole": "a clinician (no name)",
    "RelatedPerson": "a family member or contact (no name)",
    "Organization": "an organisation (no name)",
    "CareTeam": "a care team",
}


def human_name(names: list[dict[str, Any]] | None) -> str | None:
    """The first usable HumanName as a person writes it ("Ann B. Smith"), or None."""
    for name in names or []:
        if name.get("text"):
            return str(name["text"])
        parts = [*(name.get("prefix") or []), *(name.get("given") or []), name.get("family") or ""]
        if any(parts):
            return " ".join(p for p in parts if p)
    return None


def resource_name(resource: dict[str, Any] | None) -> str | None:
    """The name a person would use for a resource (Organization.name, a person's HumanName, a
    PractitionerRole's practitioner display, a CareTeam's name), or None."""
    if not resource:
        return None
    name = resource.get("name")
    if isinstance(name, str) and name:
        return name
    if isinstance(name, list):
        return human_name(name)
    for field_name in ("practitioner", "organization"):  # a PractitionerRole
        display = (resource.get(field_name) or {}).get("display")
        if display:
            return str(display)
    return None


@dataclass(slots=True)
class Names:
    """Names of referenced resources as this caller may see them, read once per page."""

    session: Session
    caller: Caller
    _seen: dict[str, dict[str, Any] | None] = field(default_factory=dict)

    def prefetch(self, references: Iterable[str | None]) -> None:
        """Read every not yet known reference: one query per resource type (a page of rows)."""
        by_type: dict[str, list[str]] = {}
        for text in references:
            ref = Reference.parse_relative(text)
            if ref is None or ref.type is None or f"{ref.type}/{ref.id}" in self._seen:
                continue
            by_type.setdefault(ref.type, []).append(ref.id)
        for res_type, ids in by_type.items():
            for res_id in ids:
                self._seen[f"{res_type}/{res_id}"] = None
            for stored in repository.read_many(self.session, res_type, list(dict.fromkeys(ids))):
                self._seen[stored.relative] = self._served(stored)

    def _served(self, stored: repository.StoredResource) -> dict[str, Any] | None:
        if stored.deleted:
            return None
        if resources.restricted(self.caller) and not visibility.is_visible(
            self.session, self.caller, stored.res_type, stored.res_id
        ):
            return None
        try:
            return resources.served(self.session, self.caller, stored).content
        except GatewayError:
            return None

    def resource(self, reference: str | dict[str, Any] | None) -> dict[str, Any] | None:
        """The copy of the referenced resource this caller may see (None: absent or hidden)."""
        text = reference.get("reference") if isinstance(reference, dict) else reference
        ref = Reference.parse_relative(text)
        if ref is None or ref.type is None:
            return None
        key = f"{ref.type}/{ref.id}"
        if key not in self._seen:
            self.prefetch([key])
        return self._seen.get(key)

    def of(self, reference: str | dict[str, Any] | None, *, missing: str | None = None) -> str:
        """The referenced resource's name; else the reference's ``display``; else ``missing`` or
        a neutral word for its type. Never ``Type/id``."""
        display = reference.get("display") if isinstance(reference, dict) else None
        text = reference.get("reference") if isinstance(reference, dict) else reference
        found = resource_name(self.resource(text))
        if found:
            return found
        if display:
            return str(display)
        if missing is not None:
            return missing
        ref = Reference.parse_relative(text)
        return _UNNAMED.get(ref.type if ref and ref.type else "", "(not named)")


# -- time in words ---------------------------------------------------------------------------------


def display_zone(settings: Settings) -> ZoneInfo:
    """The facility's zone the pages show times in (the zone the monitors count days in)."""
    try:
        return ZoneInfo(settings.default_sender_zone)
    except ZoneInfoNotFoundError:
        return ZoneInfo("UTC")


def serves_several_zones(settings: Settings) -> bool:
    """Whether the facilities this gateway serves keep different clocks (the demo's Springfield and
    Bengaluru): then no one zone is "the facility's", and a time is shown at its own offset."""
    return len({settings.default_sender_zone, *settings.sender_zones.values()}) > 1


def _parse(
    value: str | datetime | date | None, zone: ZoneInfo, own_offset: bool = False
) -> datetime | None:
    """A FHIR date, dateTime or instant as an aware time in ``zone``; a date alone is the start of
    that local day; a time without an offset is local. With ``own_offset``, a time written at a
    local offset (the engines write deadlines at their facility's) keeps it; a UTC instant (the
    server's own timestamps) is still shown in ``zone``."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.replace(tzinfo=zone)
        if own_offset and value.utcoffset():
            return value
        return value.astimezone(zone)
    if isinstance(value, date):
        return datetime.combine(value, time(0), tzinfo=zone)
    text = {4: f"{value}-01-01", 7: f"{value}-01"}.get(len(value), value)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return _parse(parsed, zone, own_offset)


_DAY = 86400
# (from how far, counted in, named): "in 3 months", not "in 92 days"; "2 years ago"
_UNITS = (
    (730 * _DAY, 365 * _DAY, "year"),
    (60 * _DAY, 30 * _DAY, "month"),
    (_DAY, _DAY, "day"),
    (3600, 3600, "hour"),
    (60, 60, "minute"),
)


def _clock_time(at: datetime) -> str:
    hour = at.hour % 12 or 12
    return f"{hour}:{at.minute:02d} {'am' if at.hour < 12 else 'pm'}"


@dataclass(frozen=True, slots=True)
class Display:
    """Times as a person in the facility reads them, relative to ``now``."""

    zone: ZoneInfo
    now: datetime
    own_offsets: bool = False  # several facilities' zones: each time at the offset it carries

    @classmethod
    def for_settings(cls, settings: Settings, now: datetime | None = None) -> Display:
        return cls(display_zone(settings), now or clock.now(), serves_several_zones(settings))

    @property
    def today(self) -> date:
        return self.now.astimezone(self.zone).date()

    def local(self, value: str | datetime | date | None) -> datetime | None:
        return _parse(value, self.zone, self.own_offsets)

    def day(self, value: str | datetime | date | None) -> str:
        """ "today", "tomorrow", "yesterday", "Mon 30 Nov", or "Mon 30 Nov 2025" in another year."""
        at = _parse(value, self.zone, self.own_offsets)
        if at is None:
            return "no date"
        offset = (at.date() - self.today).days
        words = {0: "today", 1: "tomorrow", -1: "yesterday"}
        if offset in words:
            return words[offset]
        label = f"{at:%a} {at.day} {at:%b}"
        return label if at.year == self.today.year else f"{label} {at.year}"

    def when(self, value: str | datetime | date | None) -> str:
        """The day in words, and the clock time when the value has one ("today at 2:30 pm")."""
        if isinstance(value, str) and value and "T" not in value:
            return self.day(value)
        at = _parse(value, self.zone, self.own_offsets)
        if at is None:
            return "no date"
        return f"{self.day(at)} at {_clock_time(at)}"

    def relative(self, value: str | datetime | date | None) -> str:
        """How far from now: "in 3 days", "in 5 hours", "2 days ago", "just now"."""
        at = _parse(value, self.zone, self.own_offsets)
        if at is None:
            return ""
        seconds = (at - self.now).total_seconds()
        ahead, size = seconds >= 0, abs(seconds)
        if size < 60:
            return "just now"
        count, name = next(
            (int(size // unit), name) for above, unit, name in _UNITS if size >= above
        )
        text = f"{count} {name}{'s' if count != 1 else ''}"
        return f"in {text}" if ahead else f"{text} ago"

    def iso(self, value: str | datetime | date | None) -> str:
        """Machine-readable local time for a ``<time datetime=…>`` attribute."""
        at = _parse(value, self.zone, self.own_offsets)
        return at.isoformat(timespec="minutes") if at else ""

    def past(self, value: str | datetime | date | None) -> bool:
        at = _parse(value, self.zone, self.own_offsets)
        return at is not None and at < self.now

    def within(self, value: str | datetime | date | None, hours: float) -> bool:
        """Whether ``value`` is still ahead and less than ``hours`` from now."""
        at = _parse(value, self.zone, self.own_offsets)
        return at is not None and self.now <= at <= self.now + timedelta(hours=hours)
