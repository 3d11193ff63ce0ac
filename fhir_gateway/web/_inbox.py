"""The partner inbox as use cases: a page of referral cards (filtered by state, deadline and
service, sorted by deadline or by when they arrived), and what a partner does with a referral:
accept (or claim), reject, start, complete, close without completing, and write to the case
manager.

The page is one FHIR search of Tasks with the user's Caller (``Task?status=…&due-date=…&
focus:ServiceRequest.code=…&_sort=due-date&_count=20``, with the ServiceRequests and Patients
included), paged with the search's own keyset cursor, and one search of the latest messages on
those Tasks (``Communication?based-on=…&_sort=-sent``), so hundreds of cards cost a fixed number
of bounded queries per page and the row policy decides every row and copy. Every change goes through
``services.resources`` with the same Caller: the Task state machine, owner rights, the outcome
codes' check and the message rules of the workflow apply exactly as on the API; nothing here
decides who may do what.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import orjson
from sqlalchemy.orm import Session

from fhir_gateway import clock
from fhir_gateway.context import Caller
from fhir_gateway.errors import InvalidRequest
from fhir_gateway.services import resources
from fhir_gateway.settings import Settings
from fhir_gateway.store.search import search_bundle
from fhir_gateway.web._cards import Card, card_of, contact_of, messages_of
from fhir_gateway.web._display import Display, Names
from fhir_gateway.workflow import (
    close_reason,
    completion_outputs,
    coordinators_of,
    new_message,
    referral_of,
    reject_reason,
)

__all__ = [
    "InboxQuery",
    "InboxPage",
    "inbox_page",
    "accept",
    "reject",
    "start",
    "complete",
    "close",
    "send_message",
    "STATES",
    "DUE",
    "SORTS",
    "PAGE_SIZE",
    "MESSAGES_PER_PAGE",
]

PAGE_SIZE = 20
MESSAGES_PER_PAGE = 200  # the latest messages shown on a page of cards
# filter value → (words, the Task statuses)
STATES: dict[str, tuple[str, str]] = {
    "open": ("All open", "requested,accepted,in-progress,on-hold"),
    "new": ("New", "requested"),
    "active": ("Accepted and in progress", "accepted,in-progress,on-hold"),
    "closed": ("Closed", "completed,rejected,failed,cancelled"),
}
DUE: dict[str, tuple[str, timedelta | None]] = {
    "any": ("Any deadline", None),
    "overdue": ("Overdue", timedelta(0)),
    "2d": ("Due within 2 days", timedelta(days=2)),
    "7d": ("Due within 7 days", timedelta(days=7)),
}
SORTS: dict[str, tuple[str, str]] = {
    "deadline": ("Deadline, soonest first", "due-date"),
    "received": ("Received, newest first", "-modified,-authored-on"),
}
_SERVICE_LIMIT = 300


@dataclass(frozen=True, slots=True)
class InboxQuery:
    """What the partner asked to see (the page's query string), checked."""

    state: str = "open"
    due: str = "any"
    service: str = ""  # "system|code" of a service the partner offers, or "" for all
    sort: str = "deadline"
    cursor: str = ""

    @classmethod
    def parse(cls, args: Mapping[str, str]) -> InboxQuery:
        query = cls(
            state=args.get("state") or "open",
            due=args.get("due") or "any",
            service=(args.get("service") or "")[:_SERVICE_LIMIT],
            sort=args.get("sort") or "deadline",
            cursor=args.get("page") or "",
        )
        for name, allowed in (("state", STATES), ("due", DUE), ("sort", SORTS)):
            if getattr(query, name) not in allowed:
                raise InvalidRequest(
                    f"The inbox cannot show {name}={getattr(query, name)[:40]!r}; "
                    f"choose one of: {', '.join(allowed)}"
                )
        return query

    def link(self, *, page: str = "", **changes: str) -> str:
        """The inbox URL for this query with ``changes``, at ``page`` (a page token of the search;
        none: the first page, where a new filter or sort starts)."""
        query = replace(self, cursor=page, **changes)
        args = {
            "state": query.state,
            "due": query.due,
            "service": query.service,
            "sort": query.sort,
            "page": query.cursor,
        }
        defaults = {"state": "open", "due": "any", "service": "", "sort": "deadline", "page": ""}
        kept = {k: v for k, v in args.items() if v != defaults[k]}
        return "/web/inbox" + (f"?{urlencode(kept)}" if kept else "")


@dataclass(slots=True)
class InboxPage:
    query: InboxQuery
    cards: list[Card]
    total: int
    counts: dict[str, int]
    services: list[tuple[str, str]]  # (system|code, words) the partner offers
    next_page: str | None = None
    previous_page: str | None = None


def _criteria(query: InboxQuery, state: str) -> list[tuple[str, str]]:
    params = [("status", STATES[state][1])]
    window = DUE[query.due][1]
    if window is not None:
        now = clock.now()
        stamp = "%Y-%m-%dT%H:%M:%SZ"
        if window:
            params += [("due-date", f"ge{now:{stamp}}"), ("due-date", f"le{now + window:{stamp}}")]
        else:
            params.append(("due-date", f"lt{now:{stamp}}"))
    if query.service:
        params.append(("focus:ServiceRequest.code", query.service))
    return params


def _search(
    session: Session, caller: Caller, settings: Settings, params: list[tuple[str, str]]
) -> dict[str, Any]:
    body = search_bundle(session, "Task", params, caller=caller, base_url="", settings=settings)
    return dict(orjson.loads(body))


def _messages(
    session: Session, caller: Caller, settings: Settings, task_refs: list[str]
) -> list[dict[str, Any]]:
    """The latest messages on a page's referrals (at most ``MESSAGES_PER_PAGE``, a bound)."""
    if not task_refs:
        return []
    params = [
        ("based-on", ",".join(task_refs)),
        ("_sort", "-sent"),
        ("_count", str(MESSAGES_PER_PAGE)),
    ]
    body = search_bundle(
        session, "Communication", params, caller=caller, base_url="", settings=settings
    )
    return [e["resource"] for e in orjson.loads(body).get("entry") or [] if "resource" in e]


def _cursor(bundle: dict[str, Any], relation: str) -> str | None:
    for link in bundle.get("link") or []:
        if link.get("relation") == relation:
            values = parse_qs(urlsplit(str(link.get("url"))).query).get("_cursor")
            return values[0] if values else None
    return None


def _services(session: Session, caller: Caller, settings: Settings) -> list[tuple[str, str]]:
    """The services the partner's active HealthcareServices offer (the service filter's choices)."""
    if not caller.organization:
        return []
    body = search_bundle(
        session,
        "HealthcareService",
        [("organization", caller.organization), ("active", "true"), ("_count", "100")],
        caller=caller,
        base_url="",
        settings=settings,
    )
    found: dict[str, str] = {}
    for entry in orjson.loads(body).get("entry") or []:
        for concept in entry["resource"].get("type") or []:
            for coding in concept.get("coding") or []:
                if coding.get("system") and coding.get("code"):
                    key = f"{coding['system']}|{coding['code']}"
                    words = coding.get("display") or concept.get("text")
                    found.setdefault(
                        key, words or str(coding["code"]).replace("-", " ").capitalize()
                    )
    return sorted(found.items(), key=lambda item: item[1].lower())


def inbox_page(
    session: Session, caller: Caller, settings: Settings, query: InboxQuery
) -> InboxPage:
    services = _services(session, caller, settings)
    if query.service and query.service not in dict(services):
        raise InvalidRequest("Choose one of the services your organisation offers.")
    params = [
        *_criteria(query, query.state),
        ("_sort", SORTS[query.sort][1]),
        ("_count", str(PAGE_SIZE)),
        ("_include", "Task:focus"),
        ("_include", "Task:patient"),
    ]
    if query.cursor:
        params.append(("_cursor", query.cursor))
    try:
        bundle = _search(session, caller, settings, params)
    except InvalidRequest as exc:
        if not query.cursor:
            raise
        raise InvalidRequest(
            "This page of the inbox no longer fits its filters; start again from the first page."
        ) from exc
    counts = {
        state: int(
            _search(
                session, caller, settings, [*_criteria(query, state), ("_summary", "count")]
            ).get("total")
            or 0
        )
        for state in STATES
    }
    page = InboxPage(
        query=query,
        cards=_cards(session, caller, settings, bundle),
        total=counts[query.state],
        counts=counts,
        services=services,
    )
    after, before = _cursor(bundle, "next"), _cursor(bundle, "previous")
    page.next_page = query.link(page=after) if after else None
    page.previous_page = query.link(page=before) if before else None
    return page


def _cards(
    session: Session, caller: Caller, settings: Settings, bundle: dict[str, Any]
) -> list[Card]:
    entries = [e for e in bundle.get("entry") or [] if "resource" in e]
    tasks = [e["resource"] for e in entries if (e.get("search") or {}).get("mode") == "match"]
    found = {
        f"{e['resource']['resourceType']}/{e['resource']['id']}": e["resource"] for e in entries
    }
    threads: dict[str, list[dict[str, Any]]] = {}
    for doc in _messages(session, caller, settings, [f"Task/{t['id']}" for t in tasks]):
        if task_ref := referral_of(doc):
            threads.setdefault(task_ref, []).append(doc)
    names = Names(session, caller)
    display = Display.for_settings(settings)
    coordinators = coordinators_of(session, tasks)
    names.prefetch(
        [
            *(c for c in coordinators.values() if c),
            *(
                (m.get("sender") or {}).get("reference")
                for thread in threads.values()
                for m in thread
            ),
        ]
    )
    cards = []
    for task in tasks:
        card = card_of(
            task,
            found.get(_ref(task, "focus") or ""),
            found.get(_ref(task, "for") or ""),
            names,
            display,
        )
        card.coordinator = contact_of(names, coordinators.get(task["id"]))
        card.messages = messages_of(
            threads.get(f"Task/{task['id']}", []),
            names,
            display,
            lambda sender: sender == caller.organization,
        )
        cards.append(card)
    return cards


def _ref(doc: dict[str, Any], name: str) -> str | None:
    value = doc.get(name)
    return value.get("reference") if isinstance(value, dict) else None


# -- actions: each one change of the Task, or one message, as the user -------------------------------


def accept(session: Session, caller: Caller, task_id: str, version: int) -> None:
    """Accept an owned referral, or claim an unassigned one (owner and status in one change)."""
    task = _current(session, caller, task_id)
    if not task.get("owner") and caller.organization:
        task["owner"] = {"reference": caller.organization}
    _change(session, caller, task, version, status="accepted")


def reject(
    session: Session, caller: Caller, task_id: str, version: int, reason: str, note: str
) -> None:
    _change(
        session,
        caller,
        _current(session, caller, task_id),
        version,
        status="rejected",
        statusReason=reject_reason(reason, _note(note)),
    )


def start(session: Session, caller: Caller, task_id: str, version: int) -> None:
    _change(session, caller, _current(session, caller, task_id), version, status="in-progress")


def complete(
    session: Session, caller: Caller, task_id: str, version: int, result: str, note: str
) -> None:
    task = _current(session, caller, task_id)
    output = [*(task.get("output") or []), *completion_outputs(result, _note(note))]
    _change(session, caller, task, version, status="completed", output=output)


def close(
    session: Session, caller: Caller, task_id: str, version: int, reason: str, note: str
) -> None:
    """Close a referral the partner took without completing it (``failed``, with a coded reason):
    the workflow puts its request on hold for the case manager; unable-to-contact also raises
    their work item."""
    _change(
        session,
        caller,
        _current(session, caller, task_id),
        version,
        status="failed",
        statusReason=close_reason(reason, _note(note)),
    )


def send_message(
    session: Session, caller: Caller, task_id: str, text: str, answering: str | None
) -> None:
    """A message to the referral's coordinator (the workflow refuses it unless the partner owns
    the referral, as for a referral that does not exist)."""
    task = _current(session, caller, task_id)
    coordinator = coordinators_of(session, [task]).get(task_id)
    doc = new_message(
        task,
        text,
        sender=caller.organization or "",
        recipient=coordinator,
        answering=answering or None,
    )
    resources.create(session, "Communication", doc, caller)


def _note(note: str) -> str:
    words = note.strip()
    if len(words) > 1000:
        raise InvalidRequest("A note holds at most 1000 characters.")
    return words


def _current(session: Session, caller: Caller, task_id: str) -> dict[str, Any]:
    return dict(resources.read(session, "Task", task_id, caller).content)


def _change(
    session: Session, caller: Caller, task: dict[str, Any], version: int, **changes: Any
) -> None:
    # If-Match with the version the page showed: a change made meanwhile (another user, the API,
    # a competing claim) makes this one fail with 412 instead of overwriting it.
    resources.update(session, "Task", task["id"], {**task, **changes}, caller, if_match=version)
