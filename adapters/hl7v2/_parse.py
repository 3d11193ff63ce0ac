"""A lean ER7 parser: bytes → text → segments → fields, split further only on demand.

The hot path never builds objects per component: a segment is a list of raw field strings
(``seg[n]`` is field n, MSH included), and components are split and unescaped when read.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from ._encoding import UNSTORABLE, Delimiters
from ._errors import (
    BadEncodingCharacters,
    CharacterSetError,
    EmptyMessage,
    HL7Error,
    MessageTooLarge,
    NotHL7,
    SegmentSequenceError,
)

__all__ = [
    "Composite",
    "Message",
    "Segment",
    "decode",
    "empty_batch",
    "parse",
    "read_header",
    "split_batch",
    "DEFAULT_MAX_BYTES",
]

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
_BOM = "\ufeff"
_SEGMENT_ID = re.compile(r"[A-Z][A-Z0-9]{2}\Z")
_BATCH_SEGMENTS = frozenset({"FHS", "BHS", "BTS", "FTS"})
# MSH-18 values (HL7 table 0211) → Python codecs.
_CHARSETS = {
    "ASCII": "ascii",
    "UNICODE UTF-8": "utf-8",
    "UNICODE": "utf-8",
    "UTF-8": "utf-8",
    "UNICODE UTF-16": "utf-16",
    "UNICODE UTF-32": "utf-32",
    "ISO IR87": "iso2022_jp",
    "ISO IR159": "iso2022_jp_2",
    "GB 18030-2000": "gb18030",
    "KS X 1001": "euc_kr",
    "BIG-5": "big5",
    **{f"8859/{n}": f"iso8859_{n}" for n in (1, 2, 3, 4, 5, 6, 7, 8, 9, 15)},
}


class Composite:
    """One repetition of a field, read by 1-based component (and subcomponent) number."""

    __slots__ = ("_parts", "_d")

    def __init__(self, raw: str, d: Delimiters) -> None:
        self._parts = raw.split(d.component) if raw else []
        self._d = d

    def __call__(self, i: int, sub: int = 0) -> str:
        """Component ``i`` (its first subcomponent unless ``sub`` names another), unescaped."""
        parts = self._parts
        if i > len(parts):
            return ""
        value = parts[i - 1]
        sc = self._d.subcomponent
        if sc in value:
            subs = value.split(sc)
            if not sub:
                value = subs[0]
            elif sub <= len(subs):
                value = subs[sub - 1]
            else:
                return ""
        elif sub > 1:
            return ""
        return self._d.unescape(value).strip() if value else ""

    def raw(self, i: int) -> str:
        """Component ``i`` with its subcomponents, still escaped."""
        return self._parts[i - 1] if i <= len(self._parts) else ""

    def sub(self, i: int) -> Composite:
        """Component ``i`` read as a composite of its subcomponents (e.g. CX.4 as an HD)."""
        c = Composite("", self._d)
        raw = self.raw(i)
        c._parts = raw.split(self._d.subcomponent) if raw else []
        return c

    def __bool__(self) -> bool:
        return any(self._parts)

    def __len__(self) -> int:
        return len(self._parts)


class Segment:
    """A segment as raw fields; ``seg[n]`` is field n (for MSH, ``seg[1]`` is MSH-1)."""

    __slots__ = ("name", "fields", "d", "position")

    def __init__(self, name: str, fields: list[str], d: Delimiters, position: int) -> None:
        self.name = name
        self.fields = fields
        self.d = d
        self.position = position  # 1-based line number within the message

    def __getitem__(self, n: int) -> str:
        f = self.fields
        return f[n] if n < len(f) else ""

    def __len__(self) -> int:
        return len(self.fields)

    def is_null(self, n: int) -> bool:
        """HL7's ``""``: the sender asks the receiver to delete the value."""
        return self[n] == '""'

    def reps(self, n: int) -> list[Composite]:
        """The non-empty repetitions of field n."""
        raw = self[n]
        if not raw or raw == '""':
            return []
        d = self.d
        return [Composite(r, d) for r in raw.split(d.repetition) if r]

    def one(self, n: int) -> Composite:
        """The first repetition of field n (an empty composite when the field is empty)."""
        raw = self[n]
        if raw == '""':
            raw = ""
        rep = self.d.repetition
        if rep in raw:
            raw = raw.split(rep, 1)[0]
        return Composite(raw, self.d)

    def value(self, n: int, i: int = 1, sub: int = 0) -> str:
        """Field n, component i (first repetition), unescaped and stripped."""
        raw = self[n]
        if not raw or raw == '""':
            return ""
        d = self.d
        if d.component not in raw and d.repetition not in raw and d.subcomponent not in raw:
            if i != 1 or sub > 1:
                return ""
            return d.unescape(raw).strip() if d.escape in raw else raw.strip()
        return self.one(n)(i, sub)


class Message:
    """A parsed message: its delimiters, its segments in order and what the parser noticed."""

    __slots__ = ("segments", "d", "warnings", "cleaned", "_by_name")

    def __init__(
        self,
        segments: list[Segment],
        d: Delimiters,
        warnings: list[str],
        cleaned: list[tuple[str, int, int]] | None = None,
    ) -> None:
        self.segments = segments
        self.d = d
        self.warnings = warnings
        # (segment, sequence, field) of each field that held characters no value may hold
        # (NUL and other controls, raw or escaped): removed from the values, told in the ACK
        self.cleaned = cleaned or []
        by_name: dict[str, list[Segment]] = {}
        for s in segments:
            by_name.setdefault(s.name, []).append(s)
        self._by_name = by_name

    @property
    def msh(self) -> Segment:
        return self.segments[0]

    def first(self, name: str) -> Segment | None:
        found = self._by_name.get(name)
        return found[0] if found else None

    def all(self, name: str) -> list[Segment]:
        return self._by_name.get(name, [])

    def __iter__(self) -> Iterator[Segment]:
        return iter(self.segments)

    @property
    def version(self) -> str:
        return self.msh.value(12)

    @property
    def control_id(self) -> str:
        return self.msh.value(10)

    def to_er7(self) -> str:
        return "\r".join(self.d.field.join(_er7_fields(s)) for s in self.segments) + "\r"


def _er7_fields(s: Segment) -> list[str]:
    return [s.name, *s.fields[2:]] if s.name == "MSH" else s.fields


def decode(data: str | bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> tuple[str, list[str]]:
    """Text of a message: size checked, BOM removed, bytes decoded in MSH-18's character set."""
    warnings: list[str] = []
    if len(data) > max_bytes:
        raise MessageTooLarge(f"message is {len(data)} bytes, over the limit of {max_bytes}")
    if isinstance(data, str):
        return data[1:] if data.startswith(_BOM) else data, warnings
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return _decode(data, "utf-16", "UNICODE UTF-16"), warnings
    if not data.strip():
        raise EmptyMessage("the message is empty")
    charset = _declared_charset(data)
    if charset:
        codec = _CHARSETS.get(charset.upper())
        if codec is None:
            raise CharacterSetError(
                f"character set {charset!r} is not supported", segment="MSH", field=18
            )
        return _decode(data, codec, charset), warnings
    try:
        return data.decode("utf-8"), warnings
    except UnicodeDecodeError:
        # No MSH-18: many senders mean Windows-1252 when they send non-UTF-8 bytes.
        warnings.append("MSH-18 empty and the bytes are not UTF-8: decoded as Windows-1252")
        return data.decode("cp1252", errors="replace"), warnings


def _decode(data: bytes, codec: str, charset: str) -> str:
    try:
        text = data.decode(codec)
    except UnicodeDecodeError as exc:
        raise CharacterSetError(
            f"byte {exc.start} is not valid {charset}", segment="MSH", field=18
        ) from exc
    return text[1:] if text.startswith(_BOM) else text


def _declared_charset(data: bytes) -> str:
    head = data[:2048].lstrip()
    if not head.startswith(b"MSH") or len(head) < 8:
        return ""
    line = re.split(rb"[\r\n]", head, maxsplit=1)[0].decode("latin-1")
    if len(line) < 5:
        return ""  # `MSH` alone: no separators to read
    fields = line.split(line[3])
    if len(fields) < 18:
        return ""
    first = fields[17].split(line[4] if len(line) > 4 else "^")[0]
    return first.split(fields[1][1] if len(fields[1]) > 1 else "~")[0].strip()


def _lines(text: str) -> list[str]:
    if "\n" in text:
        text = text.replace("\r\n", "\r").replace("\n", "\r")
    return text.split("\r")


def _delimiters(line: str) -> Delimiters:
    if len(line) < 8:
        raise BadEncodingCharacters(
            "MSH is too short to declare its encoding characters", segment="MSH", field=2
        )
    fs = line[3]
    if fs.isalnum() or fs.isspace() or not fs.isprintable():
        raise BadEncodingCharacters(f"field separator {fs!r} is not usable", segment="MSH", field=1)
    end = line.find(fs, 4)
    enc = line[4:] if end < 0 else line[4:end]
    if len(enc) == 5 and enc[2] == enc[3] == "\\":
        enc = enc[:3] + enc[4:]  # `^~\\&`: a Java-escaped backslash left in MSH-2
    if len(enc) not in (4, 5):
        raise BadEncodingCharacters(
            f"MSH-2 {enc!r} must hold 4 or 5 encoding characters", segment="MSH", field=2
        )
    chars = fs + enc
    if len(set(chars)) != len(chars) or any(
        c.isalnum() or c.isspace() or not c.isprintable() for c in enc
    ):
        raise BadEncodingCharacters(
            f"MSH-1/MSH-2 {chars!r} must be distinct punctuation", segment="MSH", field=2
        )
    return Delimiters(fs, enc[0], enc[1], enc[2], enc[3], enc[4] if len(enc) == 5 else "")


def parse(text: str | bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Message:
    """Parse one message (a batch wrapper around a single message is tolerated)."""
    text, warnings = decode(text, max_bytes=max_bytes)
    lines = [ln for ln in _lines(text) if ln.strip()]
    if not lines:
        raise EmptyMessage("the message is empty")
    trailer = lines[-1].strip()[:3]
    lines = _unwrap_batch(lines)
    if not lines:
        raise EmptyMessage("the batch holds no message", segment=trailer or None)
    first = lines[0].lstrip()
    if not first.startswith("MSH"):
        if "\x00" in text or not text.isprintable() and not _mostly_text(text):
            raise NotHL7("binary data, not an HL7 v2 message")
        raise NotHL7("the message does not start with an MSH segment", segment="MSH", position=1)
    d = _delimiters(first)
    esc = d.escape
    segments: list[Segment] = []
    cleaned: list[tuple[str, int, int]] = []
    seen: dict[str, int] = {}
    for pos, line in enumerate(lines, 1):
        if pos == 1:
            line = first
        fields = line.split(d.field)
        if pos == 1:
            fields = ["MSH", d.field, *fields[1:]]
        dirty = _clean_fields(fields, esc, line)
        name = fields[0].strip()
        if not _SEGMENT_ID.match(name):
            raise SegmentSequenceError(
                f"line {pos} is not a segment: {line[:20]!r}",
                segment=name[:3] or None,
                position=pos,
            )
        if esc == "\\" and line.endswith(("\\r", '\\r"', "\\n")):
            fields[-1] = fields[-1][: fields[-1].rfind("\\")]
            warnings.append(f"{name} (line {pos}): literal '\\r' at the end removed")
        if name == "MSH" and pos != 1:
            raise SegmentSequenceError(
                "a second MSH: this is a batch, split it with split_batch()",
                segment="MSH",
                sequence=2,
                position=pos,
            )
        seen[name] = seen.get(name, 0) + 1
        cleaned.extend((name, seen[name], n) for n in dirty)
        segments.append(Segment(name, fields, d, pos))
    return Message(segments, d, warnings, cleaned)


def _clean_fields(fields: list[str], esc: str, line: str) -> list[int]:
    """Remove raw unstorable characters from the fields (in place); the numbers of the fields
    that held them raw or as ``\\Xhh\\`` escapes (the unescaping drops those)."""
    raw = UNSTORABLE.search(line) is not None
    escaped = bool(esc) and esc + "X" in line
    if not raw and not escaped:
        return []
    dirty: list[int] = []
    for n, value in enumerate(fields):
        found = False
        if raw and UNSTORABLE.search(value):
            fields[n] = UNSTORABLE.sub("", value)
            found = True
        if escaped and _escapes_unstorable(fields[n], esc):
            found = True
        if found:
            dirty.append(n)
    return dirty


def _escapes_unstorable(value: str, esc: str) -> bool:
    pattern = re.escape(esc) + "X([0-9A-Fa-f]*)" + re.escape(esc)
    for match in re.finditer(pattern, value):
        digits = match.group(1)
        if len(digits) % 2 == 0 and UNSTORABLE.search(bytes.fromhex(digits).decode("latin-1")):
            return True
    return False


def _mostly_text(text: str) -> bool:
    sample = text[:4096]
    printable = sum(1 for c in sample if c.isprintable() or c in "\r\n\t")
    return printable >= 0.95 * len(sample)


def _unwrap_batch(lines: list[str]) -> list[str]:
    if lines[0][:3] not in _BATCH_SEGMENTS and lines[-1][:3] not in _BATCH_SEGMENTS:
        return lines
    return [ln for ln in lines if ln[:3] not in _BATCH_SEGMENTS]


def split_batch(data: str | bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> list[str]:
    """Split a batch file (FHS/BHS … BTS/FTS, or bare MSH after MSH) into message texts.

    A BTS-1 count that disagrees with the messages found raises, so a truncated batch is seen.
    """
    text, _ = decode(data, max_bytes=max_bytes)
    messages: list[list[str]] = []
    declared: int | None = None
    for line in _lines(text):
        if not line.strip():
            continue
        tag = line.lstrip()[:3]
        if tag == "MSH":
            messages.append([line.lstrip()])
        elif tag == "BTS":
            count = line[4:].split(line[3:4] or "|")[0] if len(line) > 4 else ""
            count = count.strip()
            declared = int(count) if count.isascii() and count.isdigit() else None
        elif tag in _BATCH_SEGMENTS:
            continue
        elif messages:
            messages[-1].append(line)
        else:
            raise SegmentSequenceError(
                f"{tag!r} before the first MSH of the batch", segment=tag or None
            )
    if declared is not None and declared != len(messages):
        raise SegmentSequenceError(
            f"BTS-1 declares {declared} messages but the batch holds {len(messages)}",
            segment="BTS",
            field=1,
        )
    return ["\r".join(m) + "\r" for m in messages]


def read_header(data: str | bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Segment | None:
    """The header of a message that may not parse (bytes not in its character set, a second
    MSH, junk lines), read leniently so that its ACK can still echo MSH-10: the MSH that follows
    any batch header lines, else the BHS (or FHS) of a batch. None when there is no usable
    header line."""
    if isinstance(data, bytes):
        data = data[:max_bytes].decode("utf-8", errors="replace")
    headers: dict[str, str] = {}
    for line in _lines(data[:max_bytes]):
        line = UNSTORABLE.sub("", line).lstrip(_BOM + " \t")
        if not line.strip():
            continue
        name = line[:3]
        if name == "MSH" or name not in ("BHS", "FHS"):
            headers.setdefault(name, line)
            break
        headers.setdefault(name, line)
    for name in ("MSH", "BHS", "FHS"):
        if name in headers:
            return _header_segment(name, headers[name])
    return None


def _header_segment(name: str, line: str) -> Segment | None:
    try:
        d = _delimiters(line)
    except HL7Error:
        return None
    return Segment(name, [name, d.field, *line.split(d.field)[1:]], d, 1)


def empty_batch(data: str | bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Segment | None:
    """The header (BHS, else FHS) of a well-formed batch that holds no message — a sender's
    keep-alive, to be acknowledged — or None for anything else."""
    try:
        if split_batch(data, max_bytes=max_bytes):
            return None
        text, _ = decode(data, max_bytes=max_bytes)
    except HL7Error:
        return None
    lines = [ln.strip() for ln in _lines(text) if ln.strip()]
    tags = [ln[:3] for ln in lines]
    if not lines or "BTS" not in tags and "FTS" not in tags:
        return None
    for name in ("BHS", "FHS"):
        if name in tags:
            return _header_segment(name, lines[tags.index(name)])
    return None
