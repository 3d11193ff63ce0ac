"""REST benchmark: read by id and Task?owner=…&status=requested against a bare FastAPI app serving
the same bytes, and write throughput for single creates and 100-entry transactions.

    python bench/bench_rest.py            # SQLite in a temp dir
    FHIR_GATEWAY_BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1/bench python bench/bench_rest.py
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import uuid

import httpx

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench._harness import load, server, table  # noqa: E402

FHIR = {"Content-Type": "application/fhir+json"}


def _seed(base: str, tasks: int) -> tuple[str, str]:
    with httpx.Client(base_url=base, timeout=60) as client:
        patient = client.post("/Patient", json={"resourceType": "Patient", "name": [{"family": "Bench"}]}, headers=FHIR).json()
        for start in range(0, tasks, 100):
            entries = []
            for i in range(start, min(tasks, start + 100)):
                entries.append({"request": {"method": "POST", "url": "Task"}, "resource": {
                    "resourceType": "Task", "status": ["requested", "accepted", "completed"][i % 3],
                    "intent": "order", "for": {"reference": f"Patient/{patient['id']}"},
                    "owner": {"reference": f"Organization/org-{i % 20}"},
                }})
            client.post("/", json={"resourceType": "Bundle", "type": "transaction", "entry": entries}, headers=FHIR)
    return patient["id"], "Organization/org-7"


def _writes(base: str, n: int) -> tuple[float, float]:
    body = {"resourceType": "Patient", "name": [{"family": "Write"}], "gender": "female"}
    with httpx.Client(base_url=base, timeout=60) as client:
        t0 = time.perf_counter()
        for _ in range(n):
            client.post("/Patient", json=body, headers=FHIR)
        single = n / (time.perf_counter() - t0)
        tx = {"resourceType": "Bundle", "type": "transaction", "entry": [
            {"fullUrl": f"urn:uuid:{uuid.uuid4()}", "request": {"method": "POST", "url": "Patient"}, "resource": body}
            for _ in range(100)]}
        rounds = max(1, n // 100)
        t0 = time.perf_counter()
        for _ in range(rounds):
            client.post("/", json=tx, headers=FHIR)
        batch = rounds * 100 / (time.perf_counter() - t0)
    return single, batch


def run(requests: int = 2000, tasks: int = 600) -> dict[str, float]:
    tmp = tempfile.mkdtemp(prefix="bench-rest-")
    url = os.environ.get("FHIR_GATEWAY_BENCH_DATABASE_URL", f"sqlite:///{tmp}/bench.db")
    env = {"FHIR_GATEWAY_DATABASE_URL": url, "FHIR_GATEWAY_LOG_LEVEL": "WARNING"}
    from fhir_gateway.store.db import make_engine
    from fhir_gateway.store.migrate import upgrade

    upgrade(make_engine(url))
    results: dict[str, float] = {}
    with server("fhir_gateway.app:create_app", env) as base:
        patient_id, owner = _seed(base, tasks)
        read_path = f"/Patient/{patient_id}"
        search_path = f"/Task?owner={owner}&status=requested"
        bodies = {"read": httpx.get(base + read_path).content, "search": httpx.get(base + search_path).content}
        gw_read = load(lambda c: c.get(base + read_path), requests=requests)
        gw_search = load(lambda c: c.get(base + search_path), requests=requests // 2)
        single, batch = _writes(base, 300)
    for name, gw in (("read", gw_read), ("search", gw_search)):
        path = os.path.join(tmp, f"{name}.json")
        with open(path, "wb") as fh:
            fh.write(bodies[name])
        with server("bench._bare:create_app", {"BARE_BODY_FILE": path}) as bare_base:
            target = read_path if name == "read" else search_path
            bare = load(lambda c, t=target: c.get(bare_base + t), requests=requests if name == "read" else requests // 2)
        results[f"{name}_rps"] = gw.rps
        results[f"{name}_bare_rps"] = bare.rps
        results[f"{name}_ratio"] = gw.rps / bare.rps
        results[f"{name}_p95_ms"] = gw.pct(0.95)
    results["create_per_s"] = single
    results["transaction_resources_per_s"] = batch
    return results


def main() -> None:
    r = run()
    rows = [
        ("read by id", f"{r['read_rps']:.0f}/s", f"{r['read_bare_rps']:.0f}/s", f"{r['read_ratio']:.2f}", f"{r['read_p95_ms']:.1f}"),
        ("Task?owner&status", f"{r['search_rps']:.0f}/s", f"{r['search_bare_rps']:.0f}/s", f"{r['search_ratio']:.2f}", f"{r['search_p95_ms']:.1f}"),
    ]
    print(table(rows, ("benchmark", "gateway", "bare FastAPI", "ratio", "p95 ms")))
    print(f"single creates: {r['create_per_s']:.0f} resources/s; "
          f"100-entry transactions: {r['transaction_resources_per_s']:.0f} resources/s")
    print(json.dumps(r))


if __name__ == "__main__":
    main()
