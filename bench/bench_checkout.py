"""PostgreSQL checkout without a pre-ping round trip (issue 21, item 6), against the pre-ping of before.

The read by id runs one statement on a pooled connection. With ``pool_pre_ping`` each checkout
first sent a ping and waited for the answer; the gateway's engine now checks the idle socket
locally instead (``store/db.py``). Both engines run the same read (``repository.read_raw``, the
REST read by id's statement) in alternating rounds of the same run; PostgreSQL only.

    FHIR_GATEWAY_BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1/bench python bench/bench_checkout.py
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/fhir_bench_checkout"


def _interleaved(
    readers: dict[str, Callable[[], object]], rounds: int, batch: int
) -> dict[str, float]:
    """Seconds per read of each reader, in alternating small batches: a busy, shared machine
    slows them alike."""
    spent = dict.fromkeys(readers, 0.0)
    for _ in range(rounds):
        for name, read in readers.items():
            start = time.perf_counter()
            for _ in range(batch):
                read()
            spent[name] += time.perf_counter() - start
    return {name: seconds / (rounds * batch) for name, seconds in spent.items()}


def run(rounds: int = 60, batch: int = 50) -> dict[str, Any]:
    from sqlalchemy import Engine, create_engine

    from bench.bench_intake import _create_pg_database
    from fhir_gateway.store import repository
    from fhir_gateway.store.db import make_engine
    from fhir_gateway.store.migrate import upgrade

    url = os.environ.get("FHIR_GATEWAY_BENCH_DATABASE_URL") or DEFAULT_URL
    if not url.startswith("postgresql"):
        return {"skipped": "PostgreSQL only"}
    _create_pg_database(url)
    ours = make_engine(url)
    upgrade(ours)
    before = create_engine(url, pool_pre_ping=True, hide_parameters=True)

    def reader(engine: Engine) -> Callable[[], object]:
        statement = engine.execution_options(readonly=True, single_statement=True)

        def read() -> object:
            with statement.connect() as conn:
                return repository.read_raw(conn, "Patient", "bench-absent")

        return read

    reader(ours)(), reader(before)()  # connect both pools first
    per_read = _interleaved({"ours": reader(ours), "pre_ping": reader(before)}, rounds, batch)
    ours.dispose()
    before.dispose()
    return {
        "read_by_id_statement": {
            "no_ping_us": per_read["ours"] * 1e6,
            "pre_ping_us": per_read["pre_ping"] * 1e6,
            "speedup": per_read["pre_ping"] / per_read["ours"],
        }
    }


def main() -> None:
    for key, value in run().items():
        print(key, value)


if __name__ == "__main__":
    main()
