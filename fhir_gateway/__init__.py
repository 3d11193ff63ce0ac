"""The care-coordination FHIR gateway."""

__version__ = "0.1.0"
