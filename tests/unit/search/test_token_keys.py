"""The conditional criteria a message names (``identifier=system|value``) are keyed without the
search's parser; whatever that shortcut decides is what the parser makes of the same criteria,
and anything it is unsure of goes to the parser."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from fhir_gateway.store.token_matches import _UNDECIDED, _parsed_token_key, _plain_token_key

_TYPES = ("Patient", "Practitioner", "Organization", "Encounter", "Observation", "Condition")
_NAMES = (
    "identifier",
    "code",
    "gender",
    "status",
    "family",
    "name",
    "subject",
    "birthdate",
    "_id",
    "identifier:not",
    "identifier:text",
    "subject.identifier",
    "_count",
    "no-such-parameter",
    "",
)
_PIECES = st.sampled_from(
    ["urn:mrn", "http://hl7.org/fhir/sid/us-ssn", "MRN1", "4411", "|", ",", "\\", "\\|", " ", ""]
)
_JOINED = st.lists(_PIECES, max_size=4).map("".join)
_VALUES = st.one_of(
    st.builds(lambda system, code: f"{system}|{code}", _JOINED, _JOINED),
    st.lists(_PIECES, max_size=5).map("".join),
    st.text(max_size=12),
    st.builds(lambda n: "urn:x|" + "9" * n, st.integers(250, 260)),  # at the length limit
)


@settings(max_examples=400, deadline=None)
@given(
    res_type=st.sampled_from(_TYPES),
    params=st.lists(
        st.tuples(st.just("identifier") | st.sampled_from(_NAMES), _VALUES), min_size=1, max_size=2
    ),
)
@example("Patient", [("identifier", "urn:mrn|1,2")])  # two values
@example("Patient", [("identifier", "urn:mrn|a\\|b")])  # an escaped bar
@example("Patient", [("identifier", "urn:mrn|" + "9" * 257)])  # cut short by the index
@example("Patient", [("identifier", "|MRN1")])  # no system
def test_a_key_read_without_the_parser_is_the_parsers_key(res_type, params) -> None:  # type: ignore[no-untyped-def]
    plain = _plain_token_key(res_type, params)
    if plain is not _UNDECIDED:
        assert plain == _parsed_token_key(res_type, params)


def test_a_messages_identifiers_are_read_without_the_parser() -> None:
    assert _plain_token_key("Patient", [("identifier", "urn:mrn|MRN1")]) == (
        "Patient",
        "identifier",
        "urn:mrn",
        "MRN1",
    )
    assert _plain_token_key("Encounter", [("identifier", "urn:visit|V1")]) is not _UNDECIDED
    for unsure in (
        [("identifier", "MRN1")],  # any system
        [("identifier", "urn:a|1,urn:a|2")],  # two values
        [("identifier", "urn:a|1\\|2")],  # escaped
        [("identifier:not", "urn:a|1")],
        [("family", "urn:a|1")],  # not a token
        [("identifier", "urn:a|1"), ("_count", "1")],
    ):
        assert _plain_token_key("Patient", unsure) is _UNDECIDED, unsure
