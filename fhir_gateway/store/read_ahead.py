"""Current rows read ahead in a transaction, handed out only while they are still current.

A message's Bundle patches the resources its conditional entries matched: read together, one
statement, instead of one read per patch. A row is handed out while the transaction has written
no resource of its type since (``transaction_memo.writes_to``) and no savepoint or transaction has
ended since (which drops the memo, and may have rolled back what was read); otherwise the caller
reads it again. A row handed out still guards its write: the update matches its version only.

The transaction's latest read ahead serves other readers too (``current_row``: the labels a
resource inherits from a diagnosis the message names; ``as_read``: what a Patient held before the
message, for the merge), instead of a read of their own.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from fhir_gateway.store import transaction_memo
from fhir_gateway.store.repository import UNREAD, StoredResource, read_keys

__all__ = ["Prefetched", "current_row", "as_read"]

_EPOCH = "fhir_gateway.read_ahead"
_LATEST = "fhir_gateway.read_ahead.latest"


class Prefetched:
    def __init__(
        self,
        rows: dict[tuple[str, str], StoredResource],
        writes: dict[str, int],
        epoch: object,
        asked: frozenset[tuple[str, str]] = frozenset(),
    ) -> None:
        self._rows = rows
        self._asked = asked  # what was read, found or not
        self._writes = writes  # per type, the transaction's writes when the rows were read
        self._epoch = epoch  # the memo they were read under

    @classmethod
    def read(
        cls, session: Session, keys: list[tuple[str, str]], *, for_update: bool = False
    ) -> Prefetched:
        rows = read_keys(session, keys, for_update=for_update)
        epoch = transaction_memo.memo(session).setdefault(_EPOCH, object())
        writes = {t: transaction_memo.writes_to(session, (t,)) for t in {k[0] for k in keys}}
        prefetched = cls(rows, writes, epoch, frozenset(keys))
        transaction_memo.memo(session)[_LATEST] = prefetched
        return prefetched

    def get(self, session: Session, res_type: str, res_id: str) -> StoredResource | None:
        """The row as read, if still current; None: read it (again)."""
        if not self._still_current(session, res_type):
            return None
        return self._rows.get((res_type, res_id))

    def current(
        self, session: Session, res_type: str, res_id: str
    ) -> StoredResource | None | object:
        """The row as read (None: there was none), if still current; else ``UNREAD``: read it
        (again)."""
        if (res_type, res_id) not in self._asked or not self._still_current(session, res_type):
            return UNREAD
        return self._rows.get((res_type, res_id))

    def as_read(self, res_type: str, res_id: str) -> StoredResource | None | object:
        """The row as read (None: there was none), whatever was written since; ``UNREAD``
        when it was not asked for."""
        if (res_type, res_id) not in self._asked:
            return UNREAD
        return self._rows.get((res_type, res_id))

    def _still_current(self, session: Session, res_type: str) -> bool:
        same_memo = transaction_memo.memo(session).get(_EPOCH) is self._epoch
        writes = transaction_memo.writes_to(session, (res_type,))
        return same_memo and writes == self._writes.get(res_type)


def current_row(session: Session, res_type: str, res_id: str) -> StoredResource | None | object:
    """``Prefetched.current`` of the transaction's latest read ahead; ``UNREAD`` without one."""
    latest: Prefetched | None = transaction_memo.memo(session).get(_LATEST)
    return latest.current(session, res_type, res_id) if latest is not None else UNREAD


def as_read(session: Session, res_type: str, res_id: str) -> StoredResource | None | object:
    """The row as the transaction's latest read ahead found it (None: there was none), whatever
    the transaction wrote since; ``UNREAD`` when it did not read it."""
    latest: Prefetched | None = transaction_memo.memo(session).get(_LATEST)
    return latest.as_read(res_type, res_id) if latest is not None else UNREAD
