"""What both PATCH formats share: their two failure kinds, and copying and pruning JSON values."""

from __future__ import annotations

from typing import Any


class _Fail(Exception):
    """A reason an operation cannot be applied; wrapped into PatchError with the op's context."""


class _Syntax(Exception):
    """A path or part that is malformed; wrapped into InvalidRequest."""


def _copy(value: Any) -> Any:
    """Copy a JSON value (dicts, lists, scalars); much cheaper than copy.deepcopy."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _prune(value: Any) -> bool:
    """Remove empty objects and arrays below ``value``; True if ``value`` itself is now empty."""
    if isinstance(value, dict):
        for key in [k for k, v in value.items() if _prune(v)]:
            del value[key]
        return not value
    if isinstance(value, list):
        value[:] = [v for v in value if not _prune(v)] if not _all_null(value) else []
        return not value
    return False


def _all_null(items: list[Any]) -> bool:
    # A primitive-extension array (`_given`) can keep nulls as placeholders, but not only nulls.
    return all(item is None for item in items)
