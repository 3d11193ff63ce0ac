"""Whole numbers from the wire (paths, query parameters, ETags), bounded before they are used.

``str.isdigit`` accepts digits ``int`` refuses ("²") and ``int`` refuses strings of more than
4,300 digits; a number that fits Python may still overflow a database column. Parsed here, a
number is ASCII digits and at most ``ceiling``.
"""

from __future__ import annotations

__all__ = ["MAX_INT32", "whole_number"]

MAX_INT32 = 2**31 - 1  # FHIR integer and positiveInt; the version_id column


def whole_number(text: str, *, ceiling: int) -> int | None:
    """``text`` as a non-negative int, at most ``ceiling`` (larger ones become ``ceiling``);
    None if it is not ASCII digits."""
    if not text or not text.isascii() or not text.isdigit():
        return None
    if len(text.lstrip("0")) > len(str(ceiling)):
        return ceiling  # not converted: it could be thousands of digits long
    return min(int(text), ceiling)
