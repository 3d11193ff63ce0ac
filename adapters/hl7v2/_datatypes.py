"""HL7 v2 data types (CX, XPN, XAD, XTN, CWE, XCN, HD, DR) → FHIR data types.

Follows the v2-to-FHIR IG's datatype maps where they are settled; each function returns a plain
JSON dict (or None when the v2 value carries nothing).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from adapters.abdm import AbdmSystems, hfr_id
from adapters.terminology import ICD10_SYSTEMS, icd10_code

from ._codes import CodeMaps
from ._datetime import to_fhir_date, to_fhir_datetime
from ._errors import DataTypeError, HL7Error
from ._parse import Composite

__all__ = [
    "MappingContext",
    "abdm_checked",
    "address",
    "codeable",
    "contact_point",
    "hd_system",
    "human_name",
    "identifier",
    "xcn",
]

_OID = re.compile(r"[0-2](\.(0|[1-9]\d*))+\Z")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")


class MappingContext:
    """What mappers share for one message: code maps, the sender's zone, collected warnings."""

    __slots__ = ("codes", "zone", "country", "abdm", "abdm_authorities", "warnings", "ack_warnings")

    def __init__(
        self,
        codes: CodeMaps,
        zone: str,
        country: str = "US",
        *,
        abdm: AbdmSystems | None = None,
        abdm_authorities: dict[str, str] | None = None,
    ) -> None:
        self.codes = codes
        self.zone = zone
        self.country = country
        self.abdm = abdm  # an Indian sender's: the systems of ABDM identifiers
        self.abdm_authorities = abdm_authorities or {}  # upper-case authority → abha | hfr
        self.warnings: list[str] = []
        # Warnings the sender must hear (ERR severity W in the AA): data changed or left out.
        self.ack_warnings: list[HL7Error] = []

    def warn_sender(self, warning: HL7Error) -> None:
        """A change to what the sender sent, told in the ACK and in the conversion warnings."""
        if str(warning) in self.warnings:
            return  # a field read twice (PID-3: the match key, then the identifiers) warns once
        self.ack_warnings.append(warning)
        self.warnings.append(str(warning))

    def abdm_kind(self, *authorities: str) -> str | None:
        """Which ABDM identifier an assigning authority assigns (abha | hfr), for an Indian sender."""
        if self.abdm is None:
            return None
        return next(
            (
                self.abdm_authorities[a.upper()]
                for a in authorities
                if a and a.upper() in self.abdm_authorities
            ),
            None,
        )

    def dt(self, value: str, where: str) -> str | None:
        if not value:
            return None
        try:
            return to_fhir_datetime(value, self.zone)
        except ValueError as exc:
            self.warnings.append(f"{where}: {exc}; value ignored")
            return None

    def date(self, value: str, where: str) -> str | None:
        if not value:
            return None
        try:
            return to_fhir_date(value)
        except ValueError as exc:
            self.warnings.append(f"{where}: {exc}; value ignored")
            return None

    def period(self, start: str, end: str, where: str, *, dates: bool = False) -> dict[str, str]:
        conv = self.date if dates else self.dt
        out = {}
        s, e = conv(start, where), conv(end, where)
        if s:
            out["start"] = s
        if e:
            out["end"] = e
        return out


def hd_system(ctx: MappingContext, namespace: str, universal: str, kind: str) -> str | None:
    """An assigning authority (HD) → identifier system: the map first, then OID/UUID/URI forms."""
    mapped = ctx.codes.authority_system(universal, namespace)
    if mapped:
        return mapped
    kind = kind.upper()
    if universal:
        if kind == "ISO" or _OID.match(universal):
            return f"urn:oid:{universal}"
        if kind == "UUID" or _UUID.match(universal):
            return f"urn:uuid:{universal.lower()}"
        if kind in ("URI", "URL") or "://" in universal:
            return universal
    if namespace and _OID.match(namespace):  # an OID sent as the namespace id
        return f"urn:oid:{namespace}"
    name = namespace or universal
    if name:
        return f"{ctx.codes.local_base}assigning-authority:{quote(name, safe='')}"
    return None


def identifier(
    ctx: MappingContext, c: Composite, where: str, *, type_code: str = ""
) -> dict[str, Any] | None:
    """CX → Identifier with system (from CX.4), type (CX.5, table 0203) and period (CX.7/8)."""
    value = c(1)
    if not value:
        return None
    hd = c.sub(4)
    system = hd_system(ctx, hd(1), hd(2), hd(3))
    if ctx.abdm is not None:
        value, system = abdm_checked(ctx, value, system, (hd(1), hd(2)), where)
    out: dict[str, Any] = {"value": value}
    if system:
        out["system"] = system
    code = c(5) or type_code
    if code:
        out["type"] = ctx.codes.concept("0203", code)
    period = ctx.period(c(7), c(8), where, dates=True)
    if period:
        out["period"] = period
    if hd(1) and hd(2):
        out["assigner"] = {"display": hd(1)}
    return out


def abdm_checked(
    ctx: MappingContext, value: str, system: str | None, authority: tuple[str, str], where: str
) -> tuple[str, str | None]:
    """An ABDM identifier (by its assigning authority, or its system) checked and normalised; a
    malformed one stays under the sender's own assigning authority, and the sender is told."""
    abdm = ctx.abdm
    assert abdm is not None
    kind = ctx.abdm_kind(*authority)
    if kind == "abha":
        found = abdm.abha(value)
        if found is not None:
            return found[1], found[0]
        what = "an ABHA number (14 digits) or ABHA address (name@abdm)"
    elif kind == "hfr":
        facility = hfr_id(value)
        if facility is not None:
            return facility, abdm.hfr
        what = "a Health Facility Registry id (IN and 10 digits)"
    elif system in (abdm.abha_number, abdm.abha_address, abdm.hfr):
        checked = abdm.check(system, value)
        if checked is not None:
            return checked, system
        what = f"a valid identifier of {system}"
    else:
        return value, system
    name = authority[0] or authority[1] or "unknown"
    segment, _, field = where.partition("-")
    ctx.warn_sender(
        DataTypeError(
            f"{where}: an identifier of assigning authority {name!r} is not {what}; kept under "
            "the sender's own assigning authority",
            segment=segment or None,
            field=int(field) if field.isdigit() else None,
        )
    )
    return value, f"{ctx.codes.local_base}assigning-authority:{quote(name, safe='')}"


def human_name(ctx: MappingContext, c: Composite, where: str) -> dict[str, Any] | None:
    """XPN → HumanName (use from XPN.7 through table 0200)."""
    family = c(1)
    given = [g for g in (c(2), *c(3).split(" "), c(15)) if g]
    out: dict[str, Any] = {}
    if family:
        out["family"] = family
    if given:
        out["given"] = given
    if not out:
        return None
    suffix = [s for s in (c(4), c(6), c(14)) if s]
    if suffix:
        out["suffix"] = suffix
    if c(5):
        out["prefix"] = [c(5)]
    use = ctx.codes.translate("0200", c(7))
    if use:
        out["use"] = use
    elif c(7):
        ctx.warnings.append(f"{where}: name type {c(7)!r} has no FHIR name use")
    period = ctx.period(c(12) or c(10, 1), c(13) or c(10, 2), where, dates=True)
    if period:
        out["period"] = period
    return out


def address(ctx: MappingContext, c: Composite, where: str) -> dict[str, Any] | None:
    """XAD → Address (use/type from XAD.7 through table 0190)."""
    street = c.sub(1)
    lines = [street(i) for i in range(1, len(street) + 1)]
    lines = [ln for ln in (*lines, c(2)) if ln]
    out: dict[str, Any] = {}
    if lines:
        out["line"] = lines
    for i, key in ((3, "city"), (4, "state"), (5, "postalCode"), (6, "country")):
        if c(i):
            out[key] = c(i)
    district = c(9) or c(9, 2)
    if district:
        out["district"] = district
    if not out:
        return None
    kind = c(7)
    if kind:
        use = ctx.codes.translate("0190", kind, "http://hl7.org/fhir/address-use")
        typ = ctx.codes.translate("0190", kind, "http://hl7.org/fhir/address-type")
        if use:
            out["use"] = use
        if typ:
            out["type"] = typ
        if not use and not typ:
            ctx.warnings.append(f"{where}: address type {kind!r} has no FHIR use")
    period = ctx.period(c(13) or c(12, 1), c(14) or c(12, 2), where, dates=True)
    if period:
        out["period"] = period
    return out


def contact_point(ctx: MappingContext, c: Composite, where: str) -> dict[str, Any] | None:
    """XTN → ContactPoint: system from XTN.3 (0202), use from XTN.2 (0201)."""
    equipment = c(3)
    system = ctx.codes.translate("0202", equipment) if equipment else None
    if system == "email" or c(4) and not (c(1) or c(6) or c(7) or c(12)):
        value = c(4)
        system = "email"
    else:
        value = c(12) or c(1) or _phone(c)
    if not value:
        return None
    out: dict[str, Any] = {"system": system or "phone", "value": value}
    use = "mobile" if equipment == "CP" else ctx.codes.translate("0201", c(2))
    if use:
        out["use"] = use
    period = ctx.period(c(13), c(14), where)
    if period:
        out["period"] = period
    rank = c(18)
    if rank.isdigit() and int(rank) > 0:
        out["rank"] = int(rank)
    return out


def _phone(c: Composite) -> str:
    country, area, local, ext = c(5), c(6), c(7), c(8)
    if not local:
        return ""
    text = (f"+{country} " if country else "") + (f"({area}) " if area else "") + local
    return text + (f" x{ext}" if ext else "")


def codeable(
    ctx: MappingContext, c: Composite, table: str = "", *, default_system: str = ""
) -> dict[str, Any] | None:
    """CE/CWE/CNE → CodeableConcept; an unknown coding system is kept as a local URI.

    ``default_system`` names the first code's system when CWE.3 is empty (DG1-2 in v2.3).
    An ICD-10 code sent without its dot gets it (``F332`` → ``F33.2``); the code as sent is
    kept after the others, under its system name as sent."""
    codings = []
    originals = []
    for code_i, text_i, sys_i, ver_i in ((1, 2, 3, 7), (4, 5, 6, 8)):
        code = c(code_i)
        if not code:
            continue
        sys_name = c(sys_i) or (default_system if code_i == 1 else "")
        if sys_name:
            coding: dict[str, Any] = {"system": _coding_system(ctx, sys_name), "code": code}
            if c(text_i):
                coding["display"] = c(text_i)
            if coding["system"] in ICD10_SYSTEMS and icd10_code(code) != code:
                originals.append({**coding, "system": ctx.codes.as_sent_system(sys_name)})
                coding["code"] = icd10_code(code)
        elif table:
            coding = ctx.codes.v2_coding(table, code, c(text_i))
        else:
            coding = {"code": code}
            if c(text_i):
                coding["display"] = c(text_i)
        if c(ver_i):
            coding["version"] = c(ver_i)
        codings.append(coding)
    if table and codings and not c(3):
        mapped = ctx.codes.coding(table, codings[0]["code"])
        if mapped and mapped["system"] != codings[0]["system"]:
            codings.insert(0, mapped)
    codings.extend(originals)
    text = c(9) or c(2)
    out: dict[str, Any] = {}
    if codings:
        out["coding"] = codings
    if text:
        out["text"] = text
    return out or None


def _coding_system(ctx: MappingContext, name: str) -> str:
    system = ctx.codes.known_system(name)
    if system is None:
        system = ctx.codes.as_sent_system(name)
        ctx.warnings.append(f"coding system {name!r} has no URI for this sender; kept as {system}")
    return system


def xcn(
    ctx: MappingContext, c: Composite, where: str
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """XCN → (Identifier, HumanName) of a practitioner."""
    ident: dict[str, Any] | None = None
    if c(1):
        hd = c.sub(9)
        ident = {"value": c(1)}
        system = hd_system(ctx, hd(1), hd(2), hd(3))
        if system:
            ident["system"] = system
        if c(13):
            ident["type"] = ctx.codes.concept("0203", c(13))
    name: dict[str, Any] = {}
    if c(2):
        name["family"] = c(2)
    given = [g for g in (c(3), c(4)) if g]
    if given:
        name["given"] = given
    if name:
        if c(5) or c(7):
            name["suffix"] = [s for s in (c(5), c(7)) if s]
        if c(6):
            name["prefix"] = [c(6)]
    return ident, name or None


def name_text(name: dict[str, Any] | None) -> str:
    if not name:
        return ""
    return " ".join([*name.get("given", []), name.get("family", "")]).strip()
