"""A group of identical child processes run as one: `fhir-gateway mllp --processes N`.

Python runs one thread at a time per process, so one listener uses one core however many senders
it serves. N listeners on one port (SO_REUSEPORT: the kernel spreads new connections over them)
use N cores. The group lives and dies together: SIGINT/SIGTERM reach every child, and when one
child ends on its own the others are stopped and the group exits non-zero, so the service manager
that restarts the command restarts all of it (the inbox applies what the stopped ones left).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from types import FrameType

__all__ = ["run_group"]

STOP_GRACE_S = 30.0  # a child that has not ended this long after SIGTERM is killed
POLL_S = 0.2


def run_group(commands: Sequence[Sequence[str]]) -> int:
    """Start one child per command (arguments after the interpreter) and wait for all of them;
    returns the exit code the group should end with."""
    # Their own process group: a terminal's Ctrl-C reaches them once, through the handler below.
    children = [
        subprocess.Popen([sys.executable, *command], process_group=0) for command in commands
    ]
    stopping = False

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stopping and all(child.poll() is None for child in children):
            time.sleep(POLL_S)
        ended_alone = not stopping
        if ended_alone:  # the others have had no signal yet; a second one would kill mid-stop
            for child in children:
                if child.poll() is None:
                    child.terminate()
        _wait_or_kill(children)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 1 if ended_alone else max((child.returncode or 0) for child in children)


def _wait_or_kill(children: Sequence[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + STOP_GRACE_S
    for child in children:
        try:
            child.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
