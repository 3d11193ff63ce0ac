"""Statements and CPU per event for the rules that ride on the intake (issue 21, item 4): a
first-stay psychiatric discharge (the demo's SAMPLE_A03 through the Intake, auto mode), a
readmission of the same patient (its earlier plan revoked), and a partner accepting, then
completing, one of its referral Tasks (one request each).

    python bench/bench_grain.py [--stays 6] [--rounds 3] [--baseline /tmp/main-tree]

Each tree (this one, and ``--baseline``: another checkout of the gateway, say main) runs in its
own process on its own database (FHIR_GATEWAY_DATABASE_URL names a PostgreSQL server, else temp
SQLite); the trees take turns, ``--rounds`` times, and the CPU figures are the medians of their
``time.process_time`` per event, with the ratio this tree / baseline. Statements are counted
once per event kind (``fhir_gateway.store.statements`` of this tree, loaded by path so that a baseline tree without
it counts the same way), on a separate pass.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Any

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ZONES = {"STMARYS": "America/Chicago"}


# -- the child: one tree, one database ------------------------------------------------------------


def _message(sample: str, mrn: str, visit: str, control: str, stay: int) -> bytes:
    """SAMPLE_A03 for patient ``mrn``'s ``stay``-th stay (each a month after the one before)."""
    month = f"2025{4 + stay:02d}"
    text = (
        sample.replace("DEMO-MRN-1", mrn)
        .replace("DEMO-V1", visit)
        .replace("DEMO-0001", control)
        .replace("202503", month)
    )
    return text.encode()


def _database_url(tree: str) -> tuple[str, Any]:
    base = os.environ.get("FHIR_GATEWAY_DATABASE_URL")
    if not base:
        tmp = tempfile.TemporaryDirectory(prefix="bench-grain-")
        return f"sqlite:///{tmp.name}/grain.db", tmp
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(base)
    name = f"{url.database}_grain_{uuid.uuid4().hex[:6]}"
    admin = url.set(drivername="postgresql", database="test").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return url.set(database=name).render_as_string(hide_password=False), name


def _drop(name: Any) -> None:
    if isinstance(name, str):
        import psycopg
        from sqlalchemy.engine import make_url

        url = make_url(os.environ["FHIR_GATEWAY_DATABASE_URL"])
        admin = url.set(drivername="postgresql", database="test").render_as_string(
            hide_password=False
        )
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    else:
        name.cleanup()


def _statement_counter() -> Any:
    """This tree's ``store.statements.counting``, whichever tree the child imports from."""
    path = os.path.join(HERE, "fhir_gateway", "store", "statements.py")
    spec = importlib.util.spec_from_file_location("_bench_statements", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.counting


def child(stays: int) -> dict[str, Any]:
    counting = _statement_counter()

    from fhir_gateway import careplans
    from fhir_gateway.app import install_rules
    from fhir_gateway.cli.demo import SAMPLE_A03
    from fhir_gateway.services.ingest import Intake
    from fhir_gateway.settings import Settings
    from fhir_gateway.store.db import Database
    from fhir_gateway.store.migrate import upgrade

    url, keep = _database_url(HERE)
    settings = Settings(
        database_url=url, sender_zones=ZONES, careplan_mode="auto", log_level="WARNING"
    )
    database = Database(url)
    upgrade(database.engine)
    database.write(careplans.seed, settings)
    try:
        install_rules(settings, database)  # type: ignore[call-arg]  # one rules object per app
    except TypeError:
        install_rules(settings)  # type: ignore[call-arg]  # a baseline tree: process-wide rules
    intake = Intake(database, settings)
    run = uuid.uuid4().hex[:6]

    def receive(mrn: str, stay: int) -> float:
        raw = _message(SAMPLE_A03, mrn, f"{mrn}-V{stay}", f"{mrn}-{stay}", stay)
        t0 = time.process_time()
        answer = intake.receive_hl7(raw, channel="bench")
        spent = time.process_time() - t0
        assert answer.code == "AA", answer.body
        return spent

    receive(f"{run}-W", 0)  # warm caches (templates, partners, the search parameters)
    receive(f"{run}-W", 1)
    out: dict[str, Any] = {"statements": {}, "by_table": {}}
    with counting(database.engine) as count:
        receive(f"{run}-C", 0)
    out["statements"]["discharge"], out["by_table"]["discharge"] = (
        count.total,
        dict(count.by_table.most_common()),
    )
    with counting(database.engine) as count:
        receive(f"{run}-C", 1)
    out["statements"]["readmission"], out["by_table"]["readmission"] = (
        count.total,
        dict(count.by_table.most_common()),
    )
    first = [receive(f"{run}-{i}", 0) for i in range(stays)]
    again = [receive(f"{run}-{i}", 1) for i in range(stays)]
    out["cpu"] = {"discharge": statistics.median(first), "readmission": statistics.median(again)}
    out["statements"].update(_partner(database, f"{run}-C", counting))
    database.dispose()
    _drop(keep)
    return out


def _partner(database: Any, mrn: str, counting: Any) -> dict[str, int]:
    """A partner accepts, then completes, one of patient ``mrn``'s open referral Tasks."""
    from fhir_gateway.services import resources as svc
    from fhir_gateway.store import repository as repo
    from fhir_gateway.store.search import match_ids
    from fhir_gateway.workflow import partner_caller

    def owned(session: Any) -> Any:
        from fhir_gateway.context import SYSTEM

        patients = match_ids(session, "Patient", [("identifier", mrn)], caller=SYSTEM)
        ids = match_ids(
            session,
            "Task",
            [("patient", f"Patient/{patients[0]}"), ("status", "requested")],
            caller=SYSTEM,
        )
        tasks = [repo.read(session, "Task", i) for i in ids]
        return next(t for t in tasks if t is not None and t.content.get("owner"))

    task = database.read(owned)
    caller = partner_caller(task.content["owner"]["reference"])
    counts = {}
    for status in ("accepted", "completed"):
        doc = {**task.content, "status": status}
        with counting(database.engine) as count:
            task = database.write(
                lambda s, d=doc, v=task.version_id: (
                    svc.update(s, "Task", d["id"], d, caller, if_match=v).stored
                )
            )
        counts[f"partner {status}"] = count.total
    return counts


# -- the parent: trees in turn --------------------------------------------------------------------


def _run_tree(tree: str, stays: int) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": tree}
    done = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--child", "--stays", str(stays)],
        cwd=tree,
        env=env,
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stays", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", help="another checkout of the gateway (say main)")
    parser.add_argument("--tables", action="store_true", help="statements by table too")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.stays)))
        return
    trees = {"this": HERE, **({"baseline": args.baseline} if args.baseline else {})}
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in trees}
    for _ in range(args.rounds):
        for name, tree in trees.items():
            results[name].append(_run_tree(tree, args.stays))
    _report(results, args.tables)


def _report(results: dict[str, list[dict[str, Any]]], tables: bool) -> None:
    db = "PostgreSQL" if os.environ.get("FHIR_GATEWAY_DATABASE_URL") else "SQLite"
    print(f"database: {db}; rounds: {len(next(iter(results.values())))}")
    first = next(iter(results.values()))[0]
    print(f"{'statements':<24}" + "".join(f"{n:>12}" for n in results))
    for kind in first["statements"]:
        print(f"{kind:<24}" + "".join(f"{r[0]['statements'][kind]:>12}" for r in results.values()))
    print(f"{'CPU ms (median)':<24}" + "".join(f"{n:>12}" for n in results) + "       ratio")
    for kind in ("discharge", "readmission"):
        ms = {n: statistics.median(x["cpu"][kind] for x in r) * 1000 for n, r in results.items()}
        ratio = f"{ms['this'] / ms['baseline']:>12.2f}" if "baseline" in ms else ""
        print(f"{kind:<24}" + "".join(f"{v:>12.1f}" for v in ms.values()) + ratio)
    if tables:
        for name, r in results.items():
            print(f"\n{name}: " + json.dumps(r[0]["by_table"], indent=1))


if __name__ == "__main__":
    main()
