"""The kit's checks, one module per concern; importing this package registers them all."""

from __future__ import annotations

from conformance.checks import (  # noqa: F401
    capability,
    conditional,
    crud,
    errors,
    history,
    patch,
    search,
    search_results,
    transactions,
    versioning,
)
