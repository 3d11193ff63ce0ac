"""Reading the text of a FHIRPath expression without evaluating it: where its string literals
end, which bracket closes which, and where it splits at a top-level operator.

One scanner for every place that looks at an expression's text (the search parameters' unions,
the plan rules' conditions, FHIRPath Patch paths), so that a quote or a bracket inside a string
literal is read the same way everywhere. Strings and delimited identifiers (``'…'``, ``` `…` ```,
and ``"…"`` as some writers send) may hold backslash escapes."""

from __future__ import annotations

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
    depth, i = 0, start
    while i < len(text):
        char = text[i]
        if char in _QUOTES:
            end = string_end(text, i)
            if end is None:
                return None
            i = end + 1
            continue
        if char in _OPENING:
            depth += 1
        elif char in _CLOSING:
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return None


def split_top_level(text: str, operator: str, *, refuse: tuple[str, ...] = ()) -> list[str] | None:
    """``text`` split at ``operator`` outside brackets and literals (the parts as written, not
    stripped). None if its brackets do not pair up, a literal never ends, or one of ``refuse``
    (operators the caller cannot read, e.g. ``" xor "``) stands at the top level."""
    parts, depth, start, i = [], 0, 0, 0
    while i < len(text):
        char = text[i]
        if char in _QUOTES:
            end = string_end(text, i)
            if end is None:
                return None
            i = end + 1
            continue
        if char in _OPENING:
            depth += 1
        elif char in _CLOSING:
            depth -= 1
            if depth < 0:
                return None
        elif depth == 0:
            if any(text.startswith(word, i) for word in refuse):
                return None
            if text.startswith(operator, i):
                parts.append(text[start:i])
                i += len(operator)
                start = i
                continue
        i += 1
    if depth != 0:
        return None
    return [*parts, text[start:]]
