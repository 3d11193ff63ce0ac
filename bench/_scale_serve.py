"""The gateway under uvicorn with N worker processes, as ``fhir-gateway serve --workers N`` runs it
(with ``fhir_gateway.workers.http.NoDelayHTTP``), and only its log quieter.

    python -m bench._scale_serve --port 8080 --workers 4
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from bench._harness import free_port, serving

__all__ = ["server"]


@contextmanager
def server(env: dict[str, str], *, workers: int) -> Iterator[str]:
    """The gateway on a free loopback port until the block ends; yields its base URL."""
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "bench._scale_serve",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    with serving(cmd, port, env, name="the gateway", timeout=90) as base:
        yield base


def main() -> None:
    import uvicorn

    from fhir_gateway.workers.http import NoDelayHTTP

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    uvicorn.run(
        "fhir_gateway.app:create_app",
        factory=True,
        host="127.0.0.1",
        port=args.port,
        workers=args.workers,
        http=NoDelayHTTP,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
