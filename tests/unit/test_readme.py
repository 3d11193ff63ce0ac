"""The README stays true: two quick-start commands, and every setting documented."""

from __future__ import annotations

import re
from pathlib import Path

from fhir_gateway.settings import Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_every_setting_is_documented_in_the_readme():
    missing = [n for n in Settings.model_fields if f"`FHIR_GATEWAY_{n.upper()}`" not in README]
    assert missing == []


def test_quick_start_is_exactly_two_commands():
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```sh\n(.*?)```", section, flags=re.S)
    lines = [line for block in commands for line in block.strip().splitlines()]
    assert len(lines) == 2
    assert "fhir-gateway serve" in lines[0]
    assert "pytest" in lines[1]


def test_quick_start_says_where_the_web_pages_are_and_how_to_make_the_first_user():
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert "http://127.0.0.1:8080/web" in section
    assert "fhir-gateway users add" in section and "--role case-manager" in section
