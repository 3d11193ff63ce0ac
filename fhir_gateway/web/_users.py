"""People who sign in to the web pages: accounts, argon2 password hashes, login throttling.

A user is mapped to a role and an Organization exactly as an API client is (the same roles; a
partner, ehr or hospital user needs an organisation), so every page asks the same row policy.

Throttling holds across processes: each account counts its consecutive failed sign-ins in the
database and is locked for ``LOCK_MINUTES`` after ``MAX_FAILURES``; a success resets the count.
Unknown names cost the same argon2 work as known ones, so timing does not reveal accounts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import CursorResult, delete, insert, select, update
from sqlalchemy.orm import Session

from fhir_gateway import clock
from fhir_gateway.errors import Conflict, InvalidRequest, TooManyRequests
from fhir_gateway.security import ROLES
from fhir_gateway.store.web_tables import web_users

__all__ = [
    "User",
    "add_user",
    "list_users",
    "remove_user",
    "get_user",
    "sign_in",
    "MAX_FAILURES",
    "LOCK_MINUTES",
]

MAX_FAILURES = 5
LOCK_MINUTES = 15
MIN_PASSWORD = 12
_NAME = re.compile(r"^[A-Za-z0-9_.@\-]{1,128}$")
_ORG = re.compile(r"^Organization/[A-Za-z0-9\-.]{1,64}$")
_NEEDS_ORG = frozenset({"partner", "hospital", "ehr"})
_HASHER = PasswordHasher()
_DUMMY = _HASHER.hash("not a password of anyone")


@dataclass(frozen=True, slots=True)
class User:
    username: str
    role: str
    organization: str | None
    fingerprint: str  # changes with the password: a new password ends the old sessions


def _user(row: object) -> User:
    return User(row.username, row.role, row.organization, row.password_hash[-16:])  # type: ignore[attr-defined]


def add_user(
    session: Session, username: str, password: str, role: str, organization: str | None
) -> User:
    if not _NAME.match(username):
        raise InvalidRequest("A user name has 1–128 letters, digits or . _ @ -")
    if role not in ROLES:
        raise InvalidRequest(f"Unknown role {role!r}; one of: {', '.join(ROLES)}")
    if organization is not None and not _ORG.match(organization):
        raise InvalidRequest("--organization must look like Organization/ID")
    if role in _NEEDS_ORG and organization is None:
        raise InvalidRequest(f"A {role} user needs --organization Organization/ID")
    if len(password) < MIN_PASSWORD:
        raise InvalidRequest(f"A password needs at least {MIN_PASSWORD} characters")
    if session.execute(
        select(web_users.c.username).where(web_users.c.username == username)
    ).first():
        raise Conflict(f"User {username} exists already")
    hashed = _HASHER.hash(password)
    session.execute(
        insert(web_users).values(
            username=username,
            password_hash=hashed,
            role=role,
            organization=organization,
            active=True,
            failed_logins=0,
            locked_until=None,
            created_at=clock.to_db(clock.now()),
        )
    )
    return User(username, role, organization, hashed[-16:])


def list_users(session: Session) -> list[User]:
    return [_user(r) for r in session.execute(select(web_users).order_by(web_users.c.username))]


def remove_user(session: Session, username: str) -> bool:
    result = session.execute(delete(web_users).where(web_users.c.username == username))
    return bool(cast(CursorResult[Any], result).rowcount)


def get_user(session: Session, username: str) -> User | None:
    row = session.execute(
        select(web_users).where(web_users.c.username == username, web_users.c.active.is_(True))
    ).first()
    return _user(row) if row else None


def sign_in(session: Session, username: str, password: str) -> User | None:
    """The user; None for a wrong name or password (the failure is counted, so it returns rather
    than raises: raising would roll the count back); TooManyRequests while the account is locked."""
    row = session.execute(
        select(web_users).where(web_users.c.username == username).with_for_update()
    ).first()
    now = clock.now()
    if row is None or not row.active:
        _verify(_DUMMY, password)
        return None
    if row.locked_until is not None and clock.to_db(now) < row.locked_until:
        raise TooManyRequests(
            f"Too many failed sign-ins for this account; try again in {LOCK_MINUTES} minutes."
        )
    if not _verify(row.password_hash, password):
        _failed(session, username, row.failed_logins + 1, now)
        return None
    values: dict[str, object] = {"failed_logins": 0, "locked_until": None}
    if _HASHER.check_needs_rehash(row.password_hash):
        values["password_hash"] = _HASHER.hash(password)
    session.execute(update(web_users).where(web_users.c.username == username).values(**values))
    return (
        _user(row)
        if "password_hash" not in values
        else User(row.username, row.role, row.organization, str(values["password_hash"])[-16:])
    )


def _verify(hashed: str, password: str) -> bool:
    try:
        return _HASHER.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False


def _failed(session: Session, username: str, failures: int, now: datetime) -> None:
    locked = (
        clock.to_db(now + timedelta(minutes=LOCK_MINUTES)) if failures >= MAX_FAILURES else None
    )
    session.execute(
        update(web_users)
        .where(web_users.c.username == username)
        .values(failed_logins=failures, locked_until=locked)
    )
