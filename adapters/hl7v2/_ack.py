"""ACK messages (AA/AE/AR with ERR), built with hl7apy, or written out directly for the common
ACK of a well-formed header (no ERR, no MSA-3) whose fields hl7apy would pass through as they
are: the same bytes without hl7apy's cost, a notable part of every accepted message. MSA-2 echoes MSH-10 whenever the header
can be read, also for a message that does not parse (or BHS-11 for an empty batch); the ACK's
MSH mirrors the sender's (our application answers as the receiving one)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from ._encoding import Delimiters
from ._errors import HL7Error
from ._parse import Message, Segment, parse, read_header

__all__ = ["build_ack"]

_HL7APY_VERSIONS = ("2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.8", "2.8.1", "2.8.2")
_ESC = Delimiters()
# A field value hl7apy writes back unchanged: components and subcomponents each with some
# printable text (hl7apy drops empty trailing ones and blanks, escapes ~ and \\).
_PLAIN_PART = r"[^|^~\\&\x00-\x1f\x7f]*[^|^~\\&\s\x00-\x1f\x7f][^|^~\\&\x00-\x1f\x7f]*"
_PASSES_THROUGH = re.compile(rf"{_PLAIN_PART}(?:[\^&]{_PLAIN_PART})*")
# From v2.7 hl7apy writes the truncation character (#) among the encoding characters.
_TRUNCATING_VERSIONS = ("2.7", "2.8", "2.8.1", "2.8.2")


def _incoming(message: Message | Segment | str | bytes | None) -> Segment | None:
    """The header the ACK answers: the MSH, or the BHS/FHS of a batch."""
    if message is None or isinstance(message, Segment):
        return message
    if isinstance(message, Message):
        return message.msh
    try:
        return parse(message).msh
    except HL7Error:
        return read_header(message)  # None: no header at all, a generic one answers


def _control_id(header: Segment) -> str:
    return header.value(11) if header.name in ("BHS", "FHS") else header.value(10)


def _version(header: Segment | None) -> str:
    version = header.value(12) if header is not None and header.name == "MSH" else ""
    return version if version in _HL7APY_VERSIONS else "2.5"


def build_ack(
    message: Message | Segment | str | bytes | None,
    code: str = "AA",
    *,
    error: HL7Error | None = None,
    control_id: str | None = None,
    timestamp: datetime | None = None,
    text: str = "",
    warnings: Sequence[HL7Error] = (),
) -> str:
    """An ER7 ACK (segments ended by CR). ``error`` adds an ERR segment and defaults the code
    to the error's own (AR for message-level rejections, AE otherwise). ``warnings`` (accepted
    messages whose data was changed or partly left out) add ERR segments of severity W from
    v2.5 on; v2.3/2.4 have no severity, so they are summed up in MSA-3 instead."""
    if error is not None and code == "AA":
        code = error.ack_code
    if code not in ("AA", "AE", "AR", "CA", "CE", "CR"):
        raise ValueError(f"ACK code {code!r} is not one of table 0008")
    header = _incoming(message)
    version = _version(header)
    msh = _header_fields(header, control_id, timestamp)
    if error is None and not warnings and not text:
        direct = _direct(msh, code, header, version)
        if direct is not None:
            return direct
    return _with_hl7apy(msh, code, header, version, error, text, warnings)


def _direct(msh: dict[int, str], code: str, header: Segment | None, version: str) -> str | None:
    """The ER7 hl7apy would write for a plain ACK, or None when a field needs its handling."""
    echoed = _ESC.escape_text(_control_id(header)) if header is not None else ""
    if not all(_PASSES_THROUGH.fullmatch(value) for value in msh.values()):
        return None
    if echoed and not _PASSES_THROUGH.fullmatch(echoed):
        return None
    encoding = "^~\\&"
    if version in _TRUNCATING_VERSIONS:
        if any("#" in value for value in (*msh.values(), echoed)):
            return None
        encoding += "#"
    fields = [msh.get(n, "") for n in range(3, 12)] + [version]
    return f"MSH|{encoding}|{'|'.join(fields)}\rMSA|{code}|{echoed}\r"


def _with_hl7apy(
    msh: dict[int, str],
    code: str,
    header: Segment | None,
    version: str,
    error: HL7Error | None,
    text: str,
    warnings: Sequence[HL7Error],
) -> str:
    from hl7apy.core import Message as HL7Message

    ack = HL7Message("ACK", version=version)
    for number, value in msh.items():
        setattr(ack.msh, f"msh_{number}", value)
    ack.msa.msa_1 = code
    ack.msa.msa_2 = _ESC.escape_text(_control_id(header)) if header is not None else ""
    legacy = version in ("2.3", "2.3.1", "2.4")
    if warnings and legacy and not text and error is None:
        text = "; ".join(w.reason for w in warnings)
    if text or error is not None:
        ack.msa.msa_3 = _ESC.escape_text((text or error.reason if error else text)[:80])
    if error is not None:
        _err(ack, error, version)
    if not legacy:
        for warning in warnings:
            _err(ack, warning, version, severity="W")
    er7: str = ack.to_er7()
    return er7 + "\r"


def _header_fields(
    src: Segment | None, control_id: str | None, timestamp: datetime | None
) -> dict[int, str]:
    """The ACK's MSH fields by number, in the order hl7apy is given them."""
    fields = {
        7: (timestamp or datetime.now(UTC)).strftime("%Y%m%d%H%M%S%z"),
        10: control_id or uuid.uuid4().hex[:20],
    }
    if src is None:
        return {**fields, 9: "ACK", 11: "P"}
    for mine, theirs in ((3, 5), (4, 6), (5, 3), (6, 4)):
        raw = src[theirs]
        if raw:
            fields[mine] = raw.replace(src.d.component, "^").replace(src.d.subcomponent, "&")
    if src.name != "MSH":  # a batch header: its fields 9-12 mean other things
        return {**fields, 9: "ACK", 11: "P"}
    event = src.one(9)(2)
    fields[9] = f"ACK^{event}^ACK" if event else "ACK"
    fields[11] = src.value(11) or "P"
    return fields


def _err(ack, error: HL7Error, version: str, severity: str = "E") -> None:  # type: ignore[no-untyped-def]
    err = ack.add_segment("ERR")
    code = f"{error.code}^{_ESC.escape_text(error.text)}^HL70357"
    if version in ("2.3", "2.3.1", "2.4"):
        loc = [
            error.segment or "",
            str(error.sequence or 1) if error.segment else "",
            str(error.field or ""),
        ]
        err.err_1 = "^".join(loc) + f"^{error.code}&{_ESC.escape_text(error.text)}&HL70357"
        return
    if error.segment:
        err.err_2 = error.location
    err.err_3 = code
    err.err_4 = severity
    err.err_8 = _ESC.escape_text(error.reason)
