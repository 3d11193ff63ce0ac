"""Reading the text of a FHIRPath expression without evaluating it: where its string literals
end, which bracket closes which, and where it splits at a top-level operator.

One scanner for every place that looks at an expression's text (the search parameters' unions,
the plan rules' conditions, FHIRPath Patch paths), so that a quote or a bracket inside a string
literal is read the same way everywhere. Strings and delimited identifiers (``'…'``, ``` `…` ```,
and ``"…"`` as some writers send) may hold backslash escapes."""

from __future__ import annotations

from collections.abc import Iterator

__all__ = ["closing", "split_top_level", "string_end"]

_QUOTES = "'`\""
_OPENING = "([{"
_CLOSING = ")]}"


def string_end(text: str, start: int) -> int | None:
    """The index of the quote that ends the literal opening at ``start``; None if it never ends."""
    quote, i = text[start], start + 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == quote:
            return i
        i += 1
    return None


def closing(text: str, start: int) -> int | None:
    """The index of the bracket closing the one at ``start``; None if none does."""
    for i, depth in _depths(text, start):
        if depth is None:
            return None
        if depth == 0 and text[i] in _CLOSING:
            return i
    return None


def split_top_level(text: str, operator: str, *, refuse: tuple[str, ...] = ()) -> list[str] | None:
    """``text`` split at ``operator`` outside brackets and literals (the parts as written, not
    stripped). None if its brackets do not pair up, a literal never ends, or one of ``refuse``
    (operators the caller cannot read, e.g. ``" xor "``) stands at the top level."""
    parts, start, depth = [], 0, 0
    for i, depth_at in _depths(text, 0):
        if depth_at is None or depth_at < 0:
            return None
        depth = depth_at
        if i < start or depth or text[i] in _OPENING or text[i] in _CLOSING:
            continue  # inside the operator just split at, or not at the top level
        if any(text.startswith(word, i) for word in refuse):
            return None
        if text.startswith(operator, i):
            parts.append(text[start:i])
            start = i + len(operator)
    if depth != 0:
        return None
    return [*parts, text[start:]]


def _depths(text: str, start: int) -> Iterator[tuple[int, int | None]]:
    """Each index from ``start`` outside literals, with the bracket depth once its character is
    read (an opening bracket counts itself); depth None where a literal never ends (the last)."""
    depth, i = 0, start
    while i < len(text):
        char = text[i]
        if char in _QUOTES:
            end = string_end(text, i)
            if end is None:
                yield i, None
                return
            i = end + 1
            continue
        if char in _OPENING:
            depth += 1
        elif char in _CLOSING:
            depth -= 1
        yield i, depth
        i += 1
