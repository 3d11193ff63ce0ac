"""Encoding characters (MSH-1/MSH-2) and escape sequences."""

from __future__ import annotations

import re

__all__ = ["Delimiters", "DEFAULT_DELIMITERS", "UNSTORABLE"]

# Characters no mapped value may hold: FHIR strings allow no code point below 32 but tab, CR and
# LF, and PostgreSQL text cannot hold NUL at all. A message may still carry them (raw, or as
# ``\X00\``): the parser removes them from the values and says where (an ACK warning).
UNSTORABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")


class Delimiters:
    """The separators a message declares, and unescaping of its leaf values."""

    __slots__ = ("field", "component", "repetition", "escape", "subcomponent", "truncation")

    def __init__(
        self,
        field: str = "|",
        component: str = "^",
        repetition: str = "~",
        escape: str = "\\",
        subcomponent: str = "&",
        truncation: str = "",
    ) -> None:
        self.field = field
        self.component = component
        self.repetition = repetition
        self.escape = escape
        self.subcomponent = subcomponent
        self.truncation = truncation  # v2.7+ fifth encoding character, may be absent

    def unescape(self, value: str) -> str:
        """Resolve ``\\F\\ \\S\\ \\T\\ \\R\\ \\E\\ \\Xhh\\ \\.br\\`` and friends in one leaf value."""
        esc = self.escape
        if not esc or esc not in value:
            return value
        out: list[str] = []
        i = 0
        n = len(value)
        while i < n:
            j = value.find(esc, i)
            if j < 0:
                out.append(value[i:])
                break
            out.append(value[i:j])
            k = value.find(esc, j + 1)
            if k < 0:  # unterminated: keep the text as sent rather than lose it
                out.append(value[j:])
                break
            out.append(self._sequence(value[j + 1 : k]))
            i = k + 1
        return "".join(out)

    def _sequence(self, seq: str) -> str:
        simple = {
            "F": self.field,
            "S": self.component,
            "T": self.subcomponent,
            "R": self.repetition,
            "E": self.escape,
            "P": self.truncation,
        }
        if seq in simple:
            return simple[seq]
        if seq.startswith("X"):
            return _hex(seq[1:])
        if seq in (".br", ".sp"):
            return "\n"
        # \H\ \N\ (highlighting), \Cxxyy\ \Mxxyyzz\ (charset switches), \.in\ \.ti\ \.fi\ \.nf\
        # \.ce\ (formatting) and \Zxx\ (local) carry no text of their own.
        return ""

    def escape_text(self, value: str) -> str:
        """The inverse of :meth:`unescape` for plain text (used when writing ACKs)."""
        esc = self.escape
        out = value.replace(esc, f"{esc}E{esc}")
        for ch, code in (
            (self.field, "F"),
            (self.component, "S"),
            (self.subcomponent, "T"),
            (self.repetition, "R"),
        ):
            out = out.replace(ch, f"{esc}{code}{esc}")
        return out.replace("\r", f"{esc}.br{esc}").replace("\n", f"{esc}.br{esc}")


def _hex(digits: str) -> str:
    try:
        raw = bytes.fromhex(digits)
    except ValueError:
        return ""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    return UNSTORABLE.sub("", text)


DEFAULT_DELIMITERS = Delimiters()
