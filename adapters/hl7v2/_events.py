"""What each ADT trigger means for the resources it touches."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["EventRule", "rule_for", "ADT_TRIGGERS"]

ADT_TRIGGERS = frozenset(f"A{n:02d}" for n in range(1, 63))


@dataclass(frozen=True, slots=True)
class EventRule:
    """``status``: Encounter.status to set (None: leave as is). ``visit``: map PV1 to an
    Encounter. ``merge``: PID/MRG pairs link the surviving and the replaced Patient.
    ``discharge``: the location is left (completed). ``undo_discharge``: remove end and
    disposition. ``undo_transfer``: the prior location (PV1-6) was entered in error.
    ``patient_active``: Patient.active to set."""

    status: str | None = None
    visit: bool = True
    merge: bool = False
    discharge: bool = False
    undo_discharge: bool = False
    undo_transfer: bool = False
    patient_active: bool | None = None


_PERSON = EventRule(visit=False)
_MERGE = EventRule(visit=False, merge=True)

_RULES: dict[str, EventRule] = {
    "A01": EventRule(status="in-progress"),  # admit
    "A02": EventRule(status="in-progress"),  # transfer: PV1-6 prior location becomes completed
    "A03": EventRule(status="finished", discharge=True),  # discharge
    "A04": EventRule(status="arrived"),  # register an outpatient: arrived, not yet seen
    "A05": EventRule(status="planned"),  # pre-admit
    "A06": EventRule(status="in-progress"),  # outpatient → inpatient
    "A07": EventRule(status="in-progress"),  # inpatient → outpatient
    "A08": EventRule(),  # update: status untouched
    "A11": EventRule(status="cancelled"),  # cancel admit / visit
    "A12": EventRule(status="in-progress", undo_transfer=True),  # cancel transfer
    "A13": EventRule(status="in-progress", undo_discharge=True),  # cancel discharge
    "A14": EventRule(status="planned"),  # pending admit
    "A21": EventRule(status="onleave"),  # leave of absence out
    "A22": EventRule(status="in-progress"),  # back from leave
    "A23": EventRule(status="entered-in-error"),  # delete a visit
    "A27": EventRule(status="cancelled"),  # cancel pending admit
    "A38": EventRule(status="cancelled"),  # cancel pre-admit
    "A28": _PERSON,  # add person information
    "A31": _PERSON,  # update person information
    "A24": _PERSON,  # link patient information
    "A37": _PERSON,  # unlink patient information
    "A29": EventRule(visit=False, patient_active=False),  # delete person information
    "A41": _PERSON,  # merge account: accounts are not modelled, the Patient is updated
    "A30": _MERGE,
    "A34": _MERGE,
    "A36": _MERGE,
    "A39": _MERGE,
    "A40": _MERGE,  # merge patient: survivor `replaces`, MRG patient `replaced-by`
    "A46": _MERGE,
    "A47": _MERGE,  # change identifier: the old identifier's record is replaced by the new
    "A48": _MERGE,
}


def rule_for(event: str) -> EventRule:
    return _RULES.get(event, _RULES["A08"])
