"""Medication adherence: proportion of days covered per medication class from dispenses and
administrations, refill gaps and missed long-acting injections as work items."""
