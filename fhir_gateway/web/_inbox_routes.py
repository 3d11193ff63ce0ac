"""Routes of the partner inbox (``/web/inbox``) and of the case manager's referral page
(``/web/referrals/{task_id}``): thin, like every page's; the use cases are ``_inbox`` and
``_referral``, run with the signed-in user's Caller. Registered by ``install_web``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from fhir_gateway.errors import NotFound
from fhir_gateway.web import _inbox, _referral
from fhir_gateway.web._reasons import CLOSE_REASONS, COMPLETE_OUTCOMES, REJECT_REASONS
from fhir_gateway.web._render import render
from fhir_gateway.web._routes import CaseTeamDep, PartnerDep, WebRoute, form_version, posted_form

__all__ = ["router"]

router = APIRouter(prefix="/web", route_class=WebRoute, include_in_schema=False)

_DONE = {
    "accept": "Referral accepted.",
    "reject": "Referral rejected.",
    "start": "Referral marked in progress.",
    "complete": "Referral completed.",
    "close": "Referral closed. The case manager has been told.",
    "message": "Message sent.",
    "warning-signs": "Warning signs reported to the case manager.",
    "warning-signs-raised": (
        "Warning signs reported. They are past what the patient's plan says to act on, so the "
        "case manager has a work item to follow the plan."
    ),
}
# action → the form fields it takes after the version
_FIELDS: dict[str, tuple[str, ...]] = {
    "accept": (),
    "reject": ("reason", "note"),
    "start": (),
    "complete": ("result", "note"),
    "close": ("reason", "note"),
}
_CHOICES = {
    "reject_reasons": REJECT_REASONS,
    "close_reasons": CLOSE_REASONS,
    "complete_outcomes": COMPLETE_OUTCOMES,
}


def _back(form: dict[str, str], fallback: str) -> str:
    """Where to go after a form: the page it came from (only an inbox address of this site)."""
    back = form.get("back", "")
    return back if back.startswith("/web/inbox") and "//" not in back else fallback


def _with(url: str, **args: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{urlencode(args)}"


# -- partner inbox -------------------------------------------------------------------------------


@router.get("/inbox")
def inbox_page(request: Request, caller: PartnerDep, done: str | None = None) -> Response:
    query = _inbox.InboxQuery.parse({k: v for k, v in request.query_params.items() if k != "done"})
    page = request.app.state.database.read(
        _inbox.inbox_page, caller, request.app.state.settings, query
    )
    context = {
        "page": page,
        "states": _inbox.STATES,
        "due_choices": _inbox.DUE,
        "sorts": _inbox.SORTS,
        "done": _DONE.get(done or ""),
        "here": query.link(page=query.cursor),  # where a form brings the partner back
        **_CHOICES,
    }
    return render(request, "inbox.html", context)


@router.post("/inbox/{task_id}/message")
async def inbox_message(request: Request, task_id: str, caller: PartnerDep) -> Response:
    form = await posted_form(request)
    await run_in_threadpool(
        request.app.state.database.write,
        _inbox.send_message,
        caller,
        task_id,
        form.get("text", ""),
        form.get("answering"),
    )
    back = _back(form, "/web/inbox")
    return RedirectResponse(_with(back, done="message") + f"#t-{task_id}", status_code=303)


@router.post("/inbox/{task_id}/{action}")
async def inbox_action(request: Request, task_id: str, action: str, caller: PartnerDep) -> Response:
    form = await posted_form(request)
    if action not in _FIELDS:
        raise NotFound(f"There is no action {action!r}.")
    run: Callable[..., Any] = getattr(_inbox, action)
    extra = [form.get(name, "") for name in _FIELDS[action]]
    await run_in_threadpool(
        request.app.state.database.write, run, caller, task_id, form_version(form), *extra
    )
    return RedirectResponse(_with(_back(form, "/web/inbox"), done=action), status_code=303)


# -- the case manager's referral page -----------------------------------------------------------------


@router.get("/referrals/{task_id}")
def referral_page(
    request: Request, task_id: str, caller: CaseTeamDep, done: str | None = None
) -> Response:
    found = request.app.state.database.read(
        _referral.referral_page, caller, request.app.state.settings, task_id
    )
    if found is None:
        raise NotFound(f"There is no referral {task_id}.")
    return render(request, "referral.html", {"page": found, "done": _DONE.get(done or "")})


@router.post("/referrals/{task_id}/message")
async def referral_message(request: Request, task_id: str, caller: CaseTeamDep) -> Response:
    form = await posted_form(request)
    await run_in_threadpool(
        request.app.state.database.write,
        _referral.send_message,
        caller,
        request.app.state.settings,
        task_id,
        form.get("text", ""),
        form.get("answering"),
    )
    return RedirectResponse(f"/web/referrals/{task_id}?done=message#messages-h", status_code=303)
