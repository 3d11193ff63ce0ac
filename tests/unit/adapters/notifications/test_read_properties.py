"""Property test of the Da Vinci notification reader: any JSON value in, a Notification or a
NotificationError out (never another exception, which would reach a client as a 500)."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.notifications import NotificationError, read_notification

_DATA = Path(__file__).parents[3] / "data" / "fhir"
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
_KEYS = [
    "resourceType",
    "type",
    "entry",
    "resource",
    "fullUrl",
    "identifier",
    "value",
    "system",
    "source",
    "endpoint",
    "eventCoding",
    "code",
    "focus",
    "reference",
    "id",
    "timestamp",
    "subject",
]


def _seeds() -> list[dict]:
    seeds = []
    for path in sorted(_DATA.rglob("*.json")):
        try:
            doc = json.loads(path.read_text())
        except (ValueError, UnicodeDecodeError):
            continue
        if isinstance(doc, dict) and doc.get("type") == "message":
            seeds.append(doc)
    return seeds


_SEEDS = _seeds()


def _mutate(doc, path: list[str], value):
    """Replace the value at the first key of ``path`` found while walking ``doc`` depth-first."""
    if isinstance(doc, dict):
        for key in list(doc):
            if key in path:
                doc[key] = value
                return True
            if _mutate(doc[key], path, value):
                return True
    elif isinstance(doc, list):
        return any(_mutate(item, path, value) for item in doc)
    return False


def _read(doc) -> None:
    try:
        read_notification(doc)
    except NotificationError:
        pass


_BOUNDED = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_the_corpus_has_message_bundles_to_seed_from() -> None:
    assert _SEEDS, f"no message Bundles under {_DATA}"


@_BOUNDED
@given(_JSON)
def test_any_json_is_read_or_refused(doc) -> None:
    _read(doc)


@_BOUNDED
@given(st.data())
def test_corpus_messages_with_one_value_replaced_are_read_or_refused(data) -> None:
    doc = json.loads(json.dumps(data.draw(st.sampled_from(_SEEDS))))
    keys = data.draw(st.lists(st.sampled_from(_KEYS), min_size=1, max_size=3))
    _mutate(doc, keys, data.draw(_JSON))
    _read(doc)
