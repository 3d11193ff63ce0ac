"""The outbox delivery worker: claims due rows, sends each with httpx (signed), and records every
attempt and its outcome. Run it alone (``fhir-gateway worker``), inside ``serve --worker``, or as
many processes as you like on PostgreSQL (``SKIP LOCKED`` keeps them off each other's rows).

``transport`` is the seam for tests and benchmarks (an ``httpx.MockTransport``, or nothing for the
network); ``rng`` makes the jitter reproducible; time comes from ``fhir_gateway.clock``.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy.orm import Session

from fhir_gateway import clock, contacts, security, workflow
from fhir_gateway.notifications import DELIVERY_HEADER, SIGNATURE_HEADER, sign
from fhir_gateway.observability.events import observed_delivery
from fhir_gateway.observability.health import Heartbeat
from fhir_gateway.observability.tracing import inject_context
from fhir_gateway.settings import Settings
from fhir_gateway.store import outbox
from fhir_gateway.store.db import Database
from fhir_gateway.store.outbox import OutboxRow
from fhir_gateway.workers.retry import Decision, RetryPolicy, decide

__all__ = ["DeliveryWorker", "DeliveryResult", "policy_from"]

log = logging.getLogger("fhir_gateway.workers.delivery")
USER_AGENT = "fhir-gateway-notifications/1"


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    row_id: int
    outcome: str
    http_status: int | None
    error: str | None


def _finish(
    session: Session, row: OutboxRow, channel: contacts.CaringChannels | None = None, **result: Any
) -> bool:
    """Record the attempt; a delivered row's Part 2 disclosures enter the accounting with it, and
    a caring contact's Communication is recorded with it."""
    kept = outbox.finish(session, row.id, **result)
    if kept and result["outcome"] == "delivered" and row.disclosures:
        security.account_delivered(session, row.disclosures, row.channel)
    if kept and result["outcome"] == "delivered" and channel is not None:
        channel.delivered(session, row)
    return kept


def policy_from(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        settings.outbox_backoff_base,
        settings.outbox_backoff_max,
        settings.outbox_max_age,
        settings.outbox_max_attempts,
    )


class DeliveryWorker:
    def __init__(
        self,
        database: Database,
        settings: Settings,
        *,
        transport: httpx.BaseTransport | None = None,
        name: str | None = None,
        rng: random.Random | None = None,
        partner_transport: httpx.BaseTransport | None = None,
        caring: contacts.CaringChannels | None = None,
    ) -> None:
        self.db = database
        self.settings = settings
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.policy = policy_from(settings)
        self.rng = rng or random.Random()
        self._rng_lock = threading.Lock()
        self._partner_transport = partner_transport if partner_transport is not None else transport
        self._http = httpx.Client(
            transport=transport,
            timeout=settings.outbox_timeout,
            headers={"User-Agent": USER_AGENT},
            follow_redirects=False,
        )
        self._pool = ThreadPoolExecutor(
            max_workers=max(1, settings.outbox_concurrency), thread_name_prefix="outbox"
        )
        self._last_poll: float | None = None
        self._last_contacts: float | None = None
        # caring contacts: e-mail (SMTP) and a messaging webhook, beside the HTTP deliveries
        self.caring = caring or contacts.CaringChannels(settings, transport=transport)
        self.heartbeat: Heartbeat | None = None

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._http.close()

    # -- one round -------------------------------------------------------------------------------

    def run_once(self) -> list[DeliveryResult]:
        """Claim one batch of due rows, deliver them, record the results."""
        rows = self.db.write(
            outbox.claim,
            worker=self.name,
            limit=self.settings.outbox_batch_size,
            lease=timedelta(seconds=self.settings.outbox_lease),
            postgres=self.db.is_postgres,
        )
        if not rows:
            return []
        secrets = self.db.read(outbox.secrets_of, {r.subscription for r in rows if r.subscription})
        return list(
            self._pool.map(
                lambda row: self._deliver(row, secrets.get(row.subscription or "")), rows
            )
        )

    def drain(self, *, max_rounds: int = 10_000) -> list[DeliveryResult]:
        """Rounds until nothing is due now (rows waiting for a later retry stay pending)."""
        results: list[DeliveryResult] = []
        for _ in range(max_rounds):
            batch = self.run_once()
            if not batch:
                break
            results += batch
        return results

    def _withdrawn(self, row: OutboxRow) -> DeliveryResult | None:
        """A row disclosing Part 2 data that no consent permits any more (revoked, expired since
        it was queued) is withdrawn, never sent: revocation takes effect at once. So is a caring
        contact stopped or whose consent was withdrawn since it was queued."""
        if row.channel in self.caring.names:
            reason = self.db.read(self.caring.withdrawn_because, row)
        elif not row.disclosures:
            return None
        else:
            reason = self.db.read(security.disclosure_withdrawn_because, row.disclosures)
        if reason is None:
            return None
        self.db.write(outbox.withdraw, row.id, worker=self.name, reason=reason)
        log.info("outbox %s withdrawn: a consent it rested on no longer permits it", row.id)
        return DeliveryResult(row.id, "withdrawn", None, reason)

    def _built(self, row: OutboxRow) -> OutboxRow | DeliveryResult:
        """A partner push queued as a Task version: its Bundle (and what it discloses) built now,
        with the partner's rights now; withdrawn when nothing may go."""
        if row.channel != workflow.PUSH_CHANNEL or row.body or not row.focus:
            return row
        base_url = (self.settings.base_url or "").rstrip("/")
        built = self.db.read(workflow.push_payload, row.focus, base_url)
        if isinstance(built, tuple):
            return replace(row, body=built[0], disclosures=built[1])
        self.db.write(outbox.withdraw, row.id, worker=self.name, reason=built)
        log.info("outbox %s withdrawn: %s", row.id, built)
        return DeliveryResult(row.id, "withdrawn", None, built)

    def _deliver(self, row: OutboxRow, secret: str | None) -> DeliveryResult:
        withdrawn = self._withdrawn(row)
        if withdrawn is not None:
            return withdrawn
        built = self._built(row)
        if isinstance(built, DeliveryResult):
            return built
        row = built
        with observed_delivery(row.id, row.channel) as seen:  # span, outbox-id correlation, metrics
            refused = False
            if row.channel in self.caring.names:
                sent = self.caring.send(row)
                status, error, retry_after, refused = (
                    sent.status,
                    sent.error,
                    sent.retry_after,
                    sent.refused,
                )
            else:
                status, error, retry_after = self._send(row, secret)
            seen.sent()
            attempt = row.attempts + 1
            with self._rng_lock:
                decision = decide(
                    self.policy,
                    status=status,
                    attempt=attempt,
                    retry_since=row.retry_since,
                    now=clock.now(),
                    rng=self.rng,
                    retry_after_header=retry_after,
                )
            if refused:  # a permanent SMTP refusal: retrying cannot help
                decision = Decision("dead", reason="refused for good")
            self._record(row, decision, status, error)
            seen.done(decision.outcome, status)
        return DeliveryResult(row.id, decision.outcome, status, error or decision.reason)

    def _send(
        self, row: OutboxRow, secret: str | None
    ) -> tuple[int | None, str | None, str | None]:
        headers = {**row.headers, DELIVERY_HEADER: str(row.id)}
        if row.content_type:
            headers["Content-Type"] = row.content_type
        if secret:
            headers[SIGNATURE_HEADER] = sign(secret, row.body, int(clock.now().timestamp()))
        inject_context(headers)  # W3C traceparent: the receiver's trace continues ours
        try:
            response = self._http.request(row.method, row.url, content=row.body, headers=headers)
        except httpx.TimeoutException:
            return None, f"timed out after {self.settings.outbox_timeout:g} s", None
        except httpx.TransportError as exc:
            return None, f"{exc.__class__.__name__}: {exc}"[:500], None
        error = (
            None if response.is_success else f"HTTP {response.status_code}: {response.text[:200]}"
        )
        return response.status_code, error, response.headers.get("retry-after")

    def _record(
        self, row: OutboxRow, decision: Decision, status: int | None, error: str | None
    ) -> None:
        detail = error if decision.reason is None else f"{error or ''} ({decision.reason})".strip()
        kept = self.db.write(
            _finish,
            row,
            self.caring if row.channel in self.caring.names else None,
            worker=self.name,
            outcome=decision.outcome,
            http_status=status,
            error=detail,
            next_attempt_at=decision.next_attempt_at,
        )
        if not kept:
            log.warning("outbox %s: lease lost while delivering; another worker has it", row.id)
        elif decision.outcome == "dead":
            log.warning(
                "outbox %s dead-lettered (%s)", row.id, decision.reason
            )  # the receiver's text may echo PHI

    # -- forever ---------------------------------------------------------------------------------

    def poll_partners_if_due(self) -> None:
        interval = self.settings.partner_poll_interval
        now = clock.now().timestamp()
        if interval <= 0 or (self._last_poll is not None and now - self._last_poll < interval):
            return
        self._last_poll = now
        from fhir_gateway.workflow import poll_partners

        try:
            poll_partners(self.db, self.settings, transport=self._partner_transport)
        except Exception:  # a partner poll must never stop deliveries
            log.exception("polling partners failed")

    def run_monitors_if_due(self) -> None:
        """The case-manager monitors on their schedule; one worker of many takes each turn."""
        if self.settings.monitor_interval <= 0:
            return
        from fhir_gateway.monitors import run_due

        try:
            run_due(self.db, self.settings, worker=self.name)
        except Exception:  # a failed monitor run is recorded and retried; deliveries go on
            log.exception("monitor run failed")

    def send_caring_contacts_if_due(self) -> int:
        """Queue the caring contacts whose time has come, every ``contacts_interval`` seconds."""
        interval = self.settings.contacts_interval
        now = clock.now().timestamp()
        if interval <= 0 or (
            self._last_contacts is not None and now - self._last_contacts < interval
        ):
            return 0
        self._last_contacts = now
        try:
            return int(self.db.write(contacts.enqueue_due, self.settings))
        except Exception:  # a failed run is tried again next time; deliveries go on
            log.exception("queuing caring contacts failed")
            return 0

    def run(self, stop: threading.Event) -> None:
        """Deliver until ``stop`` is set; an idle worker looks again every poll interval."""
        log.info("outbox worker %s started", self.name)
        while not stop.is_set():
            if self.heartbeat is not None:
                self.heartbeat.beat()  # `worker --health-port`: ready while the loop turns
            try:
                self.poll_partners_if_due()
                self.run_monitors_if_due()
                self.send_caring_contacts_if_due()
                busy = bool(self.run_once())
            except Exception:  # the database away for a moment: wait and try again
                log.exception("outbox round failed")
                busy = False
            if not busy:
                stop.wait(self.settings.outbox_poll_interval)
        log.info("outbox worker %s stopped", self.name)
