"""``fhir-gateway rules``: what rides on resource writes, by hook point, in the order it runs."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

__all__ = ["rules_command", "render"]


def render(listing: dict[str, list[dict[str, Any]]]) -> str:
    """One block per hook point: its rules numbered in the order they run, with their type."""
    lines: list[str] = []
    for point, rules in listing.items():
        lines.append(f"{point} ({len(rules)})")
        width = max((len(r["name"]) for r in rules), default=0)
        for i, rule in enumerate(rules, 1):
            batch = "  (batch)" if rule.get("batch") else ""
            lines.append(
                f"  {i:>2}. {rule['name']:<{width}}  {rule['resource_type'] or '*'}{batch}"
            )
    return "\n".join(lines)


def rules_command(
    as_json: Annotated[bool, typer.Option("--json", help="The listing as JSON")] = False,
) -> None:
    """List the write rules the gateway installs with the current settings: hook point → rules in
    the order they run (``*``: every resource type; ``(batch)``: called once with the writes
    stored together)."""
    from fhir_gateway.app import build_rules
    from fhir_gateway.settings import get_settings

    listing = build_rules(get_settings()).listing()
    typer.echo(json.dumps(listing, indent=2) if as_json else render(listing))
