"""batch and transaction Bundles (FHIR R4 http.html#transaction).

A transaction is one database transaction: entries run in the order the specification gives
(DELETE, POST, PUT/PATCH, GET), ``urn:uuid:`` and conditional references are resolved before any
write, and the first failure rolls everything back. A batch runs each entry on its own, in a
savepoint, and reports each outcome.

In a transaction, a ``POST Type ifNoneExist=q`` and a ``PATCH`` (or ``PUT``) ``Type?q`` of the
same criteria, what the intake's mappings emit per resource, are one write (``_pair``): the
resource is created with the patch applied or patched once, each entry still answered.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson
from sqlalchemy.orm import Session

from fhir_gateway import clock, privacy, security
from fhir_gateway.context import Caller
from fhir_gateway.errors import (
    GatewayError,
    InvalidRequest,
    Issue,
    PayloadTooLarge,
    PreconditionFailed,
)
from fhir_gateway.fhir.numbers import MAX_INT32, whole_number
from fhir_gateway.fhir.references import (
    Reference,
    json_targets,
    reference_strings,
    replace_references,
)
from fhir_gateway.services import resources as svc
from fhir_gateway.services.resources import StoredResource, WriteResult
from fhir_gateway.settings import Settings
from fhir_gateway.store import repository as repo
from fhir_gateway.store import transaction_memo
from fhir_gateway.store.budget import Budget
from fhir_gateway.store.read_ahead import Prefetched
from fhir_gateway.store.search import match_ids, search_bundle

__all__ = ["process_bundle", "EntryRequest", "parse_entry_url"]

_ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}
_REASONS = {200: "OK", 201: "Created", 204: "No Content"}


@dataclass(slots=True)
class EntryRequest:
    index: int
    method: str
    res_type: str | None
    res_id: str | None
    version: str | None
    query: str
    full_url: str | None
    resource: Any
    if_none_exist: str | None
    if_match: int | None
    # A POST ifNoneExist=q and the PATCH Type?q of the same transaction: written as one (_fused)
    partner: EntryRequest | None = None


def parse_entry_url(url: str, base_url: str) -> tuple[str | None, str | None, str | None, str]:
    """'Patient/1/_history/2?x=y' (relative or under our base) → (type, id, version, query)."""
    if base_url and url.startswith(base_url):
        url = url[len(base_url) :]
    elif "://" in url:
        url = urlsplit(url).path + ("?" + urlsplit(url).query if urlsplit(url).query else "")
    path, _, query = url.lstrip("/").partition("?")
    parts = [p for p in path.split("/") if p]
    res_type = parts[0] if parts else None
    res_id = parts[1] if len(parts) > 1 else None
    version = parts[3] if len(parts) > 3 and parts[2] == "_history" else None
    return res_type, res_id, version, query


def _parse_if_match(value: str | None, where: str) -> int | None:
    if not value:
        return None
    text = value.strip().removeprefix("W/").strip('"')
    version = whole_number(text, ceiling=MAX_INT32 + 1)  # past any version: it cannot match
    if version is None:
        raise InvalidRequest(
            f'ifMatch must be an ETag like W/"3", not {value[:40]!r}', expression=[where]
        )
    return version


def _entry_requests(bundle: dict[str, Any], base_url: str) -> list[EntryRequest]:
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        raise InvalidRequest("Bundle.entry must be an array", expression=["Bundle.entry"])
    out = []
    for i, entry in enumerate(entries):
        where = f"Bundle.entry[{i}]"
        request = entry.get("request") if isinstance(entry, dict) else None
        if not isinstance(request, dict) or not request.get("method") or not request.get("url"):
            raise InvalidRequest(
                "Each entry needs request.method and request.url", expression=[f"{where}.request"]
            )
        method = str(request["method"]).upper()
        if method not in _ORDER:
            raise InvalidRequest(
                f"Unsupported method {method}", expression=[f"{where}.request.method"]
            )
        res_type, res_id, version, query = parse_entry_url(str(request["url"]), base_url)
        out.append(
            EntryRequest(
                index=i,
                method=method,
                res_type=res_type,
                res_id=res_id,
                version=version,
                query=query,
                full_url=entry.get("fullUrl"),
                resource=entry.get("resource"),
                if_none_exist=request.get("ifNoneExist"),
                if_match=_parse_if_match(request.get("ifMatch"), f"{where}.request.ifMatch"),
            )
        )
    return out


def process_bundle(
    session: Session,
    bundle: Any,
    caller: Caller,
    *,
    base_url: str,
    settings: Settings,
    prefer_representation: bool = False,
    known_matches: Mapping[tuple[str, str], list[str]] | None = None,
    criteria_keys: dict[str, str] | None = None,
) -> dict[str, Any]:
    """``known_matches``: (type, sorted criteria) → the ids the caller's search found just
    before, in this transaction with nothing written since (the intake's replay guard): an
    ifNoneExist with those criteria takes them instead of searching again. ``criteria_keys``:
    a query → ``svc.criteria_key`` of it, as the guard keyed them (kept for the Bundle)."""
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise InvalidRequest("POST to the base takes a Bundle of type batch or transaction")
    kind = bundle.get("type")
    if kind not in ("batch", "transaction"):
        raise InvalidRequest(
            f"Bundle.type must be batch or transaction, not {kind!r}", expression=["Bundle.type"]
        )
    _check_entry_count(bundle, settings)
    requests = _entry_requests(bundle, base_url)
    runner = _Runner(session, caller, base_url, settings, prefer_representation)
    runner.known_matches = dict(known_matches or {})
    if criteria_keys is not None:
        runner.criteria_keys = criteria_keys
    responses = runner.transaction(requests) if kind == "transaction" else runner.batch(requests)
    return {
        "resourceType": "Bundle",
        "type": f"{kind}-response",
        "timestamp": clock.to_instant(clock.now()),
        "entry": responses,
    }


def _check_entry_count(bundle: dict[str, Any], settings: Settings) -> None:
    entries = bundle.get("entry")
    limit = settings.batch_max_entries
    if isinstance(entries, list) and len(entries) > limit:
        raise PayloadTooLarge(
            f"The Bundle has {len(entries)} entries, at most {limit} allowed (limit batch_max_entries)",
            expression=["Bundle.entry"],
        )


@dataclass(slots=True)
class _Staged:
    """A checked write waiting to be stored with others (``_Runner._store_staged``), and the
    entries it answers: ``answer`` with the write, ``also`` with 200 and the stored version,
    ``then`` (the PATCH of a new pair) at its own turn."""

    target: str  # Type/id
    checked: svc.CheckedWrite
    answer: EntryRequest
    also: EntryRequest | None = None
    then: EntryRequest | None = None


class _Runner:
    def __init__(
        self,
        session: Session,
        caller: Caller,
        base_url: str,
        settings: Settings,
        representation: bool,
    ) -> None:
        self.session = session
        self.caller = caller
        self.base_url = base_url
        self.settings = settings
        self.representation = representation
        self.resolved: dict[str, str] = {}  # fullUrl → Type/id
        self.conditional: dict[tuple[str, str], str] = {}  # (type, criteria) → Type/id of a POST
        self.matched: set[str] = set()  # the Type/id of those that matched a stored resource
        self.fused: dict[int, WriteResult] = {}  # PATCH entry → the write its POST made
        self.response_bytes = 0
        self.search_budget = Budget(settings.search_timeout)  # shared by the Bundle's searches
        self.known_matches: dict[tuple[str, str], list[str]] = {}
        self.prefetched: Prefetched | None = None
        self.claimed: dict[tuple[str, str], str] = {}  # (type, criteria) → owner, claimed ahead
        # writes of consecutive entries of one kind, checked and stored together (issue 21)
        self.staged: list[_Staged] = []
        self.staged_targets: set[str] = set()  # their Type/id, asked of every entry
        self.staged_then: set[int] = set()  # the PATCH entries answered when they are stored
        # the POST of each pair whose key the Bundle claimed for it → that key
        self.stageable: dict[int, tuple[str, str]] = {}
        # the staged resources by (type, id), which what is checked next inherits labels from
        self.pending: dict[tuple[str, str], dict[str, Any]] = {}
        self.criteria_keys: dict[str, str] = {}  # a query → its sorted criteria (named often)

    # -- transaction ------------------------------------------------------------------------

    def transaction(self, requests: list[EntryRequest]) -> list[dict[str, Any]]:
        self._check_unique_targets(requests)
        for req in requests:
            try:
                self._assign_identity(req)
            except GatewayError as exc:
                raise _at_entry(exc, req.index) from exc
        targets = json_targets(self.resolved)
        for req in requests:
            self._rewrite_references(req, targets)
        self._pair(requests)
        self._prefetch(requests)
        self._claim_keys(requests)
        self.stageable = self._stageable(requests)
        responses: list[dict[str, Any] | None] = [None] * len(requests)
        after = self._after_new_conditions(requests)
        with security.staged_sources(self.session) as self.pending:
            for req in sorted(
                requests, key=lambda r: (_ORDER[r.method], r.index in after, r.index)
            ):
                self._take(req, responses)
            self._store_staged(responses)
        return [r for r in responses if r is not None]

    def _take(self, req: EntryRequest, responses: list[dict[str, Any] | None]) -> None:
        """Run, or stage, one entry in its turn; the writes staged so far are stored first
        when it does not join them."""
        if self.staged and not self._joins_staged(req):
            self._store_staged(responses)  # what follows sees them stored
        if req.partner is not None:
            self._run_fused(req, responses)
        elif self._stages_put(req):
            self._stage_put(req)
        else:
            try:
                responses[req.index] = self._run(req)
            except GatewayError as exc:
                raise _at_entry(exc, req.index) from exc
            self._spend(responses[req.index])

    def _after_new_conditions(self, requests: list[EntryRequest]) -> set[int]:
        """The creates that reference a Condition the Bundle creates, to be written after it
        (still in the POST group): what references a diagnosis inherits its privacy labels when
        it is written (``security._labels``), so the Encounter of a message is stored labelled,
        rather than stored, then relabelled in a second version once its diagnoses are."""
        new = {
            self.resolved[req.full_url]
            for req in requests
            if req.method == "POST" and req.res_type == "Condition" and req.full_url
            if req.full_url in self.resolved and self.resolved[req.full_url] not in self.matched
        }
        if not new:
            return set()
        return {
            req.index
            for req in requests
            if req.method == "POST" and req.res_type != "Condition"
            if any(
                reference in new
                for body in (req.resource, req.partner.resource if req.partner else None)
                for reference in reference_strings(body)
            )
        }

    # -- a conditional create and its patch, written once (issue 21) -------------------------

    def _pair(self, requests: list[EntryRequest]) -> None:
        """Pair each ``POST Type ifNoneExist=q`` with a ``PATCH Type?q`` (what the HL7 v2 mapping
        emits per resource: create if absent, then set what the message carried) or a ``PUT
        Type?q`` (the Da Vinci notifications' create, then update) of the same Bundle, so the
        resource is written once: created with the patch applied (or as the PUT has it), or
        patched (updated)."""
        posts: dict[tuple[str, str], EntryRequest] = {}
        for req in requests:
            if req.method == "POST" and req.if_none_exist and req.full_url and req.res_type:
                key = (req.res_type, self._criteria(req.if_none_exist))
                if self.conditional.get(key) == self.resolved.get(req.full_url):
                    posts.setdefault(key, req)
        for req in requests:
            if req.method not in ("PATCH", "PUT") or req.res_id or not req.query:
                continue
            if req.method == "PUT" and (
                not isinstance(req.resource, dict) or req.resource.get("id")
            ):
                continue  # a body with its own id: the conditional update decides, as ever
            if req.if_match is not None:
                continue
            assert req.res_type is not None
            post = posts.pop((req.res_type, self._criteria(req.query)), None)
            if post is not None:
                post.partner, req.partner = req, post

    def _prefetch(self, requests: list[EntryRequest]) -> None:
        """Read at once the stored resources the Bundle's paired patches will change (an update
        message: all of them), those its conditional creates matched and those it puts by id
        (a message's MessageHeader and Provenance), rather than one read per entry."""
        keys = [
            (req.res_type, res_id)
            for req in requests
            if req.method == "POST" and req.res_type
            for target in [self.resolved.get(req.full_url or "", "")]
            if target in self.matched
            for res_id in [Reference.id_of(target, req.res_type)]
            if res_id is not None
        ] + [
            (req.res_type, req.res_id)
            for req in requests
            if req.method == "PUT" and req.res_type and req.res_id and not req.query
        ]
        if len(keys) > 1:
            self.prefetched = Prefetched.read(self.session, keys)

    def _claim_keys(self, requests: list[EntryRequest]) -> None:
        """Claim the conditional keys of the resources the Bundle creates in one statement, not
        one per create (each create takes its claim once; a second entry of the same criteria
        claims as ever, and finds the first)."""
        claims = [
            (
                req.res_type,
                self._criteria(req.if_none_exist),
                Reference.id_of(target, req.res_type),
            )
            for req in requests
            if req.method == "POST" and req.if_none_exist and req.res_type
            for target in [self.resolved.get(req.full_url or "", "")]
            if target and target not in self.matched
        ]
        new = [(t, c, i) for t, c, i in claims if i is not None]
        if len(new) > 1:
            self.claimed = repo.claim_conditional_keys(self.session, new)

    def _criteria(self, query: str) -> str:
        """``svc.criteria_key`` of a conditional entry's query, once per query: a message
        names each key several times (pairing, identity, claims)."""
        found = self.criteria_keys.get(query)
        if found is None:
            found = self.criteria_keys[query] = svc.criteria_key(query)
        return found

    def _claim_of(self, req: EntryRequest) -> str | None:
        if not self.claimed or not req.res_type or not req.if_none_exist:
            return None
        return self.claimed.pop((req.res_type, self._criteria(req.if_none_exist)), None)

    def _run_fused(self, req: EntryRequest, responses: list[dict[str, Any] | None]) -> None:
        """A new resource is created at its POST, with the patch applied; an existing one is
        patched at its PATCH, when the Bundle's new resources exist (as before; checked there
        and stored with the other changes, ``_stage_patch``), and its POST answers 200 with the
        patched version. The PATCH of a new resource answers as the write."""
        post, patch = (req, req.partner) if req.method == "POST" else (req.partner, req)
        assert post is not None and patch is not None
        target = self.resolved[post.full_url or ""]
        existing = target in self.matched
        try:
            if req is post and existing:
                return  # answered with the patch
            if req is post and self._still_claimed(post):
                self._stage(post, patch, target)
                return  # answered when stored
            if req is post:
                result = self._create_patched(post, patch, target)
                self.fused[patch.index] = WriteResult(200, result.stored)
            elif existing and patch.method == "PATCH":
                self._stage_patch(post, patch, target)
                return  # both answered when stored
            elif existing:
                result = self._put_matched(patch, target)
                responses[post.index] = self._response_entry(WriteResult(200, result.stored), post)
                self._spend(responses[post.index])
            elif patch.index in self.fused:
                result = self.fused.pop(patch.index)
            else:
                return  # staged with its POST: answered when stored
            responses[req.index] = self._response_entry(result, req)
        except GatewayError as exc:
            raise _at_entry(exc, req.index) from exc
        self._spend(responses[req.index])

    def _joins_staged(self, req: EntryRequest) -> bool:
        """Whether ``req`` is staged with the writes staged so far, or writes nothing yet (the
        POST of a matched pair, a conditional create that matched, the PATCH of a staged new
        pair); not when it depends on one of them (``_waits_for_staged``)."""
        if req.index in self.staged_then:
            return True  # the PATCH of a staged new pair: answered when it is stored
        if self._waits_for_staged(req):
            return False
        if self._still_claimed(req) or self._stages_put(req):
            return True
        post = req if req.method == "POST" else req.partner
        if post is None or req.method not in ("POST", "PATCH"):
            return False
        return self.resolved.get(post.full_url or "") in self.matched  # staged, or nothing yet

    def _waits_for_staged(self, req: EntryRequest) -> bool:
        """Whether ``req`` writes a resource already staged, or names the referral resource it
        inherits privacy labels from (``privacy.LABEL_SOURCES``: a Task's ServiceRequest, whose
        rules read it): those are stored first, so that its checks see them stored. A diagnosis
        is not waited for: its labels are inherited from the staged copy
        (``security.staged_sources``)."""
        staged = self.staged_targets
        if self._target_of(req) in staged:
            return True
        sources = privacy.LABEL_SOURCES.get(req.res_type or "", frozenset())
        if not sources:
            return False
        return any(
            ref in staged and ref.split("/", 1)[0] in sources
            for body in (req.resource, req.partner.resource if req.partner else None)
            for ref in reference_strings(body)
        )

    def _target_of(self, req: EntryRequest) -> str | None:
        if req.method == "POST" or req.partner is not None:
            post = req if req.method == "POST" else req.partner
            return self.resolved.get((post.full_url if post else None) or "")
        return f"{req.res_type}/{req.res_id}" if req.res_id else None

    def _still_claimed(self, req: EntryRequest) -> bool:
        """A ``_stageable`` POST whose claim no other entry has taken since."""
        return self.stageable.get(req.index) in self.claimed

    def _stageable(self, requests: list[EntryRequest]) -> dict[int, tuple[str, str]]:
        """The POSTs of POST and PATCH pairs whose new resource can be staged (the Bundle
        claimed its key for it, ``_claim_keys``), with that key."""
        out: dict[int, tuple[str, str]] = {}
        for post in requests:
            t, patch = post.res_type, post.partner
            if post.method != "POST" or patch is None or patch.method != "PATCH":
                continue
            if t is None or post.if_none_exist is None:
                continue
            res_id = Reference.id_of(self.resolved.get(post.full_url or "", ""), t)
            key = (t, self._criteria(post.if_none_exist))
            if res_id is not None and self.claimed.get(key) == res_id:
                out[post.index] = key
        return out

    def _stage(self, post: EntryRequest, patch: EntryRequest, target: str) -> None:
        """Check the new resource of a ``_stageable`` pair, to be stored with the next ones
        (``_store_staged``)."""
        t = post.res_type
        assert t is not None
        del self.claimed[self.stageable[post.index]]
        res_id = Reference.id_of(target, t)
        assert res_id is not None
        body, ctype = _patch_body(patch.resource)
        checked = svc.check_patched_create(
            self.session, t, post.resource, body, ctype, self.caller, res_id=res_id
        )
        self._add_staged(_Staged(target, checked, answer=post, then=patch))

    def _stage_patch(self, post: EntryRequest, patch: EntryRequest, target: str) -> None:
        """Check the patch of a resource the pair's POST matched, to be stored with the next
        changes; the POST answers 200 with the patched version."""
        t = patch.res_type
        assert t is not None
        svc.may_create(self.caller, t)  # the POST's right, as when it ran on its own
        res_id = Reference.id_of(target, t)
        assert res_id is not None
        body, ctype = _patch_body(patch.resource)
        checked = svc.check_patch(
            self.session, t, res_id, body, ctype, self.caller, current=self._read_ahead(t, res_id)
        )
        self._add_staged(_Staged(target, checked, answer=patch, also=post))

    def _stages_put(self, req: EntryRequest) -> bool:
        """A PUT by id of a resource the read ahead found absent (a message's new MessageHeader
        and Provenance): created with the writes staged next to it."""
        if req.method != "PUT" or req.partner is not None or req.query or req.if_match:
            return False
        if req.res_type is None or req.res_id is None:
            return False
        return self._known_absent(req.res_type, req.res_id) is None

    def _stage_put(self, req: EntryRequest) -> None:
        assert req.res_type is not None and req.res_id is not None
        try:
            checked = svc.check_put_create(
                self.session, req.res_type, req.res_id, req.resource, self.caller
            )
        except GatewayError as exc:
            raise _at_entry(exc, req.index) from exc
        self._add_staged(_Staged(f"{req.res_type}/{req.res_id}", checked, answer=req))

    def _add_staged(self, staged: _Staged) -> None:
        self.staged.append(staged)
        self.staged_targets.add(staged.target)
        if staged.then is not None:
            self.staged_then.add(staged.then.index)
        res_type, _, res_id = staged.target.partition("/")
        self.pending[(res_type, res_id)] = staged.checked.doc

    def _store_staged(self, responses: list[dict[str, Any] | None]) -> None:
        staged, self.staged = self.staged, []
        self.staged_targets.clear()
        self.staged_then.clear()
        self.pending.clear()  # stored now: a later change of one reads its row
        if not staged:
            return
        try:
            results = svc.store_checked(self.session, [s.checked for s in staged])
        except GatewayError as exc:
            raise _at_entry(exc, staged[0].answer.index) from exc
        for s, result in zip(staged, results, strict=True):
            responses[s.answer.index] = self._response_entry(result, s.answer)
            self._spend(responses[s.answer.index])
            if s.also is not None:  # the POST of a matched pair: 200 with the patched version
                responses[s.also.index] = self._response_entry(
                    WriteResult(200, result.stored), s.also
                )
                self._spend(responses[s.also.index])
            if s.then is not None:  # the PATCH of a new pair answers as the write
                responses[s.then.index] = self._response_entry(
                    WriteResult(200, result.stored), s.then
                )
                self._spend(responses[s.then.index])

    def _create_patched(self, post: EntryRequest, patch: EntryRequest, target: str) -> WriteResult:
        t = post.res_type
        assert t is not None and post.if_none_exist is not None
        svc.check_type(t)
        if patch.method == "PUT":  # created as the PUT has it (a conditional update creates)
            result = svc.create(
                self.session,
                t,
                patch.resource,
                self.caller,
                if_none_exist=post.if_none_exist,
                res_id=Reference.id_of(target, t),
                searched=True,
                claimed=self._claim_of(post),
            )
            if result.stored is None or result.stored.relative != target:
                raise PreconditionFailed(f"{t} was created concurrently by another request; retry")
            return result
        body, ctype = _patch_body(patch.resource)
        result = svc.create_patched(
            self.session,
            t,
            post.resource,
            body,
            ctype,
            self.caller,
            if_none_exist=post.if_none_exist,
            res_id=Reference.id_of(target, t),
            claimed=self._claim_of(post),
        )
        if result.stored is None or result.stored.relative != target:
            raise PreconditionFailed(f"{t} was created concurrently by another request; retry")
        return result

    def _put_matched(self, put: EntryRequest, target: str) -> WriteResult:
        t = put.res_type
        assert t is not None
        svc.may_create(self.caller, t)  # the POST's right, as when it ran on its own
        res_id = Reference.id_of(target, t)
        assert res_id is not None
        doc = put.resource
        if isinstance(doc, dict) and doc.get("id") not in (None, res_id):
            raise InvalidRequest(
                f"The body's id ({doc['id']}) differs from the matched resource ({res_id})",
                expression=[f"{t}.id"],
            )
        doc = {**doc, "id": res_id} if isinstance(doc, dict) else doc
        return svc.update(self.session, t, res_id, doc, self.caller)

    def _read_ahead(self, res_type: str, res_id: str) -> StoredResource | None:
        return self.prefetched.get(self.session, res_type, res_id) if self.prefetched else None

    def _known_absent(self, res_type: str, res_id: str) -> None | object:
        """None when the read ahead found no such resource (a message's new MessageHeader and
        Provenance: created without reading again); otherwise ``repo.UNREAD``: a PUT reads an
        existing row for update, so that a concurrent writer waits for it rather than fails."""
        ahead = self.prefetched
        if ahead is None or ahead.current(self.session, res_type, res_id) is not None:
            return repo.UNREAD
        return None

    def _check_unique_targets(self, requests: list[EntryRequest]) -> None:
        seen: dict[str, int] = {}
        for req in requests:
            if req.method in ("PUT", "DELETE") and req.res_id and not req.query:
                key = f"{req.res_type}/{req.res_id}"
                if key in seen:
                    raise InvalidRequest(
                        f"Entries {seen[key]} and {req.index} both change {key}",
                        expression=[f"Bundle.entry[{req.index}]"],
                    )
                seen[key] = req.index

    def _assign_identity(self, req: EntryRequest) -> None:
        """Fix the id each POST/PUT entry will have, so references can point at it before writing."""
        if not req.full_url or req.res_type is None:
            return
        if req.method == "POST":
            if not req.if_none_exist:
                self.resolved[req.full_url] = self._mint(req.res_type)
                return
            req.if_none_exist = self._resolve_in_query(req.if_none_exist)
            params = svc.search_params(req.if_none_exist)
            key = (req.res_type, self._criteria(req.if_none_exist))
            if key not in self.conditional:  # two entries with the same criteria are one resource
                ids = self.known_matches.get(key)
                if ids is None:
                    ids = match_ids(self.session, req.res_type, params, caller=self.caller, limit=2)
                if len(ids) > 1:
                    raise PreconditionFailed(f"ifNoneExist matches more than one {req.res_type}")
                self.conditional[key] = (
                    f"{req.res_type}/{ids[0]}" if ids else self._mint(req.res_type)
                )
                if ids:
                    self.matched.add(self.conditional[key])
            self.resolved[req.full_url] = self.conditional[key]
        elif req.method == "PUT":
            if req.query:
                req.query = self._resolve_in_query(req.query)
                ids = match_ids(
                    self.session,
                    req.res_type,
                    svc.search_params(req.query),
                    caller=self.caller,
                    limit=2,
                )
                body_id = req.resource.get("id") if isinstance(req.resource, dict) else None
                if len(ids) == 1:
                    self.resolved[req.full_url] = f"{req.res_type}/{ids[0]}"
                elif not ids:
                    self.resolved[req.full_url] = f"{req.res_type}/{body_id or repo.new_id()}"
            elif req.res_id:
                self.resolved[req.full_url] = f"{req.res_type}/{req.res_id}"

    def _mint(self, res_type: str) -> str:
        """A new resource's id, made here: the rules may know that nothing else names it yet."""
        reference = f"{res_type}/{repo.new_id()}"
        transaction_memo.note_minted(self.session, reference)
        return reference

    def _resolve_in_query(self, query: str) -> str:
        for full_url, target in self.resolved.items():
            if full_url in query:
                query = query.replace(full_url, target)
        return query

    def _rewrite_references(self, req: EntryRequest, targets: dict[bytes, bytes]) -> None:
        if req.query:
            req.query = self._resolve_in_query(req.query)
        if req.resource is not None:
            replaced = (
                replace_references(req.resource, targets, _undecided)
                if isinstance(req.resource, dict)
                else None
            )  # the walk below when a reference is to be searched or refused
            req.resource = (
                replaced if replaced is not None else self._rewrite(req.resource, req.index)
            )

    def _rewrite(self, node: Any, index: int) -> Any:
        if isinstance(node, dict):
            out = {}
            for key, value in node.items():
                if key == "reference" and isinstance(value, str):
                    out[key] = self._resolve_reference(value, index)
                else:
                    out[key] = self._rewrite(value, index)
            return out
        if isinstance(node, list):
            return [self._rewrite(v, index) for v in node]
        return node

    def _resolve_reference(self, ref: str, index: int) -> str:
        if ref in self.resolved:
            return self.resolved[ref]
        if _unknown_entry(ref):
            raise InvalidRequest(
                f"Reference {ref} names no entry of this Bundle",
                expression=[f"Bundle.entry[{index}].resource"],
            )
        if _conditional(ref):
            res_type, _, query = ref.partition("?")
            svc.check_type(res_type)
            ids = match_ids(
                self.session, res_type, svc.search_params(query), caller=self.caller, limit=2
            )
            if len(ids) != 1:
                raise PreconditionFailed(
                    f"Conditional reference {ref} matches {len(ids)} resources, not exactly one"
                )
            return f"{res_type}/{ids[0]}"
        return ref

    # -- batch ------------------------------------------------------------------------------

    def batch(self, requests: list[EntryRequest]) -> list[dict[str, Any]]:
        responses = []
        for req in requests:
            try:
                with self.session.begin_nested():
                    entry = self._run(req)
            except GatewayError as exc:
                entry = _error_entry(exc)
            self._spend(entry)
            responses.append(entry)
        return responses

    def _spend(self, entry: dict[str, Any] | None) -> None:
        """Count an entry into the response; past the limit the whole request is refused (and
        rolled back), before the responses of many large searches fill the memory."""
        self.response_bytes += len(orjson.dumps(entry))
        limit = self.settings.batch_max_response_bytes
        if self.response_bytes > limit:
            raise PayloadTooLarge(
                f"The response would be larger than {limit} bytes (limit batch_max_response_bytes)"
            )

    # -- one entry --------------------------------------------------------------------------

    def _run(self, req: EntryRequest) -> dict[str, Any]:
        if req.res_type is None:
            raise InvalidRequest(
                "request.url names no resource type",
                expression=[f"Bundle.entry[{req.index}].request.url"],
            )
        if req.method in ("GET", "HEAD"):
            return self._get(req)
        svc.check_type(req.res_type)
        result = self._write(req)
        return self._response_entry(result, req)

    def _write(self, req: EntryRequest) -> WriteResult:
        s, c, t = self.session, self.caller, req.res_type
        assert t is not None
        params = svc.search_params(req.query) if req.query else []
        if req.method == "POST":
            target = self.resolved.get(req.full_url or "")
            res_id = Reference.id_of(target, t) if target else None  # a server-made id
            matched = res_id if target in self.matched else None  # found by _assign_identity
            result = svc.create(
                s,
                t,
                req.resource,
                c,
                if_none_exist=req.if_none_exist,
                res_id=res_id,
                matched=matched,
                claimed=None if matched else self._claim_of(req),
                matched_row=self._read_ahead(t, matched) if matched else None,
            )
            if target and result.stored and result.stored.relative != target:
                raise PreconditionFailed(f"{t} was created concurrently by another request; retry")
            return result
        if req.method == "PUT":
            if params:
                target = self.resolved.get(req.full_url or "")
                new_id = target.split("/", 1)[1] if target else None
                result = svc.conditional_update(
                    s, t, params, req.resource, c, if_match=req.if_match, new_id=new_id
                )
                if target and result.stored and result.stored.relative != target:
                    raise PreconditionFailed(
                        f"{t} was created concurrently by another request; retry"
                    )
                return result
            if not req.res_id:
                raise InvalidRequest("PUT needs Type/id or Type?criteria")
            current = self._known_absent(t, req.res_id)
            return svc.update(
                s, t, req.res_id, req.resource, c, if_match=req.if_match, current=current
            )
        if req.method == "PATCH":
            body, ctype = _patch_body(req.resource)
            if params:
                return svc.conditional_patch(s, t, params, body, ctype, c, if_match=req.if_match)
            if not req.res_id:
                raise InvalidRequest("PATCH needs Type/id or Type?criteria")
            return svc.patch(s, t, req.res_id, body, ctype, c, if_match=req.if_match)
        if params:
            return svc.conditional_delete(s, t, params, c)
        if not req.res_id:
            raise InvalidRequest("DELETE needs Type/id or Type?criteria")
        return svc.delete(s, t, req.res_id, c)

    def _get(self, req: EntryRequest) -> dict[str, Any]:
        assert req.res_type is not None
        if req.res_id and not req.query:
            if req.version:
                stored = svc.vread_served(
                    self.session, req.res_type, req.res_id, req.version, self.caller
                )
            else:
                stored = svc.read_served(self.session, req.res_type, req.res_id, self.caller)
            return {
                "resource": stored.content,
                "response": {
                    "status": "200 OK",
                    "etag": stored.etag,
                    "lastModified": clock.to_instant(stored.last_updated),
                },
            }
        svc.check_type(req.res_type)
        body = search_bundle(
            self.session,
            req.res_type,
            svc.search_params(req.query),
            caller=self.caller,
            base_url=self.base_url,
            settings=self.settings,
            budget=self.search_budget,
        )
        return {"resource": orjson.loads(body), "response": {"status": "200 OK"}}

    def _response_entry(self, result: WriteResult, req: EntryRequest) -> dict[str, Any]:
        response: dict[str, Any] = {
            "status": f"{result.status} {_REASONS.get(result.status, '')}".strip()
        }
        entry: dict[str, Any] = {}
        stored = result.stored
        if stored is not None:
            entry["fullUrl"] = f"{self.base_url}/{stored.relative}"
            response["location"] = f"{stored.relative}/_history/{stored.version_id}"
            response["etag"] = stored.etag
            response["lastModified"] = clock.to_instant(stored.last_updated)
            if self.representation and not stored.deleted:
                entry["resource"] = svc.served(self.session, self.caller, stored).content
        if result.issues:
            response["outcome"] = {
                "resourceType": "OperationOutcome",
                "issue": [i.to_fhir() for i in result.issues],
            }
        entry["response"] = response
        return entry


def _patch_body(resource: Any) -> tuple[Any, str]:
    """A PATCH entry carries a FHIRPath Patch Parameters, or a Binary holding a JSON Patch."""
    if isinstance(resource, dict) and resource.get("resourceType") == "Binary":
        import base64

        try:
            ops = orjson.loads(base64.b64decode(resource.get("data") or ""))
        except (ValueError, orjson.JSONDecodeError) as exc:
            raise InvalidRequest("The Binary of a PATCH entry must hold a JSON Patch") from exc
        return ops, svc.JSON_PATCH
    return resource, "application/fhir+json"


def _at_entry(exc: GatewayError, index: int) -> GatewayError:
    """Prefix the failing entry so the client knows which one rolled the transaction back."""
    issues = [
        Issue(
            f"Bundle.entry[{index}]: {i.diagnostics}",
            code=i.code,
            severity=i.severity,
            expression=i.expression or [f"Bundle.entry[{index}]"],
        )
        for i in exc.issues
    ]
    clone = type(exc)(f"Bundle.entry[{index}]: {exc.message}", issues=issues, headers=exc.headers)
    return clone


def _error_entry(exc: GatewayError) -> dict[str, Any]:
    return {"response": {"status": str(exc.status), "outcome": exc.outcome()}}


def _unknown_entry(ref: str) -> bool:
    return ref.startswith("urn:uuid:") or ref.startswith("urn:oid:")


def _conditional(ref: str) -> bool:
    """``Type?criteria``: a reference to resolve by a search."""
    return "?" in ref and "/" not in ref.split("?", 1)[0]


def _undecided(ref: str) -> bool:
    """A reference not among the Bundle's entries that the walk resolves or refuses."""
    return _unknown_entry(ref) or _conditional(ref)
