"""Assembling a searchset Bundle from rows, without a database."""

from __future__ import annotations

import subprocess
import sys
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson

from fhir_gateway.search import plan as p
from fhir_gateway.search.bundle import Page, searchset

BASE = "http://gw.example/fhir"


def _bundle(plan: p.SearchPlan, page: Page | None, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("total", None)
    raw = searchset(plan, page, base_url=BASE, resource_type="Patient", **kwargs)
    return dict(orjson.loads(raw))


def _links(bundle: dict[str, Any]) -> dict[str, str]:
    return {link["relation"]: link["url"] for link in bundle["link"]}


def _cursor(url: str, plan: p.SearchPlan) -> p.Cursor:
    token = dict(parse_qsl(urlsplit(url).query))["_cursor"]
    return p.decode_cursor(token, plan.sort)


def _row(res_id: str, *keys: Any, body: bytes | None = None) -> tuple[Any, ...]:
    body = body or orjson.dumps({"resourceType": "Patient", "id": res_id, "gender": "female"})
    return ("Patient", res_id, body, *keys)


def test_a_count_has_the_total_a_self_link_and_no_entries() -> None:
    plan = p.parse("Patient", [("gender", "female"), ("_summary", "count")])
    bundle = _bundle(plan, None, total=3)
    assert bundle["type"] == "searchset" and bundle["total"] == 3
    assert list(_links(bundle)) == ["self"]
    assert _links(bundle)["self"] == f"{BASE}/Patient?gender=female&_summary=count"
    assert "entry" not in bundle


def test_next_and_previous_links_carry_cursors_of_the_edge_rows() -> None:
    plan = p.parse("Patient", [("_sort", "-_id"), ("_count", "2")])
    page = Page([_row("b", "b"), _row("a", "a")], more_before=True, more_after=True)
    links = _links(_bundle(plan, page))
    assert list(links) == ["self", "previous", "next"]  # no cursor in the request: no "first"
    assert _cursor(links["next"], plan) == p.Cursor(True, ("a", "Patient", "a"))
    assert _cursor(links["previous"], plan) == p.Cursor(False, ("b", "Patient", "b"))
    assert links["next"].startswith(f"{BASE}/Patient?_sort=-_id&_count=2&_cursor=")


def test_a_later_page_links_back_to_the_first() -> None:
    first = p.parse("Patient", [("_count", "1")])
    token = p.encode_cursor(p.Cursor(True, ("Patient", "a")))
    plan = p.parse("Patient", [("_count", "1"), ("_cursor", token)])
    links = _links(_bundle(plan, Page([_row("b")], more_before=True, more_after=False)))
    assert links["first"] == f"{BASE}/Patient?_count=1"
    assert list(links) == ["self", "first", "previous"]
    assert _links(_bundle(first, Page([], False, False))) == {"self": f"{BASE}/Patient?_count=1"}


def test_entries_embed_the_stored_json_and_mark_includes() -> None:
    plan = p.parse("Patient", [])
    stored = b'{"resourceType":"Patient","id":"a","name":[{"family":"Ng"}]}'
    org = ("Organization", "o", b'{"resourceType":"Organization","id":"o"}')
    bundle = _bundle(plan, Page([_row("a", body=stored)], False, False, included=[org]), total=1)
    match, include = bundle["entry"]
    assert match == {
        "fullUrl": f"{BASE}/Patient/a",
        "resource": orjson.loads(stored),
        "search": {"mode": "match"},
    }
    assert include["fullUrl"] == f"{BASE}/Organization/o"
    assert include["search"] == {"mode": "include"}


def test_a_restricted_caller_gets_the_redacted_copy_of_every_entry() -> None:
    plan = p.parse("Patient", [])

    def redact(resource: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in resource.items() if k != "gender"}

    bundle = _bundle(plan, Page([_row("a"), _row("b")], False, False), redact=redact)
    assert [e["resource"] for e in bundle["entry"]] == [
        {"resourceType": "Patient", "id": "a"},
        {"resourceType": "Patient", "id": "b"},
    ]


def test_elements_shape_matches_but_not_includes() -> None:
    plan = p.parse("Patient", [("_elements", "id")])
    org = ("Organization", "o", b'{"resourceType":"Organization","id":"o","name":"Clinic"}')
    bundle = _bundle(plan, Page([_row("a")], False, False, included=[org]))
    match, include = (e["resource"] for e in bundle["entry"])
    assert "gender" not in match and match["id"] == "a"
    assert include["name"] == "Clinic"


def test_skipped_parameters_are_reported_in_an_outcome_entry() -> None:
    plan = p.parse("Patient", [("no-such-parameter", "x")])
    assert plan.warnings
    bundle = _bundle(plan, Page([], False, False), total=0)
    (entry,) = bundle["entry"]
    assert entry["search"] == {"mode": "outcome"}
    assert entry["resource"]["resourceType"] == "OperationOutcome"
    assert entry["resource"]["issue"][0]["severity"] == "warning"


def test_the_assembly_is_pure_it_loads_no_database_code() -> None:
    # Kept apart from the SQL (store/search.py), as HAPI keeps Bundle assembly from its predicates.
    code = (
        "import sys, fhir_gateway.search.bundle\n"
        "loaded = [m for m in sys.modules if m.startswith(('sqlalchemy', 'fhir_gateway.store'))]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
