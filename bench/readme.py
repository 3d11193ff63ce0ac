"""Rewrite the README's benchmark tables from the benchmarks' JSON, so nobody types a figure.

    python bench/readme.py                  # bench/results/*.json → README.md
    python bench/readme.py --results DIR --readme PATH

Each table sits between ``<!-- bench:NAME:start -->`` and ``<!-- bench:NAME:end -->``; only what
is between the markers changes. A block whose result file is missing keeps its old table, and the
script says so (a benchmark not run today does not erase what an earlier run measured). For a
"before and after" table, put the earlier tree's JSON in ``<results>/before/<name>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

Result = dict[str, Any]
# The benchmarks whose rows carry issue 21's targets, in the order of its targets table.
TARGET_SOURCES = ("writepath", "intake", "rest", "scale")
_MARKER = re.compile(
    r"(<!-- bench:(?P<name>[a-z0-9_-]+):start -->\n)(?P<body>.*?)(<!-- bench:(?P=name):end -->)",
    re.S,
)


@dataclass
class Results:
    """What ``bench/results`` holds: this tree's figures, and an earlier tree's if kept."""

    now: dict[str, Result]
    before: dict[str, Result] = field(default_factory=dict)


def load(results_dir: str) -> Results:
    return Results(_load_dir(results_dir), _load_dir(os.path.join(results_dir, "before")))


def _load_dir(path: str) -> dict[str, Result]:
    if not os.path.isdir(path):
        return {}
    out = {}
    for name in sorted(os.listdir(path)):
        if name.endswith(".json") and name != "latest.json":
            with open(os.path.join(path, name)) as fh:
                out[name.removesuffix(".json")] = json.load(fh)
    return out


# --- cells ----------------------------------------------------------------------------------------


def number(value: float | None, unit: str = "") -> str:
    """1,265/s, 52.3 ms, 0.66, 0.0042: thousands separated, one decimal below 100, two below 1,
    two significant digits below 0.1."""
    if value is None:
        return "–"
    if abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 1:
        text = f"{value:.1f}"
    elif abs(value) >= 0.1:
        text = f"{value:.2f}"
    else:
        text = f"{value:#.2g}"
    if not unit or unit.startswith("/"):
        return text + unit
    return f"{text} {unit}"


def target_cell(row: Result) -> str:
    target = row["target"]
    if target is None:
        return ""
    op = {"<=": "≤", ">=": "≥"}[target["op"]]
    if target["of"] == "ratio":
        return f"ratio {op} {target['limit']:g}"
    unit = row["unit"] if row["unit"].startswith("/") else f" {row['unit']}"
    return f"{op} {target['limit']:g}{unit}"


def verdict(row: Result) -> str:
    if row["target"] is None:
        return ""
    if row["met"] is None:
        return f"not judged ({row.get('why') or 'no figure'})"
    return "met" if row["met"] else "**not met**"


def ratio_cell(row: Result) -> str:
    if row["ratio"] is None:
        return ""
    text = ratio(row["ratio"])
    if row.get("ratio_range"):
        low, high = row["ratio_range"]
        text += f" (rounds {ratio(low)}–{ratio(high)})"
    return text


def ratio(value: float) -> str:
    """0.66, 1.54; a small one keeps two significant digits (0.0011, not 0.00)."""
    return f"{value:.2f}" if abs(value) >= 0.1 else f"{value:#.2g}"


def baseline_cell(row: Result) -> str:
    if row["baseline"] is None:
        return ""
    return f"{row['baseline_is']}: {number(row['baseline'], row['unit'])}"


def markdown(header: tuple[str, ...], lines: Sequence[tuple[str, ...]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    out += ["| " + " | ".join(cell.replace("|", "\\|") for cell in line) + " |" for line in lines]
    return "\n".join(out)


def provenance(name: str, result: Result, earlier: Result | None = None) -> str:
    """Which run a table comes from; with the earlier tree's run when it shows one."""
    line = f"_{_run(f'bench/results/{name}.json', result)}"
    if earlier:
        line += f"; before: {_run(f'bench/results/before/{name}.json', earlier)}"
    return line + "; table written by `bench/readme.py`._"


def _run(path: str, result: Result) -> str:
    c = result.get("context", {})
    where = f", {result['database']}" if "database" in result else ""
    return (
        f"`{path}`{where}, measured {c.get('measured_at', '?')} on commit "
        f"{c.get('commit', '?')}, load average {c.get('load_average', '?')} on "
        f"{c.get('cpus', '?')} CPUs"
    )


# --- blocks ---------------------------------------------------------------------------------------


class Missing(LookupError):
    """The block's result file is not there: its old table stays."""


def _need(results: Results, name: str, *, rows: bool = True) -> Result:
    if name not in results.now:
        raise Missing(f"no bench/results/{name}.json")
    if rows and "rows" not in results.now[name]:
        raise Missing(f"bench/results/{name}.json has no rows (written by an older benchmark)")
    return results.now[name]


def rows_block(name: str) -> Callable[[Results, str], str]:
    """Every row of one benchmark: figure, baseline of the same run, ratio, target; with an
    earlier tree's figure beside it when ``before/<name>.json`` is there."""

    def render(results: Results, old: str) -> str:
        result = _need(results, name)
        before = {r["measure"]: r for r in results.before.get(name, {}).get("rows", [])}
        header: tuple[str, ...] = ("measure", "figure", "baseline, same run", "ratio", "target")
        if before:
            header = ("measure", "before", *header[1:])
        lines = []
        for row in result["rows"]:
            cells = [row["measure"], number(row["value"], row["unit"])]
            if before:
                earlier = before.get(row["measure"])
                cells.insert(1, number(earlier["value"], earlier["unit"]) if earlier else "")
            target = f"{target_cell(row)}: {verdict(row)}" if row["target"] else ""
            cells += [baseline_cell(row), ratio_cell(row), target]
            lines.append(tuple(cells))
        earlier_run = results.before.get(name) if before else None
        return markdown(header, lines) + "\n\n" + provenance(name, result, earlier_run)

    return render


def writepath_block(results: Results, old: str) -> str:
    """Per message kind: statements, gateway CPU, PostgreSQL CPU (before → now if kept)."""
    result = _need(results, "writepath")
    earlier = results.before.get("writepath", {})
    measures = ("SQL statements", "gateway CPU", "PostgreSQL CPU")
    now_rows = {r["measure"]: r for r in result["rows"]}
    before_rows = {r["measure"]: r for r in earlier.get("rows", [])}
    labels = list(dict.fromkeys(m.rsplit(": ", 1)[0] for m in now_rows))
    lines = []
    for label in labels:
        cells, targets = [label], []
        for measure in measures:
            row = now_rows.get(f"{label}: {measure}")
            past = before_rows.get(f"{label}: {measure}")
            text = number(row["value"]) if row else "–"
            if past:
                text = f"{number(past['value'])} → {text}"
            if row and row["target"]:
                shown = f" ({ratio(row['ratio'])})" if row["target"]["of"] == "ratio" else ""
                targets.append(f"{measure} {target_cell(row)}{shown}: {verdict(row)}")
            cells.append(text)
        cells.append("; ".join(targets))
        lines.append(tuple(cells))
    arrow = " before → now" if before_rows else ""
    header = (
        "message",
        f"SQL statements{arrow}",
        f"gateway CPU ms{arrow}",
        f"PostgreSQL CPU ms{arrow}",
        "issue 21's target",
    )
    return markdown(header, lines) + "\n\n" + provenance("writepath", result, earlier or None)


def intake_block(results: Results, old: str) -> str:
    """Per number of MLLP listener processes: discharges/s, versions/s, ACK latency, gateway CPU,
    and storing the message alone in the same run."""
    result = _need(results, "intake", rows=False)
    throughput = result.get("throughput", {})
    ks = sorted(int(key[1:]) for key in throughput if key.startswith("k"))
    if not ks:
        raise Missing("no throughput in bench/results/intake.json (run with --discharges > 0)")
    lines = []
    for k in ks:
        f = throughput[f"k{k}"]
        lines.append(
            (
                str(k),
                number(f["discharges_per_s"]),
                number(f["versions_per_s"]),
                f"{f['p50_ms']:,.0f} / {f['p95_ms']:,.0f}",
                f"{f['gateway_cpu_ms_per_discharge']:,.0f} ms",
                f"{number(f['store_per_s'], '/s')} ({f['store_cpu_ms_per_discharge']:,.0f} ms CPU)",
            )
        )
    header = (
        "MLLP listener processes",
        "discharges/s",
        "resource versions/s",
        "ACK p50/p95 ms",
        "gateway CPU per discharge",
        "storing the message alone (same run)",
    )
    return markdown(header, lines) + "\n\n" + provenance("intake", result)


# bench_scale's searches, as the README names them.
SCALE_SEARCHES = {
    "task_owner_status": "`Task?owner=…&status=requested`",
    "careplan_include": "`CarePlan?patient=…&_include=CarePlan:goal`",
    "task_owner_updated": "`Task?owner=…&_lastUpdated=gt…` (7 days)",
}


def scale_block(results: Results, old: str) -> str:
    """Per search, authentication and audit on: each number of processes' latency with one client
    and throughput with one and with N clients, one cell per figure, processes joined by " · "."""
    result = _need(results, "scale", rows=False)
    by_processes = sorted(result["on"].items(), key=lambda item: int(item[0].split("_")[1]))
    processes = " / ".join(key.removeprefix("workers_") for key, _ in by_processes)
    clients = result.get("clients", 4)
    lines = []
    for name, label in SCALE_SEARCHES.items():
        runs = [figures[name] for _, figures in by_processes]

        def joined(cell: Callable[[dict[str, float]], str], runs: list[Any] = runs) -> str:
            return " · ".join(cell(f) for f in runs)

        lines.append(
            (
                label,
                processes,
                joined(
                    lambda f: (
                        f"{f['single_p50_ms']:.1f}/{f['single_p95_ms']:.1f}/{f['single_p99_ms']:.1f}"
                    )
                ),
                joined(lambda f: f"{f['single_rps']:.0f}") + "/s",
                joined(lambda f: f"{f['rps']:.0f}") + "/s",
                joined(lambda f: f"{f['p95_ms']:.0f}"),
            )
        )
    header = (
        "search",
        "processes",
        "1 client p50/p95/p99",
        "1 client",
        f"{clients} clients",
        f"{clients} clients p95",
    )
    return markdown(header, lines) + "\n\n" + provenance("scale", result)


def targets_block(results: Results, old: str) -> str:
    """Issue 21's targets, each beside today's figure. A benchmark without a result keeps its
    lines of the old table (found by the source column)."""
    old_rows = [line for line in old.splitlines() if line.startswith("| ")]
    old_stamps = [line for line in old.splitlines() if line.startswith("- ")]
    lines: list[str] = []
    stamps: list[str] = []
    for name in TARGET_SOURCES:
        source = f"`bench_{name}.py`"
        if "rows" not in results.now.get(name, {}):
            lines += [line for line in old_rows if line.endswith(f"| {source} |")]
            stamps += [s for s in old_stamps if f"results/{name}.json" in s or source in s]
            continue
        stamps.append(f"- {provenance(name, results.now[name])}")
        for row in results.now[name]["rows"]:
            if row["target"] is None:
                continue
            shown = number(row["value"], row["unit"])
            if row["target"]["of"] == "ratio":
                shown = f"{ratio_cell(row)}; {shown} vs {baseline_cell(row)}"
            measure = row["measure"]
            database = results.now[name].get("database")
            if database and database not in measure.lower():
                measure += f" ({database})"
            cells = (measure, target_cell(row), shown, verdict(row), source)
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    header = ("measure", "target", "figure", "met", "source")
    return "\n".join([markdown(header, []), *lines]) + "\n\n" + "\n".join(stamps)


BLOCKS: dict[str, Callable[[Results, str], str]] = {
    "targets": targets_block,
    "writepath": writepath_block,
    "rest": rows_block("rest"),
    "mllp": rows_block("mllp"),
    "intake": intake_block,
    "scale": scale_block,
}


# --- the README -----------------------------------------------------------------------------------


def regenerate(readme: str, results: Results) -> tuple[str, list[str]]:
    """The README with every known block rewritten, and one line per block saying what happened."""
    notes: list[str] = []

    def replace(match: re.Match[str]) -> str:
        name, old = match["name"], match["body"]
        render = BLOCKS.get(name)
        if render is None:
            notes.append(f"bench:{name}: unknown block, left as it was")
            return match[0]
        try:
            body = render(results, old).rstrip("\n") + "\n"
        except Missing as exc:
            notes.append(f"bench:{name}: {exc}, the old table is left as it was")
            return match[0]
        notes.append(f"bench:{name}: rewritten")
        return match[1] + body + match[4]

    return _MARKER.sub(replace, readme), notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default=os.path.join(HERE, "results"))
    parser.add_argument("--readme", default=os.path.join(ROOT, "README.md"))
    args = parser.parse_args(argv)
    with open(args.readme) as fh:
        readme = fh.read()
    updated, notes = regenerate(readme, load(args.results))
    for note in notes or ["no bench:NAME markers found"]:
        print(note, file=sys.stderr)
    if updated != readme:
        with open(args.readme, "w") as fh:
            fh.write(updated)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
