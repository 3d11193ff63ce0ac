"""The one FHIRPath text scanner: what each of its readers relies on, and properties over
expressions built from random parts."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from fhir_gateway.fhir.fhirpath_text import closing, split_top_level, string_end
from fhir_gateway.search.registry import split_union


def test_a_union_splits_only_at_its_top_level() -> None:
    expression = "Patient.name.where(use = 'a|b') | Patient.telecom.where(x in (1 | 2)) |  "
    assert split_union(expression) == [
        "Patient.name.where(use = 'a|b')",
        "Patient.telecom.where(x in (1 | 2))",
    ]


def test_a_quote_escaped_inside_a_literal_does_not_end_it() -> None:
    text = r"where(value = 'it\'s (not) | closed')"
    assert string_end(text, text.index("'")) == len(text) - 2
    assert closing(text, text.index("(")) == len(text) - 1
    assert split_top_level(text, "|") == [text]


def test_brackets_of_every_kind_pair_up() -> None:
    assert closing("(a[b]c)", 0) == 6
    assert closing("(a{b}c", 0) is None
    assert split_top_level("a or (b or c", " or ") is None
    assert split_top_level("a or b) or (c", " or ") is None


def test_an_operator_the_reader_refuses_at_the_top_level() -> None:
    assert split_top_level("a and b xor c", " and ", refuse=(" xor ",)) is None
    assert split_top_level("a and (b xor c)", " and ", refuse=(" xor ",)) == ["a", "(b xor c)"]


def test_an_unpaired_union_stays_one_part_for_the_engine_to_report() -> None:
    assert split_union("Patient.name.where(x | y") == ["Patient.name.where(x | y"]


_WORDS = st.text(alphabet="abcXYZ.= 0123", min_size=1, max_size=8)
_LITERALS = st.text(alphabet="ab|()[]{}` or", max_size=8).map(lambda s: "'" + s + "'")


@st.composite
def _balanced(draw: st.DrawFn, depth: int = 0) -> str:
    """A piece of expression: words, literals holding anything, bracketed pieces."""
    parts = draw(st.lists(st.one_of(_WORDS, _LITERALS), min_size=1, max_size=4))
    if depth < 3 and draw(st.booleans()):
        opening, closing_ = draw(st.sampled_from(["()", "[]", "{}"]))
        parts.append(opening + draw(_balanced(depth + 1)) + " | x" + closing_)
    return "".join(parts)


@given(st.lists(_balanced(), min_size=1, max_size=5))
def test_splitting_a_union_of_balanced_pieces_gives_the_pieces_back(pieces: list[str]) -> None:
    text = "|".join(pieces)
    assert split_top_level(text, "|") == pieces


@given(_balanced())
def test_a_bracket_around_any_balanced_piece_closes_at_its_end(piece: str) -> None:
    text = "(" + piece + ")"
    assert closing(text, 0) == len(text) - 1
