"""Prometheus metrics: what an operator needs at 3 a.m., and nothing that identifies a patient.

Process metrics (counters, histograms, the pool gauge) live in prometheus-client's registry; with
``PROMETHEUS_MULTIPROC_DIR`` set (``serve --workers N`` sets it; set it yourself to one shared
folder for separate ``mllp`` and ``worker`` processes) every process writes its own files and
``render`` sums them. Queue depths are read from the database when scraped, so every process that
answers ``/metrics`` tells the same truth.

Labels are bounded: senders and events are cleaned to a short token, HTTP routes are the route
template (``/{res_type}/{id}``), never the path.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from fhir_gateway import clock

__all__ = [
    "CONTENT_TYPE_LATEST",
    "MESSAGES",
    "ACK_LATENCY",
    "DELIVERIES",
    "DELIVERY_LATENCY",
    "MONITOR_RUNS",
    "MONITOR_FINDINGS",
    "HTTP_REQUESTS",
    "HTTP_LATENCY",
    "POOL_IN_USE",
    "record_message",
    "record_ack",
    "record_delivery",
    "record_monitor_run",
    "record_http",
    "watch_pool",
    "render",
    "multiprocess_dir",
]

disable_created_metrics()  # no `_created` twin of every counter: half the lines, none of the use

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

MESSAGES = Counter(
    "fhir_gateway_messages_received",
    "Inbound messages by channel, sender, event and outcome",
    ["channel", "sender", "event", "outcome"],
)
ACK_LATENCY = Histogram(
    "fhir_gateway_ack_latency_seconds",
    "From a message's receipt to its ACK or answer",
    ["channel", "code"],
    buckets=_LATENCY_BUCKETS,
)
DELIVERIES = Counter(
    "fhir_gateway_outbox_deliveries",
    "Outbox delivery attempts by channel and outcome",
    ["channel", "outcome"],
)
DELIVERY_LATENCY = Histogram(
    "fhir_gateway_outbox_delivery_seconds",
    "Time a receiver took to answer a delivery",
    ["channel", "outcome"],
    buckets=_LATENCY_BUCKETS,
)
MONITOR_RUNS = Counter(
    "fhir_gateway_monitor_runs", "Runs of the scheduled monitors by outcome", ["outcome"]
)
MONITOR_FINDINGS = Counter(
    "fhir_gateway_monitor_findings", "What the monitors found, by kind", ["kind"]
)
HTTP_REQUESTS = Counter(
    "fhir_gateway_http_requests",
    "HTTP requests by route template, method and status",
    ["route", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "fhir_gateway_http_request_seconds",
    "HTTP request latency by route template and method",
    ["route", "method"],
    buckets=_LATENCY_BUCKETS,
)
POOL_IN_USE = Gauge(
    "fhir_gateway_db_pool_in_use",
    "Database connections checked out of the pool",
    multiprocess_mode="livesum",
)

_TOKEN = re.compile(r"[^A-Za-z0-9^_.:|/-]")
_FINDINGS = ("flagged", "escalated", "resolved", "family_messages", "errors")


def _label(value: str | None, limit: int = 64) -> str:
    """A sender or event as a bounded label (they come from the wire)."""
    return _TOKEN.sub("_", value)[:limit] if value else "-"


def record_message(
    channel: str, sender: str | None, event: str | None, outcome: str, *, registered: bool = True
) -> None:
    MESSAGES.labels(
        channel, _label(sender) if registered else "(unregistered)", _label(event, 32), outcome
    ).inc()


def record_ack(channel: str, code: str, seconds: float) -> None:
    ACK_LATENCY.labels(channel, _label(code, 16)).observe(seconds)


def record_delivery(channel: str, outcome: str, seconds: float) -> None:
    DELIVERIES.labels(channel, outcome).inc()
    DELIVERY_LATENCY.labels(channel, outcome).observe(seconds)


def record_monitor_run(summary: dict[str, int] | None) -> None:
    """One run of the monitors (None: it failed as a whole) and what it found."""
    if summary is None:
        MONITOR_RUNS.labels("failed").inc()
        return
    MONITOR_RUNS.labels("errors" if summary.get("errors") else "ok").inc()
    for kind in _FINDINGS:
        if summary.get(kind):
            MONITOR_FINDINGS.labels(kind).inc(summary[kind])


def record_http(route: str, method: str, status: int, seconds: float) -> None:
    HTTP_REQUESTS.labels(route, method, str(status)).inc()
    HTTP_LATENCY.labels(route, method).observe(seconds)


def watch_pool(engine: Any) -> None:
    """Count the connections an engine's pool has out (idempotent per engine)."""
    from sqlalchemy import event

    if getattr(engine, "_fhir_gateway_pool_watched", False):
        return
    engine._fhir_gateway_pool_watched = True
    event.listen(engine, "checkout", lambda *_: POOL_IN_USE.inc())
    event.listen(engine, "checkin", lambda *_: POOL_IN_USE.dec())


class QueueCollector(Collector):
    """Inbox and outbox depths from the database, read when scraped."""

    def __init__(self, database: Any) -> None:
        self.database = database

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from fhir_gateway.store.depths import depths
        from fhir_gateway.store.inbox_tables import STATUSES as INBOX
        from fhir_gateway.store.outbox_tables import STATUSES as OUTBOX

        seen = self.database.read(depths)
        inbox = GaugeMetricFamily(
            "fhir_gateway_inbox_messages",
            "Inbox rows by status (failed: to replay)",
            labels=["status"],
        )
        for status in INBOX:
            inbox.add_metric([status], seen.inbox.get(status, 0))
        yield inbox
        yield GaugeMetricFamily(
            "fhir_gateway_inbox_failed",
            "Inbox rows failed (replay them after a fix)",
            value=seen.inbox.get("failed", 0),
        )
        rows = GaugeMetricFamily(
            "fhir_gateway_outbox_messages", "Outbox rows by status", labels=["status"]
        )
        for status in OUTBOX:
            rows.add_metric([status], seen.outbox.get(status, 0))
        yield rows
        yield GaugeMetricFamily(
            "fhir_gateway_outbox_depth",
            "Notifications waiting to be delivered",
            value=seen.outbox.get("pending", 0),
        )
        yield GaugeMetricFamily(
            "fhir_gateway_outbox_dead_letters",
            "Dead-lettered notifications (replay them)",
            value=seen.outbox.get("dead", 0),
        )
        age = 0.0
        if seen.oldest_pending is not None:
            age = max(0.0, (clock.now() - clock.from_db(seen.oldest_pending)).total_seconds())
        yield GaugeMetricFamily(
            "fhir_gateway_outbox_oldest_age_seconds",
            "Age of the oldest notification still pending (0: none)",
            value=age,
        )


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def render(database: Any) -> bytes:
    """The exposition text: this process's (or, in multiprocess mode, every process's) metrics and
    the queue depths."""
    queues = CollectorRegistry(auto_describe=False)
    queues.register(QueueCollector(database))
    if multiprocess_dir():
        from prometheus_client import multiprocess

        processes = CollectorRegistry()
        multiprocess.MultiProcessCollector(processes)
        return generate_latest(processes) + generate_latest(queues)
    return generate_latest(REGISTRY) + generate_latest(queues)
