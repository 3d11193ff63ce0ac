"""The gateway under uvicorn with N worker processes, as ``fhir-gateway serve --workers N`` runs it
(with ``fhir_gateway.workers.http.NoDelayHTTP``), and only its log quieter.

    python -m bench._scale_serve --port 8080 --workers 4
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

__all__ = ["server"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def server(env: dict[str, str], *, workers: int) -> Iterator[str]:
    """The gateway on a free loopback port until the block ends; yields its base URL."""
    port = _free_port()
    cmd = [sys.executable, "-m", "bench._scale_serve", "--port", str(port), "--workers", str(workers)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env})
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the gateway exited with {proc.returncode} before it served")
            try:
                httpx.get(base + "/_health", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the gateway did not start") from None
                time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def main() -> None:
    import uvicorn

    from fhir_gateway.workers.http import NoDelayHTTP

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    uvicorn.run("fhir_gateway.app:create_app", factory=True, host="127.0.0.1", port=args.port,
                workers=args.workers, http=NoDelayHTTP, log_level="warning")


if __name__ == "__main__":
    main()
