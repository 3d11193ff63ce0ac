"""Server-side TLS contexts for MLLP (optionally requiring client certificates)."""

from __future__ import annotations

import ssl
from pathlib import Path

__all__ = ["server_context"]


def server_context(
    certfile: str | Path, keyfile: str | Path | None = None, *, client_ca: str | Path | None = None
) -> ssl.SSLContext:
    """A TLS 1.2+ server context; with ``client_ca`` every client must present a certificate
    signed by it."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(certfile), str(keyfile) if keyfile else None)
    if client_ca:
        context.load_verify_locations(str(client_ca))
        context.verify_mode = ssl.CERT_REQUIRED
    return context
