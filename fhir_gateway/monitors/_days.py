"""Calendar days in the discharging facility's zone (DESIGN, Identity and time): the discharge day
is day 0, the next local day is day 1. The facility of a discharge is its sender, found through the
inbox message that last wrote the Encounter (``source_times``); REST-written ones take the default
zone. A time without an offset takes the zone; a date alone is the start of that local day."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session

from fhir_gateway import clock
from fhir_gateway.settings import Settings
from fhir_gateway.store.inbox_tables import inbox_messages, source_times

__all__ = [
    "zone_for",
    "zone_of_resource",
    "zones_of_resources",
    "parse",
    "local_day",
    "day_number",
    "end_of_day",
]


def zone_for(settings: Settings, sender: str | None) -> ZoneInfo:
    facility = (sender or "").rpartition("|")[2]
    name = (
        settings.sender_zones.get(sender or "")
        or settings.sender_zones.get(facility)
        or settings.default_sender_zone
    )
    try:
        return ZoneInfo(name)
    except ZoneInfoNotFoundError:
        return ZoneInfo("UTC")


def zone_of_resource(session: Session, settings: Settings, res_type: str, res_id: str) -> ZoneInfo:
    sender = session.execute(
        select(inbox_messages.c.sender)
        .join(source_times, source_times.c.message_id == inbox_messages.c.id)
        .where(source_times.c.res_type == res_type, source_times.c.res_id == res_id)
    ).scalar_one_or_none()
    return zone_for(settings, sender)


def zones_of_resources(
    session: Session, settings: Settings, res_type: str, res_ids: list[str]
) -> dict[str, ZoneInfo]:
    """``zone_of_resource`` of each of ``res_ids``, in one query per 1,000 ids."""
    senders: dict[str, str | None] = {}
    for start in range(0, len(res_ids), 1000):  # within any database's limit of bound values
        rows = session.execute(
            select(source_times.c.res_id, inbox_messages.c.sender)
            .join(inbox_messages, source_times.c.message_id == inbox_messages.c.id)
            .where(
                source_times.c.res_type == res_type,
                source_times.c.res_id.in_(res_ids[start : start + 1000]),
            )
        ).all()
        senders.update((row.res_id, row.sender) for row in rows)
    return {i: zone_for(settings, senders.get(i)) for i in res_ids}


def parse(value: str | None, zone: ZoneInfo) -> datetime | None:
    """A FHIR date, dateTime or instant as an aware datetime in ``zone`` (None if absent or bad)."""
    if not value:
        return None
    text = {4: f"{value}-01-01", 7: f"{value}-01"}.get(len(value), value)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.replace(tzinfo=zone) if parsed.tzinfo is None else parsed.astimezone(zone)


def end_of_day(value: str, zone: ZoneInfo) -> datetime | None:
    """A deadline: a date alone means the end of that local day."""
    if "T" in value:
        return parse(value, zone)
    start = parse(value, zone)
    return (
        None
        if start is None
        else datetime.combine(start.date(), time(23, 59, 59, 999999), tzinfo=zone)
    )


def local_day(value: datetime | None, zone: ZoneInfo) -> date:
    return (value or clock.now()).astimezone(zone).date()


def day_number(discharged: datetime, event: datetime, zone: ZoneInfo) -> int:
    """Day 0 is the local discharge day; an event the next local day is on day 1."""
    return (local_day(event, zone) - local_day(discharged, zone)).days
