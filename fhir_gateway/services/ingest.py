"""The intake: every inbound message stored, applied once, in order, and answered truthfully.

Two steps per message, in one transaction when they can be (below):

1. **receive** — the raw message is stored (status ``received``) and its idempotency key claimed
   (``inbox_keys``, a primary key: sender application + facility + MSH-10 for HL7 v2;
   Bundle.identifier, else MessageHeader.source.endpoint + MessageHeader.id, for FHIR). A message
   that cannot be accepted is stored as ``failed`` with its AR answer right here; a re-send gets
   the original answer and is stored as ``duplicate``.
2. **apply** — under the patient's lock (a PostgreSQL advisory lock; SQLite's single writer), the
   earliest ``received`` message of that patient is converted, its Bundle applied through
   ``process_bundle``, the merge completed, the discharge handed to ``on_discharge``, and the
   status set to ``processed`` (or ``failed`` with AE) — all in one transaction. Until the
   message's own turn comes, earlier messages of the same patient go first: order of receipt.

Most messages are their patient's next and apply cleanly: both steps then run in one transaction
(one BEGIN and COMMIT, no savepoint; issue 21). Any failure in it undoes it all, the record too,
and the message takes the two-transaction path from the start, where a failure is kept as
``failed`` with its answer; so does a message whose patient has earlier ones waiting.

The answer (AA, or the FHIR response) is returned only after the apply commits. A crash between
the two transactions leaves the message ``received``: the sender's re-send (its key is already
claimed) applies it, and so does ``recover()`` at start; a crash inside the one transaction
leaves nothing, and the re-send is a new message.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import orjson
from sqlalchemy.exc import DataError, DBAPIError
from sqlalchemy.orm import Session

from adapters.hl7v2 import HL7Error
from adapters.notifications import NotificationError
from fhir_gateway.context import SYSTEM, Caller
from fhir_gateway.errors import (
    Conflict,
    Forbidden,
    GatewayError,
    NotFound,
    PreconditionFailed,
    Unavailable,
)
from fhir_gateway.observability.events import observed_message
from fhir_gateway.security import (
    for_sender,
    message_caller,
    registered_senders,
    sender_permitted,
    sending,
)
from fhir_gateway.services import applied, discharge, intake_fhir, intake_hl7, merge, source_guard
from fhir_gateway.services.bundles import process_bundle
from fhir_gateway.settings import Settings
from fhir_gateway.store import inbox
from fhir_gateway.store.db import Database
from fhir_gateway.store.inbox import InboxMessage
from fhir_gateway.store.inbox_tables import STATUSES as INBOX_STATUSES

__all__ = ["Answer", "Intake", "HTTP_STATUS", "INBOX_STATUSES"]

log = logging.getLogger("fhir_gateway.intake")
T = TypeVar("T")

HTTP_STATUS = {
    "AA": 200,
    "ok": 200,
    "AE": 422,
    "fatal-error": 422,
    "AR": 400,
    "rejected": 400,
    "forbidden": 403,
}
_RETRIES = 8

Identified = intake_hl7.IdentifiedHL7Message | intake_fhir.IdentifiedFhirMessage


@dataclass(frozen=True, slots=True)
class Answer:
    message_id: int
    status: str  # processed | failed | duplicate
    code: str  # AA | AE | AR, or ok | fatal-error | rejected
    body: bytes
    duplicate: bool = False

    @property
    def http_status(self) -> int:
        return HTTP_STATUS.get(self.code, 500)


@dataclass(frozen=True, slots=True)
class _Received:
    """A message as received, before it is recorded."""

    raw: bytes
    kind: str  # hl7v2 | fhir-message
    channel: str
    peer: str | None
    ident: Identified
    # no caller (MLLP): the sender is checked against those registered to hospital clients, in
    # the transaction that records the message
    registered: bool


@dataclass(slots=True)
class _Recorded:
    message_id: int
    owner: int | None = None  # the row to apply (ours, or the original of a re-send in flight)
    terminal: InboxMessage | None = None  # already answered
    duplicate: bool = False
    lock_key: str | None = None  # the owner's patient lock, when recorded just now
    added: inbox.Added | None = None  # as recorded just now, with its patient's waiting ones


class Intake:
    """The intake service over one database; safe to call from many threads at once."""

    def __init__(self, database: Database, settings: Settings) -> None:
        self.db = database
        self.settings = settings
        self.options = intake_hl7.options_from(settings)
        self.base_url = (settings.base_url or "").rstrip("/")
        self._prepared: dict[int, Identified] = {}  # converted at receipt, reused when applied

    # --- receiving ------------------------------------------------------------------------------

    def receive_hl7(
        self,
        raw: bytes,
        *,
        channel: str = "mllp",
        peer: str | None = None,
        caller: Caller | None = None,
    ) -> Answer:
        with observed_message(channel) as seen:  # span, MSH-10 correlation, metrics
            ident = seen.identified(self._identified("hl7v2", raw, caller))
            return seen.answered(self._receive(raw, "hl7v2", channel, peer, ident, caller))

    def receive_fhir(
        self, raw: bytes, *, peer: str | None = None, caller: Caller | None = None
    ) -> Answer:
        with observed_message("fhir") as seen:
            ident = seen.identified(self._identified("fhir-message", raw, caller))
            return seen.answered(self._receive(raw, "fhir-message", "fhir", peer, ident, caller))

    def _identified(self, kind: str, raw: bytes, caller: Caller | None) -> Identified:
        """The message parsed, and checked against its poster's senders."""
        ident: Identified
        if kind == "hl7v2":
            ident = intake_hl7.identify(raw, self.options, self.settings)
        else:
            ident = intake_fhir.identify(raw, self.settings)
            ident.caller = caller
        self._check_sender(ident, caller)
        return ident

    def _check_sender(self, ident: Identified, caller: Caller | None) -> None:
        """A hospital client may submit only for the senders registered to it (``clients add
        --sender``): one hospital cannot send messages in another's name. Without a caller (MLLP),
        the senders registered to hospital clients join the allow-list of the settings."""
        if not ident.sender:
            return
        if caller is None:
            return  # checked against the registered senders as the message is recorded
        if ident.error is not None:
            return
        application, _, facility = ident.sender.rpartition("|")
        if not self.db.read(sender_permitted, caller, application, facility):
            ident.error = intake_hl7.UnknownSender(
                f"client {caller.client_id} is not registered to send for {ident.sender}",
                segment="MSH",
                field=4,
            )

    def _check_registered(self, session: Session, ident: Identified) -> None:
        if not ident.sender:
            return
        registered = registered_senders(session)
        facility = ident.sender.rpartition("|")[2] if ident.sender else ""
        known = ident.sender in registered or facility in registered
        if isinstance(ident.error, intake_hl7.UnknownSender) and known:
            ident.error = None  # not in the settings' list, but registered to a hospital client
        elif (
            ident.error is None and registered and not self.settings.sender_allowlist and not known
        ):
            ident.error = intake_hl7.UnknownSender(
                f"sender {ident.sender} is not registered", segment="MSH", field=4
            )

    def _receive(
        self,
        raw: bytes,
        kind: str,
        channel: str,
        peer: str | None,
        ident: Identified,
        caller: Caller | None,
    ) -> Answer:
        message = _Received(raw, kind, channel, peer, ident, registered=caller is None)
        try:
            outcome = self._write(self._at_once, message)
        except Exception as exc:  # noqa: BLE001 - nothing was kept: the two-step path decides
            log.debug("%s %s: applied in two steps (%r)", kind, ident.control_id, exc)
            # as parsed, whatever the attempt changed
            message = replace(message, ident=self._identified(kind, raw, caller))
            outcome = self._write(self._record, message)
        if isinstance(outcome, InboxMessage):
            return _answer(outcome, False)
        recorded = outcome
        if recorded.terminal is not None:
            return _answer(recorded.terminal, recorded.duplicate)
        assert recorded.owner is not None
        if recorded.owner == recorded.message_id:
            self._prepared[recorded.owner] = message.ident
        return _answer(self._apply_until(recorded.owner, recorded.lock_key), recorded.duplicate)

    def _record(self, session: Session, message: _Received) -> _Recorded:
        raw, kind, ident = message.raw, message.kind, message.ident
        if message.registered:
            self._check_registered(session, ident)
        key = inbox.key_hash(ident.key_text) if ident.key_text else None
        fields: dict[str, Any] = {
            "raw": raw,
            "channel": message.channel,
            "kind": kind,
            "sender": ident.sender,
            "control_id": ident.control_id,
            "message_key": key,
            "patient_key": ident.patient_key,
            "event": ident.event,
            "peer": message.peer,
            "source_time": ident.source_time,
        }
        added = None
        if key is not None and ident.key_text is not None and not ident.rejected:
            added = inbox.add_claiming(session, key_text=ident.key_text, **fields)
            mid = added.row.id
            if added.owner != mid:
                return self._duplicate(session, mid, added.owner)
        else:
            mid = inbox.add(session, **fields)
        if ident.rejected:
            return _Recorded(mid, terminal=self._fail(session, mid, kind, raw, ident, ident.error))
        if ident.error is not None:  # parsed but unusable: AE, and a re-send gets that AE again
            return _Recorded(mid, terminal=self._fail(session, mid, kind, raw, ident, ident.error))
        return _Recorded(
            mid, owner=mid, lock_key=_lock_key(ident.patient_key, key, mid), added=added
        )

    def _at_once(self, session: Session, message: _Received) -> InboxMessage | _Recorded:
        """Record the message and, when it is its patient's next, apply it in the same
        transaction: its row as processed. Otherwise what ``_record`` says (committed as usual),
        for the two-step path to go on from. A failure raises: nothing is kept."""
        recorded = self._record(session, message)
        if recorded.terminal is not None or recorded.owner != recorded.message_id:
            return recorded
        assert recorded.lock_key is not None
        inbox.lock_patient(session, recorded.lock_key)
        row: InboxMessage | None
        if recorded.added is not None:  # its patient's waiting messages read as it was recorded
            row, waiting = recorded.added.row, recorded.added.waiting
        else:
            row, first_id = inbox.lock_in_turn(session, recorded.message_id)
            waiting = first_id if row is not None and first_id != row.id else None
        if row is None or waiting is not None:
            return recorded  # earlier messages of the patient wait: they go first
        discharge.forget_writes(session)
        code, body, notes = self._apply(session, row, message.ident)
        done = inbox.finish(
            session, row.id, status="processed", answer_code=code, answer=body, warnings=notes
        )
        assert done is not None  # locked above
        return done

    def _duplicate(self, session: Session, mid: int, owner: int) -> _Recorded:
        original = inbox.get(session, owner)
        assert original is not None
        inbox.mark_duplicate(session, mid, original)
        log.info(
            "inbox %s: re-send of message %s (%s %s)",
            mid,
            owner,
            original.sender,
            original.control_id,
        )
        if original.status != "received":
            return _Recorded(mid, terminal=original, duplicate=True)
        return _Recorded(mid, owner=owner, duplicate=True)  # in flight, or orphaned by a crash

    # --- applying, in order ---------------------------------------------------------------------

    def _apply_until(self, target: int, lock_key: str | None = None) -> InboxMessage:
        """``lock_key``: the target's patient lock, known when it was recorded just now (so
        its row is not read before the lock only to learn it)."""
        conflicts = 0
        while True:
            try:
                row = self._write(self._step, target, conflicts >= _RETRIES, lock_key)
            except Conflict:
                conflicts += 1
                if conflicts > _RETRIES:
                    raise Unavailable("Concurrent changes kept conflicting; retry") from None
                time.sleep(0.005 * conflicts)
                continue
            if row is not None:
                self._prepared.pop(target, None)
                return row

    def _step(
        self, session: Session, target: int, last_try: bool = False, lock_key: str | None = None
    ) -> InboxMessage | None:
        """Apply the patient's earliest waiting message; the target's row once it is done."""
        if lock_key is None:
            row = inbox.get(session, target)
            if row is None:
                raise NotFound(f"inbox message {target} is not known")
            if row.status != "received":
                return row
            lock_key = _lock_key(row.patient_key, row.message_key, row.id)
        inbox.lock_patient(session, lock_key)
        row, first_id = inbox.lock_in_turn(session, target)
        if row is None:
            raise NotFound(f"inbox message {target} is not known")
        if row.status != "received":
            return row
        first_id = first_id or row.id
        first = row if first_id == row.id else inbox.lock(session, first_id)
        assert first is not None
        finished = self._process(session, first, last_try)
        return finished if first.id == target else None

    def _process(
        self, session: Session, row: InboxMessage, last_try: bool = False
    ) -> InboxMessage | None:
        """Apply ``row`` and record its outcome; its row as finished."""
        ident: Identified | None = self._prepared.pop(row.id, None)
        discharge.forget_writes(session)
        try:
            with session.begin_nested():
                ident = ident or self._identify(row)
                code, body, notes = self._apply(session, row, ident)
                return inbox.finish(
                    session,
                    row.id,
                    status="processed",
                    answer_code=code,
                    answer=body,
                    warnings=notes,
                )
        except DataError as exc:
            # content the database refuses (e.g. a NUL in text on PostgreSQL): the message's
            # failure, not a transient one; kept as failed so it never blocks the next message
            log.warning("inbox %s: the database refused the message's data: %s", row.id, exc.orig)
            return self._fail(session, row.id, row.kind, row.raw, ident, exc)
        except (Conflict, Unavailable, DBAPIError):
            raise  # transient: the whole step is retried
        except PreconditionFailed as exc:
            # e.g. another gateway created the same Organization a moment ago: retry, which
            # then finds it; only a lasting failure (criteria matching several) is the message's
            if not last_try:
                raise Conflict(exc.message) from exc
            return self._fail(session, row.id, row.kind, row.raw, ident, exc)
        except Exception as exc:  # noqa: BLE001 - every other failure is the message's, kept visible
            if not isinstance(exc, HL7Error | GatewayError | NotificationError):
                log.exception("inbox %s: unexpected error while applying", row.id)
            return self._fail(session, row.id, row.kind, row.raw, ident, exc)

    def _apply(
        self, session: Session, row: InboxMessage, ident: Identified
    ) -> tuple[str, bytes, list[str]]:
        if ident.error is not None:
            raise ident.error
        if isinstance(ident, intake_hl7.IdentifiedHL7Message):
            if ident.result is None:  # an empty batch: nothing to apply
                return "AA", intake_hl7.ack(ident), ident.warnings
            any_class = ident.event in intake_hl7.DISCHARGE_EVENTS
            intake_hl7.check_types(ident.result.bundle)
            notes = self._apply_bundle(
                session, row, ident, ident.result.bundle, "hl7v2", any_class, SYSTEM
            )
            return "AA", intake_hl7.ack(ident), ident.warnings + notes
        assert ident.note is not None
        any_class = ident.event in intake_fhir.DISCHARGE_EVENTS
        # The sender's own rights, also on a replay or a recovery (the hospital client registered
        # for its endpoint); the gateway's only when no client is (authentication off).
        caller = (
            sending(ident.caller, row.sender)
            if ident.caller
            else message_caller(session, row.sender) or SYSTEM
        )
        try:
            notes = self._apply_bundle(
                session, row, ident, ident.note.transaction, "fhir-message", any_class, caller
            )
        except GatewayError as exc:
            raise intake_fhir.at_message_entry(exc, ident.note) from exc
        return "ok", intake_fhir.ok_answer(ident.note), ident.warnings + notes

    def _apply_bundle(
        self,
        session: Session,
        row: InboxMessage,
        ident: Identified,
        bundle: dict[str, Any],
        source: str,
        any_class: bool,
        caller: Caller,
    ) -> list[str]:
        converted = bundle  # what the message said, before stale entries are dropped
        matches: dict[tuple[str, str], list[str]] = {}
        keys: dict[str, str] = {}  # each query's sorted criteria, keyed once for the message
        bundle, notes = source_guard.drop_stale(session, bundle, ident.source_time, matches, keys)
        bundle = merge.prepare(session, bundle)  # reads only: the matches still hold
        for_sender(
            session, row.sender
        )  # whether its substance-use data are Part 2 records is per sender
        response = process_bundle(
            session,
            bundle,
            caller,
            base_url=self.base_url,
            settings=self.settings,
            known_matches=matches if caller is SYSTEM else None,  # what the system sees
            criteria_keys=keys,
        )
        written = source_guard.written(response)
        notes += merge.complete(session, written, bundle, response)
        discharge.announce(
            session,
            source=source,
            event=ident.event or "",
            any_class=any_class,
            message_id=row.id,
            sender=row.sender,
            zone=ident.zone,
        )
        applied.announce(
            session,
            applied.MessageApplied(
                source=source,
                event=ident.event or "",
                sender=row.sender,
                control_id=ident.control_id,
                message_id=row.id,
                bundle=converted,
                written=tuple(written),
            ),
        )
        # Last: the upsert locks the rows of the shared resources every message names (the
        # sending facility, its practitioners) until the commit; taken before the care plan,
        # it made concurrent messages from one hospital wait for each other's whole plan.
        source_guard.record(session, written, ident.source_time, row.id)
        return notes

    def _identify(self, row: InboxMessage) -> Identified:
        if row.kind == "hl7v2":
            return intake_hl7.identify(row.raw, self.options, self.settings)
        return intake_fhir.identify(row.raw, self.settings)

    def _fail(
        self,
        session: Session,
        mid: int,
        kind: str,
        raw: bytes,
        ident: Identified | None,
        exc: BaseException | None,
    ) -> InboxMessage | None:
        code, body, error = _failure(kind, raw, ident, exc)
        log.warning(
            "inbox %s: %s %s from %s refused (%s): %s",
            mid,
            kind,
            ident.control_id if ident else None,
            ident.sender if ident else None,
            code,
            error.get("reason"),
        )
        return inbox.finish(
            session,
            mid,
            status="failed",
            answer_code=code,
            answer=body,
            error=error,
            warnings=ident.warnings if ident else None,
        )

    # --- recovery and replay --------------------------------------------------------------------

    def recover(self) -> int:
        """Apply every message left ``received`` (by a crash); returns how many. One that still
        cannot be applied is logged and marked failed (replayable); recovery goes on."""
        ids = self.db.read(inbox.pending_ids)
        for mid in ids:
            try:
                self._apply_until(mid)
            except Exception as exc:  # noqa: BLE001 - one bad message must not stop the start
                log.exception("inbox %s: could not be applied at recovery; marked failed", mid)
                try:
                    self._write(self._fail_stuck, mid, exc)
                except Exception:  # noqa: BLE001
                    log.exception("inbox %s: could not be marked failed either", mid)
        return len(ids)

    def _fail_stuck(self, session: Session, mid: int, exc: BaseException) -> None:
        row = inbox.lock(session, mid)
        if row is not None and row.status == "received":
            self._fail(session, mid, row.kind, row.raw, None, exc)

    def replay(self, message_id: int) -> Answer:
        """Convert and apply a stored message again (after a mapping fix). Idempotent, and never
        overwrites data newer than the message."""
        row = self.db.read(inbox.get, message_id)
        if row is None:
            raise NotFound(f"inbox message {message_id} is not known")
        if row.status == "duplicate" and row.duplicate_of:
            message_id = row.duplicate_of
        recorded = self._write(self._reopen, message_id)
        if recorded.terminal is not None:
            return _answer(recorded.terminal, recorded.duplicate)
        assert recorded.owner is not None
        return _answer(self._apply_until(recorded.owner), recorded.duplicate)

    def replay_failed(self) -> list[Answer]:
        return [self.replay(mid) for mid in self.db.read(inbox.ids_with_status, "failed")]

    def _reopen(self, session: Session, mid: int) -> _Recorded:
        row = inbox.lock(session, mid)
        assert row is not None
        if row.status == "received":
            return _Recorded(mid, owner=mid)
        ident = self._identify(row)
        if ident.rejected:
            return _Recorded(
                mid, terminal=self._fail(session, mid, row.kind, row.raw, ident, ident.error)
            )
        key = inbox.key_hash(ident.key_text) if ident.key_text else None
        if key is not None and ident.key_text is not None:
            owner = inbox.claim_key(session, key, ident.key_text, mid)
            if owner != mid:
                return self._duplicate(session, mid, owner)
        inbox.reopen(
            session,
            mid,
            sender=ident.sender,
            control_id=ident.control_id,
            message_key=key,
            patient_key=ident.patient_key,
            event=ident.event,
            source_time=ident.source_time,
        )
        self._prepared[mid] = ident
        return _Recorded(mid, owner=mid)

    # --- reading --------------------------------------------------------------------------------

    def listing(
        self, *, status: str | None = None, limit: int = 50, offset: int = 0
    ) -> list[InboxMessage]:
        return self.db.read(inbox.listing, status=status, limit=limit, offset=offset)

    def show(self, message_id: int) -> InboxMessage:
        row = self.db.read(inbox.get, message_id)
        if row is None:
            raise NotFound(f"inbox message {message_id} is not known")
        return row

    def _write(self, fn: Callable[..., T], *args: Any) -> T:
        return self.db.write(fn, *args)


def _answer(row: InboxMessage, duplicate: bool) -> Answer:
    return Answer(
        row.id,
        "duplicate" if duplicate else row.status,
        row.answer_code or "",
        row.answer or b"",
        duplicate,
    )


def _failure(
    kind: str, raw: bytes, ident: Identified | None, exc: BaseException | None
) -> tuple[str, bytes, dict[str, Any]]:
    """(answer code, answer body, error detail) for a message that is refused or not applied."""
    reason = _reason(exc)
    if kind == "hl7v2":
        error = exc if isinstance(exc, HL7Error) else HL7Error(reason)
        hl7_ident = ident if isinstance(ident, intake_hl7.IdentifiedHL7Message) else None
        return error.ack_code, intake_hl7.failure_ack(raw, hl7_ident, error), error.to_dict()
    if isinstance(exc, NotificationError):
        body = intake_fhir.outcome_answer(exc.reason, code=exc.code, expression=exc.expression)
        code = "forbidden" if isinstance(exc, intake_fhir.ForbiddenEntry) else "rejected"
        return code, body, {"reason": exc.reason, "code": exc.code}
    body = intake_fhir.outcome_answer(reason)
    if isinstance(exc, GatewayError):
        body = orjson.dumps(exc.outcome())
    return "forbidden" if isinstance(exc, Forbidden) else "fatal-error", body, {"reason": reason}


def _reason(exc: BaseException | None) -> str:
    if isinstance(exc, HL7Error | NotificationError):
        return exc.reason
    if isinstance(exc, GatewayError):
        return exc.message
    return f"internal error ({exc.__class__.__name__}); the server log has the details"


def _lock_key(patient_key: str | None, message_key: str | None, message_id: int) -> str:
    """What serialises a message's intake: its patient, else its own key or id."""
    return patient_key or message_key or f"message:{message_id}"
