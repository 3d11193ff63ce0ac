"""Count the SQL statements an engine sends during a block, on SQLite and PostgreSQL alike.

For tests and benchmarks (issue 21: statements per discharge), not for production: the listener
puts every statement on SQLAlchemy's evented path, which costs CPU (bench/bench_checkout.py), so
time what you measure in a run without it.

    with counting(database.engine) as seen:
        intake.receive_hl7(raw)
    seen.total, seen.by_verb      # 312, Counter({'INSERT': 180, 'SELECT': 90, ...})
    seen.by_table                 # Counter({'INSERT resource_versions': 40, ...}) (first table named)

One ``executemany`` is one statement (one round of the driver), as the database sees it; so is
SQLite's ``BEGIN IMMEDIATE`` (PostgreSQL's BEGIN is sent by the driver and not counted).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, event

__all__ = ["StatementCount", "counting"]


_TABLE = re.compile(r"\b(?:FROM|INTO|UPDATE)\s+\"?(\w+)", re.IGNORECASE)


@dataclass(slots=True)
class StatementCount:
    by_verb: Counter[str] = field(default_factory=Counter)
    by_table: Counter[str] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return sum(self.by_verb.values())

    def add(self, statement: str) -> None:
        verb = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else "?"
        self.by_verb[verb] += 1
        table = _TABLE.search(statement)
        self.by_table[f"{verb} {table.group(1)}" if table else verb] += 1


@contextmanager
def counting(engine: Engine) -> Iterator[StatementCount]:
    """Count the statements every connection of ``engine`` sends while the block runs."""
    seen = StatementCount()

    def counted(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.add(statement)

    event.listen(engine, "before_cursor_execute", counted)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", counted)
