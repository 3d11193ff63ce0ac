"""Strict validation on demand, by hl7apy (slow: for diagnosing a sender, not the hot path)."""

from __future__ import annotations

from ._errors import DataTypeError, HL7Error, SegmentSequenceError, UnsupportedVersion
from ._parse import Message

__all__ = ["validate_strict"]


def validate_strict(msg: Message) -> None:
    """Re-parse with hl7apy at STRICT level; its errors become HL7Errors (never escape raw)."""
    from hl7apy import exceptions as hx
    from hl7apy.consts import VALIDATION_LEVEL
    from hl7apy.parser import parse_message

    try:
        parsed = parse_message(
            msg.to_er7(), validation_level=VALIDATION_LEVEL.STRICT, find_groups=True
        )
        parsed.validate()
    except hx.UnsupportedVersion as exc:
        raise UnsupportedVersion(str(exc), segment="MSH", field=12) from exc
    except (hx.ChildNotValid, hx.ChildNotFound, hx.MaxChildLimitReached) as exc:
        raise SegmentSequenceError(f"hl7apy: {exc}") from exc
    except hx.ValidationError as exc:
        raise DataTypeError(f"hl7apy: {exc}") from exc
    except HL7Error:
        raise
    except Exception as exc:  # hl7apy raises many kinds; none may escape as a traceback
        raise DataTypeError(f"hl7apy: {type(exc).__name__}: {exc}") from exc
