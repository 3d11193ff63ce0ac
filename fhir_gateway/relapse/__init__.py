"""Relapse signatures: the patient's own early warning signs, their reports, and the work items
raised when the reports cross what the relapse-prevention plan says."""
