"""Session cookies and CSRF tokens for the web pages.

* The session cookie is the user name and the password fingerprint, signed (itsdangerous, with a
  secret kept in ``web_keys`` and shared by every process) and timed: it lapses after
  ``web_session_hours``, on sign-out, when the user is removed, or when the password changes. It is
  HttpOnly, SameSite=Lax, and Secure when the page was reached over HTTPS.
* CSRF: a signed double-submit token. A random nonce lives in its own cookie; each form carries an
  HMAC of that nonce under the secret. A cross-site form can neither read the cookie nor forge the
  HMAC, and the check also protects the sign-in form (no session yet).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from fhir_gateway import clock
from fhir_gateway.store.db import Database
from fhir_gateway.store.web_tables import web_keys

__all__ = ["SessionKeys", "SESSION_COOKIE", "CSRF_COOKIE"]

SESSION_COOKIE = "fg_session"
CSRF_COOKIE = "fg_csrf"
_KEY_NAME = "web-session"


class SessionKeys:
    """Signs and reads session cookies; makes and checks CSRF tokens. Loads its secret once."""

    def __init__(self, database: Database, max_age_seconds: int) -> None:
        self._database = database
        self._max_age = max_age_seconds
        self._secret: str | None = None
        self._lock = threading.Lock()

    @property
    def max_age(self) -> int:
        return self._max_age

    def session_cookie(self, username: str, fingerprint: str) -> str:
        return self._serializer().dumps({"u": username, "f": fingerprint})

    def read_session(self, cookie: str | None) -> tuple[str, str] | None:
        if not cookie:
            return None
        try:
            data: Any = self._serializer().loads(cookie, max_age=self._max_age)
        except BadSignature:  # also SignatureExpired
            return None
        if (
            not isinstance(data, dict)
            or not isinstance(data.get("u"), str)
            or not isinstance(data.get("f"), str)
        ):
            return None
        return data["u"], data["f"]

    @staticmethod
    def new_nonce() -> str:
        return secrets.token_urlsafe(32)

    def csrf_token(self, nonce: str) -> str:
        return hmac.new(self._key().encode(), b"csrf:" + nonce.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, nonce: str | None, token: str | None) -> bool:
        return bool(nonce and token) and hmac.compare_digest(
            self.csrf_token(nonce or ""), token or ""
        )

    def _serializer(self) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(self._key(), salt="fhir-gateway-web-session")

    def _key(self) -> str:
        if self._secret is None:
            with self._lock:
                if self._secret is None:
                    self._secret = self._load_or_create()
        return self._secret

    def _load_or_create(self) -> str:
        stored = self._stored()
        if stored is None:
            try:
                with self._database.engine.begin() as conn:
                    conn.execute(
                        insert(web_keys).values(
                            name=_KEY_NAME,
                            secret=secrets.token_urlsafe(48),
                            created_at=clock.to_db(clock.now()),
                        )
                    )
            except IntegrityError:
                pass  # another process made it first: use theirs
            stored = self._stored()
        assert stored is not None
        return stored

    def _stored(self) -> str | None:
        with self._database.engine.connect() as conn:
            return conn.execute(
                select(web_keys.c.secret).where(web_keys.c.name == _KEY_NAME)
            ).scalar()
