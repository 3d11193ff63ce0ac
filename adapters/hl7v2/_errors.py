"""Typed HL7 v2 errors, each fit for an ERR segment (HL7 table 0357 codes).

    HL7Error                      207  application internal error          AE
    ├── MessageRejected                (message-level: the ACK is AR)      AR
    │   ├── EmptyMessage          100  nothing but whitespace
    │   ├── MessageTooLarge       100  over ConvertOptions.max_bytes
    │   ├── NotHL7                100  no MSH segment / binary junk
    │   ├── BadEncodingCharacters 100  MSH-1/MSH-2 unusable
    │   ├── CharacterSetError     102  bytes not decodable in MSH-18's set
    │   ├── UnsupportedMessage    200  MSH-9.1 is not ADT
    │   ├── UnsupportedEvent      201  MSH-9.2 is not an ADT trigger
    │   ├── UnsupportedProcessing 202  MSH-11 not P/T/D
    │   └── UnsupportedVersion    203  MSH-12 outside 2.3-2.8
    ├── SegmentSequenceError      100  a required segment is missing, or junk lines
    ├── RequiredFieldMissing      101
    ├── DataTypeError             102  e.g. a date that is no date
    └── TableValueNotFound        103

Every error carries the location (segment, sequence, field, component) and a reason. hl7apy's
errors are translated into this tree where hl7apy is called (strict validation).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "HL7Error",
    "MessageRejected",
    "EmptyMessage",
    "MessageTooLarge",
    "NotHL7",
    "BadEncodingCharacters",
    "CharacterSetError",
    "UnsupportedMessage",
    "UnsupportedEvent",
    "UnsupportedProcessing",
    "UnsupportedVersion",
    "SegmentSequenceError",
    "RequiredFieldMissing",
    "DataTypeError",
    "TableValueNotFound",
]


class HL7Error(Exception):
    """A message that cannot be used. ``code`` is from HL7 table 0357."""

    code = 207
    ack_code = "AE"
    text = "Application internal error"

    def __init__(
        self,
        reason: str,
        *,
        segment: str | None = None,
        sequence: int | None = None,
        field: int | None = None,
        component: int | None = None,
        position: int | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.segment = segment
        self.sequence = sequence
        self.field = field
        self.component = component
        self.position = position  # 1-based line number of the segment in the message

    @property
    def location(self) -> str:
        """ERL-style location, e.g. ``PID^1^3^1`` (empty when the message as a whole is at fault)."""
        if not self.segment:
            return ""
        parts = [self.segment, str(self.sequence or 1)]
        if self.field is not None:
            parts.append(str(self.field))
            if self.component is not None:
                parts.append(str(self.component))
        return "^".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "text": self.text,
            "ack_code": self.ack_code,
            "segment": self.segment,
            "sequence": self.sequence,
            "field": self.field,
            "component": self.component,
            "position": self.position,
            "reason": self.reason,
        }

    def __str__(self) -> str:
        where = f" at {self.location}" if self.location else ""
        return f"HL7 {self.code} {self.text}{where}: {self.reason}"


class MessageRejected(HL7Error):
    """The message as a whole is unusable: the ACK is AR (do not resend unchanged)."""

    ack_code = "AR"


class EmptyMessage(MessageRejected):
    code = 100
    text = "Segment sequence error"


class MessageTooLarge(MessageRejected):
    code = 100
    text = "Segment sequence error"


class NotHL7(MessageRejected):
    code = 100
    text = "Segment sequence error"


class BadEncodingCharacters(MessageRejected):
    code = 100
    text = "Segment sequence error"


class CharacterSetError(MessageRejected):
    code = 102
    text = "Data type error"


class UnsupportedMessage(MessageRejected):
    code = 200
    text = "Unsupported message type"


class UnsupportedEvent(MessageRejected):
    code = 201
    text = "Unsupported event code"


class UnsupportedProcessing(MessageRejected):
    code = 202
    text = "Unsupported processing id"


class UnsupportedVersion(MessageRejected):
    code = 203
    text = "Unsupported version id"


class SegmentSequenceError(HL7Error):
    code = 100
    text = "Segment sequence error"


class RequiredFieldMissing(HL7Error):
    code = 101
    text = "Required field missing"


class DataTypeError(HL7Error):
    code = 102
    text = "Data type error"


class TableValueNotFound(HL7Error):
    code = 103
    text = "Table value not found"
