"""Medication adherence: proportion of days covered per medication class from dispenses and
administrations, refill gaps and missed long-acting injections as work items.

* **Classes as data** (``mappings/medications/``, ``_catalog``): ValueSets over RxNorm and ATC, a
  product table (ConceptMap, RxNorm SCD/SBD → ingredient) and the long-acting injectables
  (ActivityDefinition: dosing interval and grace); ``adherence_medications_dir`` adds the user's.
* **PDC** (``_pdc``, pure): fills carried forward, hospital days left out, injections cover their
  interval, clinic doses (methadone) count from administrations. Days' supply (``_supply``):
  ``daysSupply``, else quantity ÷ the order's daily dose, else unknown and why.
* **Recorded** (``_record``): one current Observation per patient and class (code
  ``http://fhir-gateway.org/fhir/CodeSystem/adherence|pdc-<class>``), and the work items
  ``low-adherence``, ``refill-late``, ``missed-injection``, ``adherence-unknown`` (Flags with the
  monitors' codes), ended when resolved; all labelled like the data they derive from.
* **When** (``_engine``): at each write of a dispense, administration, order or Encounter of the
  patient, and on the monitors' schedule (the ``scheduled`` hook point).

    install(settings)                   # once, by the composition root
    recompute(session, settings, "Patient/1")
    run_all(database, settings)         # every patient with medication data
"""

from __future__ import annotations

from fhir_gateway import hooks
from fhir_gateway.adherence._assess import (
    AdherenceAssessment,
    ClassAdherence,
    MissedInjection,
    PdcWindow,
    UnknownSupply,
    assess,
)
from fhir_gateway.adherence._catalog import (
    LongActingInjectable,
    MedClass,
    MedicationCatalog,
    Medicine,
    load_catalog,
)
from fhir_gateway.adherence._codes import ADHERENCE, codesystem, pdc_code
from fhir_gateway.adherence._engine import WATCHED, on_write, recompute, run_all
from fhir_gateway.adherence._pdc import (
    HospitalStay,
    MedicationFill,
    PdcCoverage,
    coverage,
    days_late,
)
from fhir_gateway.adherence._supply import DaysSupply, daily_dose, days_supply
from fhir_gateway.settings import Settings

__all__ = [
    "ADHERENCE",
    "AdherenceAssessment",
    "MedicationCatalog",
    "ClassAdherence",
    "PdcCoverage",
    "MedicationFill",
    "LongActingInjectable",
    "MedClass",
    "Medicine",
    "MissedInjection",
    "HospitalStay",
    "DaysSupply",
    "UnknownSupply",
    "WATCHED",
    "PdcWindow",
    "assess",
    "codesystem",
    "coverage",
    "daily_dose",
    "days_late",
    "days_supply",
    "install",
    "load_catalog",
    "pdc_code",
    "recompute",
    "run_all",
]


def install(rules: hooks.Rules, settings: Settings) -> None:
    """Register the write hooks and the scheduled run (they read the app's settings)."""
    del settings
    for res_type in WATCHED:
        rules.after_write(res_type, on_write)
    rules.scheduled("adherence", run_all)
