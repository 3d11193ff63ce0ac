"""A Bundle's conditional keys claimed together answer as each claim alone would."""

from __future__ import annotations

from fhir_gateway.store import repository
from fhir_gateway.store.statements import counting


def test_new_keys_are_claimed_in_one_statement_and_a_taken_one_names_its_owner(session_factory):  # type: ignore[no-untyped-def]
    with session_factory() as session:
        assert repository.claim_conditional_key(session, "Patient", "identifier=a", "p0") == "p0"
        claims = [
            ("Patient", "identifier=a", "p1"),  # taken by p0
            ("Patient", "identifier=b", "p2"),
            ("Condition", "identifier=b", "c1"),  # same criteria, another type: its own key
        ]
        with counting(session.get_bind()) as seen:
            owners = repository.claim_conditional_keys(session, claims[1:])
        assert owners == {("Patient", "identifier=b"): "p2", ("Condition", "identifier=b"): "c1"}
        assert seen.by_verb["INSERT"] == 1
        owners = repository.claim_conditional_keys(session, [claims[0]])
        assert owners == {("Patient", "identifier=a"): "p0"}
        # claimed for good: a later claim of the same key finds its owner
        assert repository.claim_conditional_key(session, "Patient", "identifier=b", "p9") == "p2"
