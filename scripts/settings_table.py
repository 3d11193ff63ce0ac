#!/usr/bin/env python3
"""Print the README's settings table from the Settings model (the one source of truth)."""

from __future__ import annotations

import json

from pydantic_core import PydanticUndefined

from fhir_gateway.settings import Settings


def _default(field) -> str:  # type: ignore[no-untyped-def]
    value = field.default
    if value is PydanticUndefined:
        value = field.default_factory() if field.default_factory else None
    if value is None:
        return "(none)"
    return f"`{json.dumps(value) if isinstance(value, list | dict | bool) else value}`"


def main() -> None:
    print("| variable | default | meaning |")
    print("| --- | --- | --- |")
    for name, field in Settings.model_fields.items():
        meaning = (field.description or "").replace("|", "\\|")
        print(f"| `FHIR_GATEWAY_{name.upper()}` | {_default(field)} | {meaning} |")


if __name__ == "__main__":
    main()
