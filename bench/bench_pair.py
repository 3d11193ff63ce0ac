"""Two trees side by side, message by message: the gateway CPU of each message kind of
``bench_writepath`` in this tree against another checkout (a git worktree of an earlier commit).

    git worktree add /tmp/base 5f9f2fb
    python bench/bench_pair.py /tmp/base                       # every kind, PostgreSQL
    python bench/bench_pair.py /tmp/base --kinds a01:80,a08:40

On a small shared machine the speed drifts by up to half between runs minutes apart, and
``bench_writepath``'s per-run means move with it. Here each tree runs in a process of its own on
a database of its own; both get the same messages, and the two take turns message by message (who
goes first alternates), so a slow minute slows both. Per kind it prints each tree's median thread
CPU per message and the median of the per-message ratios (this tree / the other): the figure to
compare commits by. It writes nothing: the README's tables come from ``bench_writepath``.
Both trees need ``bench/bench_writepath.py`` (issue 21 and later).
"""

from __future__ import annotations

import argparse
import os
import select
import statistics
import subprocess
import sys
import time
import uuid
from typing import IO, Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
KINDS = ("first_stay_discharge", "readmission", "a01", "a08", "mix")  # bench_writepath's
DEFAULT_KINDS = "first_stay_discharge:30,readmission:24,a01:60,a08:40,mix:30"
_ANSWER_TIMEOUT_S = 120.0  # one message, however slow the machine
_START_TIMEOUT_S = 600.0  # a fresh database migrated and seeded


def _worker(tree: str, database: str) -> None:
    """In a tree: set up the gateway on a fresh database, then for each line ``KIND N RUN I``
    send round I of that kind's messages and print the thread CPU ms of its last."""
    os.chdir(tree)
    sys.path.insert(0, tree)
    from bench.bench_intake import DEFAULT_URL, _settings, prepare
    from bench.bench_writepath import _messages, _started
    from fhir_gateway.app import install_rules
    from fhir_gateway.services.ingest import Intake
    from fhir_gateway.store.db import Database

    url = DEFAULT_URL.replace("fhir_bench_intake", database)
    prepare(url, fresh=True)
    settings = _settings(url)
    db = Database(url, pool_size=2)
    install_rules(settings, db)  # type: ignore[call-arg]
    intake = Intake(db, settings)
    _started()
    rounds: dict[tuple[str, int, str], list[list[bytes]]] = {}

    def send(raw: bytes) -> None:
        answer = intake.receive_hl7(raw, channel="bench")
        if answer.code != "AA":
            raise RuntimeError(f"intake answered {answer.code}: {answer.body[:300]!r}")

    print("ready", flush=True)
    for line in sys.stdin:
        kind, count, run, index = line.split()
        key = (kind, int(count), run)
        if key not in rounds:
            rounds[key] = _messages(run, int(count))[kind]
        messages = rounds[key][int(index)]
        for raw in messages[:-1]:
            send(raw)
        started = time.thread_time()
        send(messages[-1])
        print(f"{1000 * (time.thread_time() - started):.4f}", flush=True)
    db.dispose()


class _Tree:
    def __init__(self, tree: str, database: str) -> None:
        self.tree = tree
        self.process = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--worker", tree, database],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        if self._line(_START_TIMEOUT_S) != "ready":
            raise RuntimeError(f"{tree}: the worker did not start")

    def _line(self, timeout: float = _ANSWER_TIMEOUT_S) -> str:
        """The worker's next line; a worker silent past ``timeout`` is killed (one line answers
        each request, so nothing waits in the pipe's buffer while ``select`` waits)."""
        out: IO[str] | None = self.process.stdout
        assert out is not None
        if not select.select([out], [], [], timeout)[0]:
            self.process.kill()
            raise RuntimeError(f"{self.tree}: no answer from the worker within {timeout:g} s")
        line = out.readline().strip()
        if not line:
            raise RuntimeError(f"{self.tree}: the worker stopped (exit {self.process.poll()})")
        return line

    def send(self, request: str) -> float:
        assert self.process.stdin is not None
        self.process.stdin.write(request + "\n")
        self.process.stdin.flush()
        return float(self._line())

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=_ANSWER_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()


def compare(other: str, kinds: list[tuple[str, int]]) -> list[dict[str, Any]]:
    """Per kind: each tree's median CPU ms per message and the median ratio (this / other)."""
    here, there = _Tree(ROOT, "fhir_bench_pair_here"), _Tree(other, "fhir_bench_pair_other")
    try:
        warm = f"warm{uuid.uuid4().hex[:5]}"
        for i in range(3):
            for tree in (here, there):
                tree.send(f"mix 3 {warm} {i}")
        results = []
        for kind, count in kinds:
            run = uuid.uuid4().hex[:6]
            mine: list[float] = []
            theirs: list[float] = []
            for i in range(count):
                turns = [(here, mine), (there, theirs)]
                for tree, into in turns if i % 2 == 0 else reversed(turns):
                    into.append(tree.send(f"{kind} {count} {run} {i}"))
            ratios = [m / t for m, t in zip(mine, theirs, strict=True) if t > 0]
            results.append(
                {
                    "kind": kind,
                    "messages": count,
                    "here_ms": statistics.median(mine),
                    "other_ms": statistics.median(theirs),
                    "ratio": statistics.median(ratios),
                }
            )
        return results
    finally:
        here.close()
        there.close()


def _kinds(text: str) -> list[tuple[str, int]]:
    """``KIND:MESSAGES,…`` → [(kind, messages)]; argparse's error for a malformed one."""
    out = []
    for part in text.split(","):
        kind, _, count = part.strip().partition(":")
        if kind not in KINDS or not (count or "30").isdigit() or not 0 < int(count or 30) <= 1000:
            raise argparse.ArgumentTypeError(
                f"{part!r}: KIND:MESSAGES, KIND one of {', '.join(KINDS)}, 1 to 1000 messages"
            )
        out.append((kind, int(count or 30)))
    return out


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        _worker(sys.argv[2], sys.argv[3])
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("other", help="the other tree: a checkout of another commit")
    parser.add_argument(
        "--kinds", type=_kinds, default=DEFAULT_KINDS, help="KIND:MESSAGES, comma-separated"
    )
    args = parser.parse_args()
    print(f"this tree: {ROOT}\nthe other: {os.path.abspath(args.other)}")
    print(f"{'kind':22s} {'this ms':>8s} {'other ms':>9s} {'ratio (median per message)':>28s}")
    for r in compare(os.path.abspath(args.other), args.kinds):
        print(
            f"{r['kind']:22s} {r['here_ms']:8.2f} {r['other_ms']:9.2f} {r['ratio']:28.3f}"
            f"   ({r['messages']} messages each)",
            flush=True,
        )
