"""The gateway's own signing key for access tokens: made once, then shared and kept.

With ``signing_key_file`` set, a PEM file (created with mode 0600 if absent); otherwise a row of
``gateway_keys``. Either way every gateway process uses the same key, and tokens survive a
restart. Creation is race-safe: an exclusive file create, or the row's primary key.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from joserfc.jwk import KeySet, RSAKey
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from fhir_gateway import clock
from fhir_gateway.store.db import Database
from fhir_gateway.store.security_tables import gateway_keys

__all__ = ["ACCESS_TOKEN_ALG", "SigningKeys"]

ACCESS_TOKEN_ALG = "RS256"
_KEY_NAME = "access-token"


class SigningKeys:
    """Loads (or creates) the key on first use; then answers from memory."""

    def __init__(self, database: Database, key_file: Path | None = None) -> None:
        self._database = database
        self._key_file = key_file
        self._key: RSAKey | None = None
        self._lock = threading.Lock()

    @property
    def private(self) -> RSAKey:
        if self._key is None:
            with self._lock:
                if self._key is None:
                    key = self._from_file() if self._key_file else self._from_database()
                    key.ensure_kid()
                    self._key = key
        return self._key

    def public_set(self) -> KeySet:
        return KeySet([RSAKey.import_key(self.private.as_dict(private=False))])

    def _from_file(self) -> RSAKey:
        assert self._key_file is not None
        path = self._key_file
        if not path.exists():
            pem = RSAKey.generate_key(2048, private=True).as_pem(private=True)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass  # another process made it first: use theirs
            else:
                with os.fdopen(fd, "wb") as out:
                    out.write(pem)
        return RSAKey.import_key(path.read_bytes())

    def _from_database(self) -> RSAKey:
        stored = self._stored()
        if stored is None:
            fresh = json.dumps(RSAKey.generate_key(2048, private=True).as_dict(private=True))
            try:
                with self._database.engine.begin() as conn:
                    conn.execute(
                        insert(gateway_keys).values(
                            name=_KEY_NAME, private_jwk=fresh, created_at=clock.to_db(clock.now())
                        )
                    )
            except IntegrityError:
                pass  # another process made it first: use theirs
            stored = self._stored()
        assert stored is not None
        return RSAKey.import_key(json.loads(stored))

    def _stored(self) -> str | None:
        with self._database.engine.connect() as conn:
            return conn.execute(
                select(gateway_keys.c.private_jwk).where(gateway_keys.c.name == _KEY_NAME)
            ).scalar_one_or_none()
