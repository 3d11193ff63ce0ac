"""The monitors' schedule: one row per scheduled job, claimed with a compare-and-set on ``due_at``
so that, however many workers run, each job runs once per interval (fhir_gateway.monitors)."""

from __future__ import annotations

from sqlalchemy import Column, String, Table, Text

from fhir_gateway.store.tables import JsonDoc, UtcTime, metadata

__all__ = ["monitor_runs"]

monitor_runs = Table(
    "monitor_runs",
    metadata,
    Column("name", String(64), primary_key=True),  # the job: "monitors"
    Column("due_at", UtcTime, nullable=False),  # the next run may start at or after this time
    Column("started_at", UtcTime, nullable=True),
    Column("finished_at", UtcTime, nullable=True),
    Column("worker", String(128), nullable=True),  # who ran it last
    Column("result", JsonDoc, nullable=True),  # counts of the last run
    Column("error", Text, nullable=True),
)
