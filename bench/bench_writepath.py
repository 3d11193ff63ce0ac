"""The write path of one message, in process (issue 21): SQL statements, gateway CPU and database
CPU per first-stay discharge, readmission, admission (A01) and update (A08).

    python bench/bench_writepath.py [--messages 20]      # PostgreSQL, as bench_intake
    FHIR_GATEWAY_BENCH_DATABASE_URL=sqlite:////tmp/wp.db python bench/bench_writepath.py

Each message goes through ``Intake.receive_hl7`` (inbox, conversion, Bundle, rules, plan) on one
thread. Statements are counted (``fhir_gateway.store.statements``) in a first pass of its own,
since counting slows the statements it counts; CPU is timed in a second pass without it, the
kinds taking turns round by round (a machine whose speed drifts weighs on each kind alike):
``time.process_time`` for the gateway, and on PostgreSQL the utime+stime of the backends the
pool opened (``/proc/<backend pid>/stat``, same machine), in 10 ms ticks summed over the pass.

It prints every figure with issue 21's target (on PostgreSQL: gateway CPU <= 65 ms per first
stay, <= 100 ms over the mix, a readmission <= 1.5x a first stay, <= 10 ms per A01/A08, <= 25 ms
of PostgreSQL CPU per first stay) met or not, and writes them to bench/results/writepath.json
(``--json PATH`` elsewhere) for ``bench/readme.py``.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sqlalchemy import event  # noqa: E402

from bench._harness import table  # noqa: E402
from bench._rows import Row, row, run_context, write_results  # noqa: E402
from bench.bench_intake import DEFAULT_URL, _settings, adt, prepare, stays  # noqa: E402
from fhir_gateway.store.statements import counting  # noqa: E402

KINDS = ("first_stay_discharge", "readmission", "a01", "a08", "mix")
LABELS = {
    "first_stay_discharge": "first-stay discharge (A03)",
    "readmission": "readmission (A03)",
    "a01": "admission (A01)",
    "a08": "update (A08)",
    "mix": "the intake benchmark's mix (15 % readmissions)",
}
# Issue 21's targets, on PostgreSQL: gateway CPU ms per message of a kind, PostgreSQL CPU ms per
# first stay, and a readmission's gateway CPU at most this many first stays'.
TARGET_GATEWAY_CPU_MS = {"first_stay_discharge": 65.0, "mix": 100.0, "a01": 10.0, "a08": 10.0}
TARGET_DB_CPU_MS = 25.0
TARGET_READMISSION_RATIO = 1.5


def _messages(run: str, n: int) -> dict[str, list[list[bytes]]]:
    """Per kind, n rounds; a round is the messages that set the stage, then the one measured
    (its last)."""
    out: dict[str, list[list[bytes]]] = {k: [] for k in KINDS}
    for i, stay in enumerate(stays(f"{run}-f", n, readmit=0)):
        out["first_stay_discharge"].append([adt("A03", stay, f"{run}-f{i}")])
    for i, stay in enumerate(stays(f"{run}-r", n, readmit=0)):
        again = replace(
            stay,
            visit=f"{stay.visit}-2",
            admitted=stay.discharged + timedelta(days=9),
            discharged=stay.discharged + timedelta(days=16),
        )
        earlier = adt("A03", stay, f"{run}-r{i}a")
        out["readmission"].append([earlier, adt("A03", again, f"{run}-r{i}b")])
    for i, stay in enumerate(stays(f"{run}-a", n, readmit=0)):
        out["a01"].append([adt("A01", stay, f"{run}-a{i}")])
    for i, stay in enumerate(stays(f"{run}-u", n, readmit=0)):
        out["a08"].append([adt("A01", stay, f"{run}-u{i}a"), adt("A08", stay, f"{run}-u{i}b")])
    for i, stay in enumerate(stays(f"{run}-m", 4 * n, gap=4)):  # the bench_intake mix, 15 % back
        out["mix"].append([adt("A03", stay, f"{run}-m{i}")])
    return out


class _Backends:
    """The PostgreSQL backends of the engine's pool, and their CPU so far."""

    def __init__(self, engine: Any) -> None:
        self.pids: set[int] = set()
        if engine.dialect.name == "postgresql":
            event.listen(engine.pool, "connect", self._connected)

    def _connected(self, dbapi_conn: Any, _record: Any) -> None:
        self.pids.add(dbapi_conn.info.backend_pid)

    def cpu_seconds(self) -> float | None:
        if not self.pids:
            return None
        total = 0.0
        for pid in self.pids:
            try:
                with open(f"/proc/{pid}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except OSError:
                return None  # another machine, or a backend gone
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total


def _measure(
    rounds_by_kind: dict[str, list[list[bytes]]],
    send: Callable[[bytes], None],
    engine: Any,
    backends: _Backends,
) -> dict[str, dict[str, float]]:
    """Per kind, statements counted over the first half of its rounds (counting slows the
    statements it counts) and CPU timed over the second half (``_timed``)."""
    halves = {kind: len(rounds) // 2 for kind, rounds in rounds_by_kind.items()}
    statements = {
        kind: sum(_statements(messages, send, engine) for messages in rounds[: halves[kind]])
        for kind, rounds in rounds_by_kind.items()
    }
    timed = {kind: rounds[halves[kind] :] for kind, rounds in rounds_by_kind.items()}
    cpu, db_cpu = _timed(timed, send, backends)
    figures: dict[str, dict[str, float]] = {}
    for kind in rounds_by_kind:
        figures[kind] = {
            "statements": round(statements[kind] / halves[kind], 1),
            "gateway_cpu_ms": round(1000 * cpu[kind] / len(timed[kind]), 1),
        }
        if db_cpu is not None:
            figures[kind]["db_cpu_ms"] = round(1000 * db_cpu[kind] / len(timed[kind]), 1)
    return figures


def _statements(messages: list[bytes], send: Callable[[bytes], None], engine: Any) -> int:
    """The statements of a round's last message (the others set the stage)."""
    for raw in messages[:-1]:
        send(raw)
    with counting(engine) as seen:
        send(messages[-1])
    return seen.total


def _timed(
    timed: dict[str, list[list[bytes]]], send: Callable[[bytes], None], backends: _Backends
) -> tuple[dict[str, float], dict[str, float] | None]:
    """Gateway and PostgreSQL CPU seconds per kind (None: not PostgreSQL) over its rounds' last
    messages. The kinds take turns, a round of each, so that a machine whose speed drifts during
    the run weighs on every kind alike: a readmission's ratio to a first stay is a target."""
    cpu = dict.fromkeys(timed, 0.0)
    db_cpu = dict.fromkeys(timed, 0.0)
    on_postgres = backends.cpu_seconds() is not None
    for turn in itertools.zip_longest(*timed.values()):
        for kind, messages in zip(timed, turn, strict=True):
            if messages is None:
                continue  # the mix has more rounds than the other kinds
            for raw in messages[:-1]:
                send(raw)
            db_at = backends.cpu_seconds()
            started = time.process_time()
            send(messages[-1])
            cpu[kind] += time.process_time() - started
            db_after = backends.cpu_seconds()
            if db_at is not None and db_after is not None:
                db_cpu[kind] += db_after - db_at
    return cpu, db_cpu if on_postgres else None


def _started() -> None:
    """What `serve`, `mllp` and `worker` do once started (a tree before it had nothing to do)."""
    try:
        from fhir_gateway.observability.heap import freeze_start_up_heap
    except ImportError:
        return
    freeze_start_up_heap(True)


def run(messages: int = 20, database_url: str | None = None) -> dict[str, Any]:
    from fhir_gateway.app import install_rules
    from fhir_gateway.services.ingest import Intake
    from fhir_gateway.store.db import Database

    tmp = None
    url = database_url or os.environ.get("FHIR_GATEWAY_BENCH_DATABASE_URL")
    own = url is None  # the bench's own database, which it may drop: never one named to it
    if url is None:
        url = DEFAULT_URL.replace("fhir_bench_intake", "fhir_bench_writepath")
    elif url == "sqlite":
        tmp = tempfile.TemporaryDirectory(prefix="bench-writepath-")
        url = f"sqlite:///{tmp.name}/writepath.db"
    prepare(url, fresh=own)  # a fresh database per run: no rows of earlier runs
    settings = _settings(url)
    database = Database(url, pool_size=2)
    try:
        install_rules(settings, database)  # type: ignore[call-arg]  # one rules object per app
    except TypeError:
        install_rules(settings)  # type: ignore[call-arg]  # a tree before issue 21: process-wide
    backends = _Backends(database.engine)
    intake = Intake(database, settings)
    _started()

    def send(raw: bytes) -> None:
        answer = intake.receive_hl7(raw, channel="bench")
        if answer.code != "AA":
            raise RuntimeError(f"intake answered {answer.code}: {answer.body[:400]!r}")

    run_id = uuid.uuid4().hex[:6]
    for raw in [m for r in _messages(f"warm{run_id}", 2)["mix"] for m in r]:  # warm caches
        send(raw)
    results: dict[str, Any] = {"database": url.split(":", 1)[0].split("+", 1)[0]}
    rounds_by_kind = _messages(run_id, 2 * max(1, messages // 2))
    results.update(_measure(rounds_by_kind, send, database.engine, backends))
    database.dispose()
    if tmp is not None:
        tmp.cleanup()
    results["rows"] = rows(results)
    return results


def rows(results: dict[str, Any]) -> list[Row]:
    """Per kind: statements, gateway CPU and PostgreSQL CPU, each with issue 21's target if any.
    The targets are PostgreSQL's: on SQLite they are shown but not judged."""
    on_postgres = results["database"] == "postgresql"
    why = None if on_postgres else f"a PostgreSQL target, measured on {results['database']}"
    first = results["first_stay_discharge"]["gateway_cpu_ms"]
    out: list[Row] = []
    for kind in KINDS:
        figures, label = results[kind], LABELS[kind]
        out.append(row(f"{label}: SQL statements", figures["statements"], "statements"))
        cpu = figures["gateway_cpu_ms"]
        if kind == "readmission":
            cpu_row = row(
                f"{label}: gateway CPU",
                cpu,
                "ms",
                baseline=first,
                baseline_is="a first-stay discharge, same run",
                target=("ratio", "<=", TARGET_READMISSION_RATIO),
                applies=on_postgres,
                why=why,
            )
        elif kind in TARGET_GATEWAY_CPU_MS:
            target = ("value", "<=", TARGET_GATEWAY_CPU_MS[kind])
            cpu_row = row(
                f"{label}: gateway CPU", cpu, "ms", target=target, applies=on_postgres, why=why
            )
        else:
            cpu_row = row(f"{label}: gateway CPU", cpu, "ms")
        out.append(cpu_row)
        if "db_cpu_ms" in figures:
            db_target = (
                ("value", "<=", TARGET_DB_CPU_MS) if kind == "first_stay_discharge" else None
            )
            out.append(
                row(f"{label}: PostgreSQL CPU", figures["db_cpu_ms"], "ms", target=db_target)
            )
    return out


def report(results: dict[str, Any]) -> str:
    """The table of every row, a target's verdict beside its figure."""
    shown = [
        (
            r["measure"],
            f"{r['value']:g} {r['unit']}",
            "" if r["ratio"] is None else f"{r['ratio']:.2f}× {r['baseline_is']}",
            _verdict(r),
        )
        for r in results["rows"]
    ]
    head = f"database: {results['database']}"
    return head + "\n" + table(shown, ("measure", "value", "ratio", "target"))


def _verdict(r: Row) -> str:
    target = r["target"]
    if target is None:
        return ""
    limit = f"{target['op'].replace('<=', '≤').replace('>=', '≥')} {target['limit']:g}"
    limit += "×" if target["of"] == "ratio" else f" {r['unit']}"
    verdict = {True: "met", False: "NOT MET", None: "not judged"}[r["met"]]
    return f"{limit}: {verdict}"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--messages", type=int, default=20, help="per kind (half counted, half timed)"
    )
    parser.add_argument("--database-url", default=None, help="or 'sqlite' for a temporary file")
    parser.add_argument("--json", default=None, help="default: bench/results/writepath.json")
    args = parser.parse_args()
    context = run_context()
    figures = run(args.messages, args.database_url)
    print(report(figures))
    print(f"written: {write_results('writepath', figures, args.json, context)}", file=sys.stderr)
