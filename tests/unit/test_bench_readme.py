"""bench/readme.py: the README's benchmark tables come from the benchmarks' JSON, between markers,
and a benchmark that did not run keeps its old table. No database, no benchmark run."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from bench import readme
from bench._rows import row
from bench.bench_intake import rows as intake_rows
from bench.bench_scale import rows as scale_rows
from bench.bench_writepath import rows as writepath_rows

CONTEXT = {
    "measured_at": "2026-12-04 10:00 UTC",
    "commit": "abc1234",
    "cpus": 2,
    "load_average": 0.3,
}


def _rest() -> dict[str, Any]:
    read = row(
        "read by id, auth + audit on",
        1265.0,
        "/s",
        baseline=1920.0,
        baseline_is="bare FastAPI, same bytes",
        target=("ratio", ">=", 0.8),
    )
    read["ratio_range"] = [0.55, 0.83]
    cpu = row("read by id: server CPU per request", 0.74, "ms", baseline=0.40, baseline_is="bare")
    return {"bench": "rest", "context": CONTEXT, "database": "sqlite", "rows": [read, cpu]}


def _writepath(database: str = "postgresql", first: float = 60.0) -> dict[str, Any]:
    figures: dict[str, Any] = {"database": database}
    for kind, cpu in {
        "first_stay_discharge": first,
        "readmission": 1.6 * first,
        "a01": 9.0,
        "a08": 12.0,
        "mix": 90.0,
    }.items():
        figures[kind] = {"statements": 100.0, "gateway_cpu_ms": cpu, "db_cpu_ms": 30.0}
    return {"bench": "writepath", "context": CONTEXT, **figures, "rows": writepath_rows(figures)}


def _block(name: str, body: str) -> str:
    return f"<!-- bench:{name}:start -->\n{body}<!-- bench:{name}:end -->"


def _between(text: str, name: str) -> str:
    return text.split(f"<!-- bench:{name}:start -->\n", 1)[1].split(f"<!-- bench:{name}:end -->")[0]


OLD_TABLE = "| benchmark | figure |\n| --- | --- |\n| read by id | 999/s (typed by hand) |\n"


def test_a_result_becomes_a_table_with_its_baseline_ratio_and_verdict():
    body = readme.rows_block("rest")(readme.Results({"rest": _rest()}), "")
    lines = body.splitlines()
    assert lines[0] == "| measure | figure | baseline, same run | ratio | target |"
    assert lines[2] == (
        "| read by id, auth + audit on | 1,265/s | bare FastAPI, same bytes: 1,920/s "
        "| 0.66 (rounds 0.55–0.83) | ratio ≥ 0.8: **not met** |"
    )
    assert lines[3] == "| read by id: server CPU per request | 0.74 ms | bare: 0.40 ms | 1.85 |  |"
    assert "measured 2026-12-04 10:00 UTC on commit abc1234" in body


def test_an_earlier_trees_result_adds_a_before_column():
    earlier = _rest()
    earlier["rows"][0]["value"] = 707.0
    earlier["context"] = {**earlier["context"], "commit": "0ld7ree"}
    body = readme.rows_block("rest")(readme.Results({"rest": _rest()}, {"rest": earlier}), "")
    assert body.splitlines()[0].startswith("| measure | before | figure |")
    assert "| read by id, auth + audit on | 707/s | 1,265/s |" in body
    # the reader learns which tree "before" was
    assert "before: `bench/results/before/rest.json`, sqlite, measured" in body
    assert "on commit 0ld7ree" in body


def test_regenerating_replaces_only_what_is_between_the_markers():
    before = (
        "# Title\n\nText above, with 12 ms.\n\n" + _block("rest", OLD_TABLE) + "\n\nText below.\n"
    )
    after, notes = readme.regenerate(before, readme.Results({"rest": _rest()}))
    assert "999/s" not in after and "1,265/s" in _between(after, "rest")
    assert after.startswith("# Title\n\nText above, with 12 ms.\n\n<!-- bench:rest:start -->\n")
    assert after.endswith("<!-- bench:rest:end -->\n\nText below.\n")
    assert notes == ["bench:rest: rewritten"]
    again, _ = readme.regenerate(after, readme.Results({"rest": _rest()}))
    assert again == after  # a second run finds its own markers and changes nothing


def test_a_missing_result_keeps_the_old_table_and_says_so():
    before = _block("rest", OLD_TABLE) + "\n" + _block("mllp", OLD_TABLE)
    after, notes = readme.regenerate(before, readme.Results({"rest": _rest()}))
    assert _between(after, "mllp") == OLD_TABLE
    assert "bench:mllp: no bench/results/mllp.json, the old table is left as it was" in notes


def test_an_unknown_block_is_left_alone_and_named():
    before = _block("nosuchbench", OLD_TABLE)
    after, notes = readme.regenerate(before, readme.Results({"rest": _rest()}))
    assert after == before
    assert notes == ["bench:nosuchbench: unknown block, left as it was"]


def test_the_write_path_table_judges_issue_21s_targets_on_postgresql():
    body = readme.writepath_block(readme.Results({"writepath": _writepath()}), "")
    lines = {line.split(" | ")[0].lstrip("| "): line for line in body.splitlines()}
    assert "gateway CPU ≤ 65 ms: met" in lines["first-stay discharge (A03)"]
    assert "PostgreSQL CPU ≤ 25 ms: **not met**" in lines["first-stay discharge (A03)"]
    assert "gateway CPU ratio ≤ 1.5 (1.60): **not met**" in lines["readmission (A03)"]
    assert "gateway CPU ≤ 10 ms: met" in lines["admission (A01)"]
    assert "gateway CPU ≤ 10 ms: **not met**" in lines["update (A08)"]
    assert "gateway CPU ≤ 100 ms: met" in lines["the intake benchmark's mix (15 % readmissions)"]


def test_postgresql_targets_measured_on_sqlite_are_shown_but_not_judged():
    result = _writepath(database="sqlite")
    gateway = next(r for r in result["rows"] if r["measure"].endswith("(A03): gateway CPU"))
    assert gateway["target"] == {"of": "value", "op": "<=", "limit": 65.0}
    assert gateway["met"] is None
    assert readme.verdict(gateway) == "not judged (a PostgreSQL target, measured on sqlite)"


def test_the_targets_table_keeps_the_old_lines_of_a_benchmark_that_did_not_run():
    scale_line = "| Task?owner&status=requested, p95 | ≤ 25 ms | 15.2 ms | met | `bench_scale.py` |"
    stamp = "- _`bench_scale.py` at 1,000,768 resources: copied by hand._"
    old = f"| measure | target | figure | met | source |\n| --- | --- | --- | --- | --- |\n{scale_line}\n\n{stamp}\n"
    results = readme.Results({"writepath": _writepath(first=70.0), "rest": _rest()})
    body = readme.targets_block(results, old)
    lines = body.splitlines()
    assert lines[2] == (
        "| first-stay discharge (A03): gateway CPU (postgresql) | ≤ 65 ms | 70.0 ms | **not met** "
        "| `bench_writepath.py` |"
    )
    assert scale_line in lines and stamp in lines
    assert lines.index(scale_line) > max(i for i, line in enumerate(lines) if "bench_rest" in line)
    assert not any("server CPU per request" in line for line in lines)  # rows without a target


def test_the_script_reads_the_results_directory_and_rewrites_the_readme(tmp_path: Path, capsys):
    results = tmp_path / "results"
    results.mkdir()
    (results / "rest.json").write_text(json.dumps(_rest()))
    (results / "latest.json").write_text("{}")  # bench/run's summary: not a block's source
    page = tmp_path / "README.md"
    page.write_text("Intro.\n" + _block("rest", OLD_TABLE) + "\n" + _block("scale", OLD_TABLE))
    assert readme.main(["--results", str(results), "--readme", str(page)]) == 0
    text = page.read_text()
    assert "1,265/s" in _between(text, "rest") and _between(text, "scale") == OLD_TABLE
    assert "bench:scale: no bench/results/scale.json" in capsys.readouterr().err


def test_every_bench_block_of_the_readme_is_closed_and_known():
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    starts = re.findall(r"<!-- bench:([a-z0-9_-]+):start -->", text)
    ends = re.findall(r"<!-- bench:([a-z0-9_-]+):end -->", text)
    assert starts == ends
    assert set(starts) == set(readme.BLOCKS)


def test_a_small_ratio_keeps_its_digits():
    mllp = row("MLLP intake", 24.3, "/s", baseline=21558.0, baseline_is="bare listener")
    result = {"bench": "mllp", "context": CONTEXT, "rows": [mllp]}
    body = readme.rows_block("mllp")(readme.Results({"mllp": result}), "")
    assert "| MLLP intake | 24.3/s | bare listener: 21,558/s | 0.0011 |  |" in body


def _scale() -> dict[str, Any]:
    def search(p95: float) -> dict[str, float]:
        return {
            "single_p50_ms": 6.0,
            "single_p95_ms": p95,
            "single_p99_ms": 30.0,
            "single_rps": 133.0,
            "rps": 186.0,
            "p95_ms": 42.0,
        }

    def processes(p95: float) -> dict[str, Any]:
        figures: dict[str, Any] = {"health_p95_ms": 2.0}
        figures |= {name: search(p95) for name in readme.SCALE_SEARCHES}
        return figures

    figures: dict[str, Any] = {"clients": 4, "database": "postgresql"}
    for mode in ("on", "off"):
        figures[mode] = {"workers_1": processes(15.2), "workers_2": processes(26.0)}
    return {"bench": "scale", "context": CONTEXT, **figures, "rows": scale_rows(figures)}


def test_the_scale_table_joins_each_number_of_processes_in_one_cell():
    body = readme.scale_block(readme.Results({"scale": _scale()}), "")
    assert body.splitlines()[0].endswith("| 1 client | 4 clients | 4 clients p95 |")
    assert (
        "| `Task?owner=…&status=requested` | 1 / 2 | 6.0/15.2/30.0 · 6.0/26.0/30.0 | 133 · 133/s "
        "| 186 · 186/s | 42 · 42 |"
    ) in body


def test_the_scale_target_is_judged_for_one_process_with_auth_and_audit_on_only():
    judged = [r for r in _scale()["rows"] if r["target"] is not None]
    assert len(judged) == 3  # one per search
    assert all(", auth + audit on, 1 process:" in r["measure"] and r["met"] for r in judged)


def _intake(senders: int = 8) -> dict[str, Any]:
    k1 = {
        "discharges_per_s": 5.1,
        "versions_per_s": 103.0,
        "p50_ms": 1552.0,
        "p95_ms": 4015.0,
        "gateway_cpu_ms_per_discharge": 164.0,
        "store_per_s": 15.0,
        "store_cpu_ms_per_discharge": 58.0,
    }
    figures = {"database": "postgresql", "senders": senders, "throughput": {"k1": k1}}
    return {"bench": "intake", "context": CONTEXT, **figures, "rows": intake_rows(figures)}


def test_the_intake_table_and_its_target_of_twelve_discharges_a_second():
    body = readme.intake_block(readme.Results({"intake": _intake()}), "")
    assert "| 1 | 5.1 | 103 | 1,552 / 4,015 | 164 ms | 15.0/s (58 ms CPU) |" in body
    rate = _intake()["rows"][0]
    assert (readme.target_cell(rate), readme.verdict(rate)) == ("≥ 12/s", "**not met**")
    other = _intake(senders=4)["rows"][0]
    assert readme.verdict(other) == "not judged (the target is for 8 senders on PostgreSQL)"


def test_a_result_without_rows_keeps_the_old_table_and_says_why():
    old_style = {k: v for k, v in _rest().items() if k != "rows"}
    before = _block("rest", OLD_TABLE)
    after, notes = readme.regenerate(before, readme.Results({"rest": old_style}))
    assert after == before
    assert notes == [
        "bench:rest: bench/results/rest.json has no rows (written by an older benchmark), "
        "the old table is left as it was"
    ]
