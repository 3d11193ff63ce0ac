"""ABDM identifiers (India's Ayushman Bharat Digital Mission), pure: what an ABHA number, an ABHA
address and a Health Facility Registry id look like, and the identifier systems they go under.

* ABHA number: 14 digits, written in groups ``NN-NNNN-NNNN-NNNN`` as the ABDM FHIR IG's examples
  do; spaces and hyphens anywhere are accepted and the grouped form is kept.
* ABHA address: ``name@abdm`` (``@sbx`` in the sandbox, ``@ndhm`` for addresses made before the
  rename); the name is letters, digits, ``.`` and ``_``, at least 4 long, not beginning or ending
  with a dot and not beginning with a digit, except the default address of an ABHA number
  (``<14 digits>@abdm``). Kept in lower case.
* HFR id: ``IN`` and 10 digits (12 characters), kept in upper case.

``AbdmSystems`` holds the systems (settings in the gateway; the defaults are the ABDM FHIR IG's,
except the ABHA address, for which the IG names none and the gateway uses its own URI).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "ABHA_NUMBER_SYSTEM",
    "ABHA_ADDRESS_SYSTEM",
    "HFR_SYSTEM",
    "AbdmSystems",
    "abha_number",
    "abha_address",
    "hfr_id",
]

ABHA_NUMBER_SYSTEM = "https://healthid.ndhm.gov.in"
ABHA_ADDRESS_SYSTEM = "http://fhir-gateway.org/fhir/sid/abha-address"
HFR_SYSTEM = "https://facility.ndhm.gov.in"

_SEPARATORS = re.compile(r"[\s\-]")
_ADDRESS = re.compile(r"^(?:[a-z_][a-z0-9._]{2,}[a-z0-9_]|\d{14})@(?:abdm|sbx|ndhm)$")
_HFR = re.compile(r"^IN\d{10}$")


def abha_number(value: str) -> str | None:
    """The ABHA number in its grouped form, or None when ``value`` is not 14 digits."""
    digits = _SEPARATORS.sub("", value)
    if len(digits) != 14 or not digits.isascii() or not digits.isdigit():
        return None
    return f"{digits[:2]}-{digits[2:6]}-{digits[6:10]}-{digits[10:]}"


def abha_address(value: str) -> str | None:
    """The ABHA address in lower case, or None when ``value`` is not one."""
    text = value.strip().lower()
    return text if text.isascii() and _ADDRESS.match(text) and ".." not in text else None


def hfr_id(value: str) -> str | None:
    text = value.strip().upper()
    return text if _HFR.match(text) else None


@dataclass(frozen=True, slots=True)
class AbdmSystems:
    """The identifier systems ABDM identifiers go under."""

    abha_number: str = ABHA_NUMBER_SYSTEM
    abha_address: str = ABHA_ADDRESS_SYSTEM
    hfr: str = HFR_SYSTEM

    def abha(self, value: str) -> tuple[str, str] | None:
        """(system, value) of an ABHA number or address, told apart by its form; None if neither."""
        number = abha_number(value)
        if number is not None:
            return self.abha_number, number
        address = abha_address(value)
        return (self.abha_address, address) if address is not None else None

    def check(self, system: str, value: str) -> str | None:
        """The normalised value of an identifier under one of these systems; None when it is
        malformed (any other system: the value as it is)."""
        if system == self.abha_number:
            return abha_number(value)
        if system == self.abha_address:
            return abha_address(value)
        if system == self.hfr:
            return hfr_id(value)
        return value
