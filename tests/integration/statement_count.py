"""Counting the SQL statements an engine executes in a block (tests and bench/bench_grain.py).

    with counted(database.engine) as count:
        intake.receive_hl7(raw, channel="test")
    count.total, count.by_table()   # 312, {"INSERT resource_versions": 40, …}

An engine event puts statements on SQLAlchemy's slower evented path: use it for counts, not times.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, event

__all__ = ["Count", "counted"]

_TABLE = re.compile(r"\b(?:FROM|INTO|UPDATE)\s+\"?(\w+)", re.IGNORECASE)


@dataclass
class Count:
    statements: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.statements)

    def by_table(self) -> dict[str, int]:
        """Statements by verb and first table named (``SELECT resources``)."""
        keys = Counter()
        for sql in self.statements:
            verb = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else "?"
            table = _TABLE.search(sql)
            keys[f"{verb} {table.group(1) if table else ''}".strip()] += 1
        return dict(keys.most_common())


@contextmanager
def counted(engine: Engine) -> Iterator[Count]:
    count = Count()

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        count.statements.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        yield count
    finally:
        event.remove(engine, "before_cursor_execute", seen)
