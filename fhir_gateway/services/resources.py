"""FHIR interactions on one resource: the rules of create, update, patch and delete, including
their conditional forms. Used by the REST routes and by batch/transaction processing alike; each
function works inside the caller's session and leaves committing to whoever owns the transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qsl, urlencode

from sqlalchemy.orm import Session

from adapters.terminology import normalise_patient_languages
from fhir_gateway import hooks
from fhir_gateway.context import Caller
from fhir_gateway.errors import (
    Forbidden,
    Gone,
    InvalidRequest,
    Issue,
    NotFound,
    PreconditionFailed,
    UnknownType,
)
from fhir_gateway.fhir.numbers import MAX_INT32, whole_number
from fhir_gateway.fhir.patch import apply_fhirpath_patch, apply_json_patch
from fhir_gateway.fhir.types import is_supported
from fhir_gateway.fhir.validation import validate_resource
from fhir_gateway.hooks import WriteEvent
from fhir_gateway.search.registry import get_registry
from fhir_gateway.settings import Settings
from fhir_gateway.store import quick_search as store_quick
from fhir_gateway.store import repository as repo
from fhir_gateway.store import search as store_search
from fhir_gateway.store import visibility
from fhir_gateway.store.budget import Budget
from fhir_gateway.store.db import Database
from fhir_gateway.store.read_ahead import Prefetched
from fhir_gateway.store.repository import RawResource, StoredResource
from fhir_gateway.store.search import match_ids

__all__ = [
    "WriteResult",
    "check_type",
    "read",
    "read_raw",
    "vread",
    "search",
    "create",
    "create_patched",
    "may_create",
    "update",
    "update_many",
    "conditional_update",
    "patch",
    "conditional_patch",
    "delete",
    "conditional_delete",
    "search_params",
    "served",
    "restricted",
    "shaped_for",
    "answer_for",
    "StoredResource",
    "read_served",
    "vread_served",
]

JSON_PATCH = "application/json-patch+json"


@dataclass(slots=True)
class WriteResult:
    status: int
    stored: StoredResource | None = None
    issues: list[Issue] = field(default_factory=list)

    @property
    def created(self) -> bool:
        return self.status == 201


def check_type(res_type: str) -> None:
    if not is_supported(res_type):
        raise UnknownType(f"Resource type '{res_type}' is not supported by this server")


def _require(caller: Caller, res_type: str, action: str) -> None:
    if not caller.can(res_type, action):
        raise Forbidden(f"Not permitted: {action} on {res_type}")


def search_params(query: str) -> list[tuple[str, str]]:
    return parse_qsl(query, keep_blank_values=True)


def _prepare(resource: Any, res_type: str) -> dict[str, Any]:
    if not isinstance(resource, dict):
        raise InvalidRequest("The body must be a FHIR resource (a JSON object)")
    validate_resource(resource, expected_type=res_type)
    if res_type == "SearchParameter":
        _register_search_parameter(resource)
    return _normalised(resource)


def _new_doc(resource: Any, res_type: str) -> dict[str, Any]:
    doc = _prepare(resource, res_type)
    return {k: v for k, v in doc.items() if k != "id"}  # the server assigns ids on create


def _check_body_type(resource: Any, res_type: str) -> None:
    if not isinstance(resource, dict):
        raise InvalidRequest("The body must be a FHIR resource (a JSON object)")
    if resource.get("resourceType") != res_type:
        raise InvalidRequest(
            f"resourceType is {resource.get('resourceType')!r}, expected {res_type!r}",
            expression=["resourceType"],
        )


def _normalised(resource: dict[str, Any]) -> dict[str, Any]:
    """What every door stores in one form: a Patient's languages as BCP-47 tags (``eng`` → ``en``,
    the sender's code kept), as the HL7 v2 mapping writes them."""
    if resource.get("resourceType") == "Patient":
        return normalise_patient_languages(resource)
    return resource


def _register_search_parameter(resource: dict[str, Any]) -> None:
    """A SearchParameter that could not be used is refused; one that can counts once its
    transaction commits (store/search_parameters.py), existing data after ``reindex``."""
    try:
        get_registry().check(resource)
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidRequest(
            f"The SearchParameter cannot be used: {exc}", expression=["SearchParameter.expression"]
        ) from exc


# --- read -------------------------------------------------------------------------------------


def read(
    session: Session,
    res_type: str,
    res_id: str,
    caller: Caller,
    *,
    stored: StoredResource | None = None,
) -> StoredResource:
    """``stored``: its current row, just read by the caller in this transaction (else read here)."""
    check_type(res_type)
    _require(caller, res_type, "r")
    stored = stored if stored is not None else repo.read(session, res_type, res_id)
    if stored is None or _hidden(session, caller, res_type, res_id, stored.deleted):
        raise NotFound(f"{res_type}/{res_id} is not known")
    if stored.deleted:
        raise Gone(f"{res_type}/{res_id} was deleted", headers={"ETag": stored.etag})
    return stored


def _hidden(session: Session, caller: Caller, res_type: str, res_id: str, deleted: bool) -> bool:
    # What a caller may not see does not exist for it (404, not 403: no hint that it exists).
    if not visibility.current().restricted(caller):
        return False
    return deleted or not visibility.is_visible(session, caller, res_type, res_id)


def restricted(caller: Caller) -> bool:
    """Whether the row policy checks rows and shapes copies for this caller."""
    return visibility.current().restricted(caller)


def shaped_for(
    caller: Caller, stored: StoredResource, session: Session | None = None
) -> StoredResource:
    """The current version as this caller may receive it (a write's answer, say); given a
    session, with what the copy rests on (the consent of a Part 2 disclosure, accounted for)."""
    policy = visibility.current()
    if not policy.restricted(caller) or stored.deleted:
        return stored
    return replace(stored, content=policy.serve(caller, stored.content, session))


def answer_for(session: Session, caller: Caller, stored: StoredResource) -> StoredResource:
    """``shaped_for`` in its own read transaction, after the write committed."""
    return shaped_for(caller, stored, session)


def served(session: Session, caller: Caller, stored: StoredResource) -> StoredResource:
    """The copy of ``stored`` this caller receives (the row policy's redaction and obligations)."""
    policy = visibility.current()
    if not policy.restricted(caller) or stored.deleted:
        return stored
    content = policy.serve_version(session, caller, stored)
    if content is None:
        raise NotFound(f"{stored.relative} has no version {stored.version_id} for you")
    return replace(stored, content=content)


def read_served(session: Session, res_type: str, res_id: str, caller: Caller) -> StoredResource:
    return served(session, caller, read(session, res_type, res_id, caller))


def vread_served(
    session: Session, res_type: str, res_id: str, version: str, caller: Caller
) -> StoredResource:
    return served(session, caller, vread(session, res_type, res_id, version, caller))


def read_raw(db: Database, res_type: str, res_id: str, caller: Caller) -> RawResource:
    """The hottest path: the stored bytes, with no parse, no validation and no ORM session."""
    check_type(res_type)
    _require(caller, res_type, "r")
    raw = repo.read_raw(db, res_type, res_id)
    if raw is None:
        raise NotFound(f"{res_type}/{res_id} is not known")
    if raw.deleted:
        raise Gone(f"{res_type}/{res_id} was deleted", headers={"ETag": f'W/"{raw.version_id}"'})
    return raw


def vread(
    session: Session, res_type: str, res_id: str, version: str, caller: Caller
) -> StoredResource:
    check_type(res_type)
    _require(caller, res_type, "r")
    number = whole_number(version, ceiling=MAX_INT32 + 1)
    if number is None or number > MAX_INT32:  # no such version: the column holds none larger
        raise NotFound(f"{res_type}/{res_id} has no version '{version[:20]}'")
    stored = repo.vread(session, res_type, res_id, number)
    if stored is None or _hidden(session, caller, res_type, res_id, False):
        raise NotFound(f"{res_type}/{res_id} has no version {version}")
    if stored.deleted:
        raise Gone(f"Version {version} of {res_type}/{res_id} is a deletion")
    return stored


def search(
    db: Database,
    res_type: str | None,
    params: list[tuple[str, str]],
    *,
    caller: Caller,
    base_url: str,
    settings: Settings,
    strict: bool = False,
    budget: Budget | None = None,
) -> bytes:
    """A search, as the searchset Bundle's bytes (``store.search.search``)."""
    return store_search.search(
        db,
        res_type,
        params,
        caller=caller,
        base_url=base_url,
        settings=settings,
        strict=strict,
        budget=budget,
    )


def quick_search(
    db: Database,
    res_type: str,
    params: list[tuple[str, str]],
    *,
    caller: Caller,
    base_url: str,
    settings: Settings,
    within: float,
    strict: bool = False,
) -> bytes | None:
    """``search``'s bytes if the search is quick, else None (``store.quick_search``)."""
    return store_quick.quick_search(
        db,
        res_type,
        params,
        caller=caller,
        base_url=base_url,
        settings=settings,
        within=within,
        strict=strict,
    )


# --- create -----------------------------------------------------------------------------------


def create(
    session: Session,
    res_type: str,
    resource: Any,
    caller: Caller,
    *,
    if_none_exist: str | None = None,
    res_id: str | None = None,
    searched: bool = False,
    matched: str | None = None,
    claimed: str | None = None,
    matched_row: StoredResource | None = None,
) -> WriteResult:
    """POST, with ``If-None-Exist`` made race-safe by a unique key (see claim_conditional_key).

    ``searched``: the caller has just searched ``if_none_exist`` in this transaction and found
    nothing, so it is not searched again (the key still guards against a concurrent create).
    ``matched``: that search found this one id (as the caller), which is read, not searched
    (``matched_row``: its row, read ahead in this transaction).
    ``claimed``: the caller has claimed the criteria's key for ``res_id`` already (with the
    other keys of its Bundle): the id that owns it (``repo.claim_conditional_keys``)."""
    check_type(res_type)
    _require(caller, res_type, "c")
    if not if_none_exist:
        return _store_new(session, caller, _new_doc(resource, res_type), res_id)
    params = search_params(if_none_exist.lstrip("?"))
    if not params:
        raise InvalidRequest("If-None-Exist has no search parameters")
    existing = None
    if matched is not None:
        existing = matched_row if matched_row is not None else repo.read(session, res_type, matched)
        existing = existing if existing is not None and not existing.deleted else None
    if existing is None and not searched:
        existing = _single_match(session, res_type, params, caller, "If-None-Exist")
    if existing is not None:  # the body is ignored (FHIR): not validated either, only its type
        _check_body_type(resource, res_type)
        return WriteResult(200, existing)
    doc = _new_doc(resource, res_type)
    criteria = urlencode(sorted(params))
    new_id = res_id or repo.new_id()
    owner = (
        claimed
        if claimed is not None and res_id is not None
        else repo.claim_conditional_key(session, res_type, criteria, new_id)
    )
    if owner != new_id:
        stored = repo.read(session, res_type, owner)
        if stored is not None and not stored.deleted:
            if _hidden(session, caller, res_type, owner, False):  # not its to see, nor to re-create
                raise Forbidden(f"Not permitted: c on {res_type}")
            return WriteResult(200, stored)
        if not repo.release_conditional_key(session, res_type, criteria, owner, new_id):
            return create(session, res_type, resource, caller, if_none_exist=if_none_exist)
    return _store_new(session, caller, doc, new_id)


def create_patched(
    session: Session,
    res_type: str,
    resource: Any,
    body: Any,
    content_type: str,
    caller: Caller,
    *,
    if_none_exist: str,
    res_id: str | None,
    claimed: str | None = None,
) -> WriteResult:
    """A conditional create whose criteria matched nothing, with the patch that follows it in the
    same Bundle (``POST Type ifNoneExist=q`` + ``PATCH Type?q``) applied before it is stored: one
    version holding both, validated, checked and indexed once. The caller needs the rights of
    both writes, as for the two entries."""
    patched = _patched_stub(res_type, resource, body, content_type, caller)
    return create(
        session,
        res_type,
        patched,
        caller,
        if_none_exist=if_none_exist,
        res_id=res_id,
        searched=True,
        claimed=claimed,
    )


def _patched_stub(
    res_type: str, resource: Any, body: Any, content_type: str, caller: Caller
) -> dict[str, Any]:
    check_type(res_type)
    _require(caller, res_type, "u")
    if not isinstance(resource, dict):
        raise InvalidRequest("The body must be a FHIR resource (a JSON object)")
    stub = {k: v for k, v in resource.items() if k != "id"}
    patched = _apply_patch(stub, body, content_type)
    if patched.get("resourceType") != res_type or "id" in patched:
        raise InvalidRequest("A patch may not change resourceType or id")
    return patched


@dataclass(slots=True)
class CheckedWrite:
    """A write checked (the caller's rights, validation, the rules' checks) and not yet stored:
    a new resource under an id its writer minted, claimed or knows to be free, or a change of
    the ``current`` row it read. ``store_checked`` stores several together."""

    res_id: str
    doc: dict[str, Any]  # as the checks left it (their labels on it)
    event: WriteEvent
    warnings: list[Issue]
    method: str = "POST"  # as the history records it
    current: StoredResource | None = None  # the row a change replaces; None: a create


def check_patched_create(
    session: Session,
    res_type: str,
    resource: Any,
    body: Any,
    content_type: str,
    caller: Caller,
    *,
    res_id: str,
) -> CheckedWrite:
    """What ``create_patched`` does before it stores, when the criteria's key is already claimed
    for ``res_id``: the patch applied, the result validated and checked (the caller's rights,
    the rules' checks)."""
    patched = _patched_stub(res_type, resource, body, content_type, caller)
    _require(caller, res_type, "c")
    doc = _prepare(patched, res_type)
    event = WriteEvent(session, caller, res_type, "create", None, doc)
    return CheckedWrite(res_id, doc, event, hooks.run_checks(event))


def check_put_create(
    session: Session, res_type: str, res_id: str, resource: Any, caller: Caller
) -> CheckedWrite:
    """What ``update`` does before it stores, for an id its caller read to be free (a message's
    new MessageHeader and Provenance)."""
    check_type(res_type)
    _require(caller, res_type, "u")
    doc = _prepare(resource, res_type)
    _check_body_id(doc, res_type, res_id)
    _require(caller, res_type, "c")
    event = WriteEvent(session, caller, res_type, "create", None, doc)
    return CheckedWrite(res_id, doc, event, hooks.run_checks(event), method="PUT")


def check_patch(
    session: Session,
    res_type: str,
    res_id: str,
    body: Any,
    content_type: str,
    caller: Caller,
    *,
    if_match: int | None = None,
    current: StoredResource | None = None,
) -> CheckedWrite:
    """What ``patch`` does before it stores. ``current``: as for ``read``."""
    check_type(res_type)
    _require(caller, res_type, "u")
    current = read(session, res_type, res_id, caller, stored=current)
    if if_match is not None and current.version_id != if_match:
        raise PreconditionFailed(
            f"If-Match version {if_match} does not match current version {current.version_id}"
        )
    patched = _apply_patch(current.content, body, content_type)
    if patched.get("resourceType") != res_type or patched.get("id") != res_id:
        raise InvalidRequest("A patch may not change resourceType or id")
    if patched != current.content:  # what changes nothing was validated when it was stored
        validate_resource(patched, expected_type=res_type)
    doc = _normalised(patched)
    event = WriteEvent(session, caller, res_type, "patch", current, doc, if_match)
    return CheckedWrite(res_id, doc, event, hooks.run_checks(event), "PATCH", current)


def store_checked(session: Session, checked: list[CheckedWrite]) -> list[WriteResult]:
    """Checked writes stored together (the new resources in one multi-row statement per table,
    the changes in another, each guarded by the version its writer read), then their
    consequences, batch rules once for them all; a change that changes nothing has none."""
    stored: dict[int, StoredResource] = {}  # by position in ``checked``
    new = [i for i, c in enumerate(checked) if c.current is None]
    docs = [{**checked[i].doc, "id": checked[i].res_id} for i in new]
    made = repo.create_many(session, docs, methods=[checked[i].method for i in new])
    stored.update(zip(new, made, strict=True))
    changes = [i for i, c in enumerate(checked) if c.current is not None]
    for method in dict.fromkeys(checked[i].method for i in changes):
        same = [i for i in changes if checked[i].method == method]
        pairs = [(c.doc, c.current) for c in (checked[i] for i in same) if c.current is not None]
        written = [s for s, _ in repo.update_many(session, pairs, method=method)]
        stored.update(zip(same, written, strict=True))
    effective: list[hooks.Written] = [
        (c.event, stored[i])
        for i, c in enumerate(checked)
        if c.current is None or stored[i].version_id != c.current.version_id
    ]
    hooks.run_consequences_many(effective)
    return [
        WriteResult(201 if c.current is None else 200, stored[i], c.warnings)
        for i, c in enumerate(checked)
    ]


def criteria_key(if_none_exist: str) -> str:
    """The criteria of an ``If-None-Exist`` (or a conditional update's query) as its conditional
    key stores them: sorted and encoded again, one key for the same criteria in any order."""
    return urlencode(sorted(search_params(if_none_exist.lstrip("?"))))


def may_create(caller: Caller, res_type: str) -> None:
    """Refuse (403) a caller without the right to create ``res_type``."""
    check_type(res_type)
    _require(caller, res_type, "c")


def _store_new(
    session: Session, caller: Caller, doc: dict[str, Any], res_id: str | None
) -> WriteResult:
    event = WriteEvent(session, caller, doc["resourceType"], "create", None, doc)
    warnings = hooks.run_checks(event)
    stored = repo.create_resource(session, doc, res_id=res_id)
    hooks.run_consequences(event, stored)
    return WriteResult(201, stored, warnings)


def _store_change(
    session: Session,
    caller: Caller,
    doc: dict[str, Any],
    res_id: str,
    current: StoredResource | None,
    *,
    if_match: int | None,
    interaction: str,
    client_if_match: int | None = None,
) -> WriteResult:
    live = current if current is not None and not current.deleted else None
    if if_match is not None and (live is None or live.version_id != if_match):
        # a stale precondition fails first (412), before any rule looks at a change that is moot
        have = "none" if live is None else live.version_id
        raise PreconditionFailed(
            f"If-Match version {if_match} does not match current version {have}"
        )
    asked = (
        if_match if interaction != "patch" else client_if_match
    )  # a patch is always applied conditionally
    event = WriteEvent(
        session, caller, doc["resourceType"], interaction if live else "create", live, doc, asked
    )
    warnings = hooks.run_checks(event)
    method = "PATCH" if interaction == "patch" else "PUT"
    stored, created = repo.update_resource(
        session, doc, res_id, if_match=if_match, method=method, current=current
    )
    if live is None or stored.version_id != live.version_id:  # an unchanged update has no effects
        hooks.run_consequences(event, stored)
    return WriteResult(201 if created else 200, stored, warnings)


def _single_match(
    session: Session, res_type: str, params: list[tuple[str, str]], caller: Caller, what: str
) -> StoredResource | None:
    ids = match_ids(session, res_type, params, caller=caller, limit=2)
    if len(ids) > 1:
        raise PreconditionFailed(f"{what} matches more than one {res_type}")
    return repo.read(session, res_type, ids[0]) if ids else None


# --- update -----------------------------------------------------------------------------------


def update(
    session: Session,
    res_type: str,
    res_id: str,
    resource: Any,
    caller: Caller,
    *,
    if_match: int | None = None,
    current: StoredResource | None | object = repo.UNREAD,
) -> WriteResult:
    """PUT Type/id. ``current``: its row (None: none), read in this transaction by the caller;
    the write is guarded by its version all the same (``repo.update_resource``), but only a row
    read for update makes a concurrent writer wait rather than fail."""
    check_type(res_type)
    _require(caller, res_type, "u")
    doc = _prepare(resource, res_type)
    _check_body_id(doc, res_type, res_id)
    existing = (
        repo.read(session, res_type, res_id, for_update=True) if current is repo.UNREAD else current
    )
    assert existing is None or isinstance(existing, StoredResource)
    if (
        existing is None
        or existing.deleted
        or _hidden(session, caller, res_type, res_id, existing.deleted)
    ):
        _require(caller, res_type, "c")  # hidden: refused exactly as the create of a missing id
    return _store_change(
        session, caller, doc, res_id, existing, if_match=if_match, interaction="update"
    )


def _check_body_id(doc: dict[str, Any], res_type: str, res_id: str) -> None:
    body_id = doc.get("id")
    if body_id is None:
        raise InvalidRequest(
            "An update must carry the resource id in the body", expression=[f"{res_type}.id"]
        )
    if body_id != res_id:
        raise InvalidRequest(
            f"The id in the body ({body_id}) differs from the id in the URL ({res_id})",
            expression=[f"{res_type}.id"],
        )


def update_many(
    session: Session,
    resources: list[Any],
    caller: Caller,
    *,
    validate: bool = True,
) -> list[WriteResult]:
    """PUT of several resources, each carrying its id, as ``update`` would store them one after
    the other (the same rights, checks, versions and consequences), but written together: each
    run of resources of one type is read in one query, checked, its new ones created and its
    changed ones updated in one multi-row statement per table, and its consequences run then,
    with the batch rules called once for the run. Runs go in the order given, so a resource's
    rules see those before it stored, as they would one by one (a plan's Tasks its requests).

    ``validate=False``: stored resources that an engine changed only in fields it sets to fixed
    valid values (a status, a text note, a reference to a resource it stored): they were
    validated when stored, and nothing was added that a validator could refuse, so they are not
    validated again."""
    docs = [_prepared_for_update(resource, caller, validate=validate) for resource in resources]
    keys = list(dict.fromkeys((d["resourceType"], d["id"]) for d in docs))
    ahead = Prefetched.read(session, keys, for_update=True) if len(docs) > 1 else None
    results: list[WriteResult] = []
    run: list[dict[str, Any]] = []
    for doc in docs:
        if run and (
            doc["resourceType"] != run[0]["resourceType"] or any(d["id"] == doc["id"] for d in run)
        ):  # a new type, or a second write of one id: it sees the first stored
            results += _store_run(session, caller, run, ahead)
            run = []
        run.append(doc)
    return results + (_store_run(session, caller, run, ahead) if run else [])


def _prepared_for_update(resource: Any, caller: Caller, *, validate: bool) -> dict[str, Any]:
    res_type = resource.get("resourceType") if isinstance(resource, dict) else None
    if not isinstance(res_type, str):
        raise InvalidRequest("The body must be a FHIR resource (a JSON object)")
    check_type(res_type)
    _require(caller, res_type, "u")
    doc = (
        _prepare(resource, res_type)
        if validate or res_type == "SearchParameter"
        else _normalised(resource)
    )
    if not doc.get("id"):
        raise InvalidRequest(
            "An update must carry the resource id in the body", expression=[f"{res_type}.id"]
        )
    return doc


def _store_run(
    session: Session, caller: Caller, docs: list[dict[str, Any]], ahead: Prefetched | None
) -> list[WriteResult]:
    """Resources of one type: read together, checked, written, then their consequences.
    ``ahead``: the rows of every run, read at once, used while still current (a run's rules
    may have written the next run's type meanwhile: it is read again)."""
    res_type = docs[0]["resourceType"]
    existing = _current_rows(session, res_type, docs, ahead)
    planned: list[tuple[dict[str, Any], StoredResource | None, WriteEvent, list[Issue]]] = []
    for doc in docs:
        current = existing.get((res_type, doc["id"]))
        if (
            current is None
            or current.deleted
            or _hidden(session, caller, res_type, doc["id"], False)
        ):
            _require(caller, res_type, "c")  # as ``update``: a missing or hidden id is a create
        live = current if current is not None and not current.deleted else None
        event = WriteEvent(session, caller, res_type, "update" if live else "create", live, doc)
        planned.append((doc, current, event, hooks.run_checks(event)))
    created = iter(repo.create_many(session, [d for d, current, *_ in planned if current is None]))
    updated = iter(repo.update_many(session, [(d, c) for d, c, *_ in planned if c is not None]))
    results: list[WriteResult] = []
    written: list[hooks.Written] = []
    for _doc, current, event, warnings in planned:
        stored, new = (next(created), True) if current is None else next(updated)
        if event.before is None or stored.version_id != event.before.version_id:
            written.append((event, stored))  # an unchanged update has no effects
        results.append(WriteResult(201 if new else 200, stored, warnings))
    hooks.run_consequences_many(written)
    return results


def _current_rows(
    session: Session, res_type: str, docs: list[dict[str, Any]], ahead: Prefetched | None
) -> dict[tuple[str, str], StoredResource]:
    keys = [(res_type, d["id"]) for d in docs]
    known = [ahead.current(session, *key) for key in keys] if ahead is not None else []
    if not known or any(row is repo.UNREAD for row in known):
        return repo.read_keys(session, keys, for_update=True)
    return {
        key: row for key, row in zip(keys, known, strict=True) if isinstance(row, StoredResource)
    }


def conditional_update(
    session: Session,
    res_type: str,
    params: list[tuple[str, str]],
    resource: Any,
    caller: Caller,
    *,
    if_match: int | None = None,
    new_id: str | None = None,
) -> WriteResult:
    """PUT Type?criteria: none → create (with the body's id, else ``new_id``, else a fresh one),
    one → update it, more → 412."""
    check_type(res_type)
    doc = _prepare(resource, res_type)
    existing = _single_match(session, res_type, params, caller, "The conditional update")
    if existing is None:
        if doc.get("id"):
            return update(session, res_type, doc["id"], doc, caller, if_match=if_match)
        return create(session, res_type, doc, caller, res_id=new_id)
    if doc.get("id") and doc["id"] != existing.res_id:
        raise InvalidRequest(
            f"The body's id ({doc['id']}) differs from the matched resource ({existing.res_id})",
            expression=[f"{res_type}.id"],
        )
    return update(
        session,
        res_type,
        existing.res_id,
        {**doc, "id": existing.res_id},
        caller,
        if_match=if_match,
    )


# --- patch ------------------------------------------------------------------------------------


def patch(
    session: Session,
    res_type: str,
    res_id: str,
    body: Any,
    content_type: str,
    caller: Caller,
    *,
    if_match: int | None = None,
    current: StoredResource | None = None,
) -> WriteResult:
    """``current``: as for ``read``. The write is guarded by its version all the same."""
    checked = check_patch(
        session, res_type, res_id, body, content_type, caller, if_match=if_match, current=current
    )
    live = checked.current
    assert live is not None
    stored, created = repo.update_resource(
        session, checked.doc, res_id, if_match=live.version_id, method="PATCH", current=live
    )
    if stored.version_id != live.version_id:  # a patch that changes nothing has no effects
        hooks.run_consequences(checked.event, stored)
    return WriteResult(201 if created else 200, stored, checked.warnings)


def _apply_patch(content: dict[str, Any], body: Any, content_type: str) -> dict[str, Any]:
    if content_type.startswith(JSON_PATCH):
        if not isinstance(body, list):
            raise InvalidRequest("A JSON Patch body must be an array of operations")
        return apply_json_patch(content, body)
    if isinstance(body, dict) and body.get("resourceType") == "Parameters":
        return apply_fhirpath_patch(content, body)
    raise InvalidRequest(
        "PATCH takes a JSON Patch (application/json-patch+json) or a FHIRPath Patch Parameters resource"
    )


def conditional_patch(
    session: Session,
    res_type: str,
    params: list[tuple[str, str]],
    body: Any,
    content_type: str,
    caller: Caller,
    *,
    if_match: int | None = None,
) -> WriteResult:
    check_type(res_type)
    existing = _single_match(session, res_type, params, caller, "The conditional patch")
    if existing is None:
        raise NotFound(f"No {res_type} matches the conditional patch")
    return patch(session, res_type, existing.res_id, body, content_type, caller, if_match=if_match)


# --- delete -----------------------------------------------------------------------------------


def delete(session: Session, res_type: str, res_id: str, caller: Caller) -> WriteResult:
    """Versioned tombstone; deleting something absent or already deleted is fine (204/200)."""
    check_type(res_type)
    _require(caller, res_type, "d")
    previous = repo.read(session, res_type, res_id, for_update=True)
    if (
        previous is None
        or previous.deleted
        or _hidden(session, caller, res_type, res_id, previous.deleted)
    ):
        return WriteResult(204)  # hidden: nothing to delete, as for a missing id
    event = WriteEvent(session, caller, res_type, "delete", previous, None)
    warnings = hooks.run_checks(event)
    stored = repo.delete_resource(session, res_type, res_id)
    if res_type == "SearchParameter":
        get_registry().remove(previous.content)
    hooks.run_consequences(event, stored)
    return WriteResult(200, stored, warnings)


def conditional_delete(
    session: Session, res_type: str, params: list[tuple[str, str]], caller: Caller
) -> WriteResult:
    check_type(res_type)
    _require(caller, res_type, "d")
    if not params:
        raise PreconditionFailed("A conditional delete needs search criteria")
    existing = _single_match(session, res_type, params, caller, "The conditional delete")
    if existing is None:
        return WriteResult(204)
    return delete(session, res_type, existing.res_id, caller)
