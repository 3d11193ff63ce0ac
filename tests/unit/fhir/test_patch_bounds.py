"""JSON Patch copies are bounded: each copy of an array into itself doubles it."""

from __future__ import annotations

import pytest

from fhir_gateway.errors import PayloadTooLarge
from fhir_gateway.fhir.patch import apply_json_patch

PATIENT = {"resourceType": "Patient", "name": [{"family": "F"}]}


def _doublings(times: int) -> list[dict[str, str]]:
    return [{"op": "copy", "from": "/name", "path": "/name/-"}] * times


def test_copies_that_double_the_document_stop_at_the_limit():
    with pytest.raises(PayloadTooLarge) as refused:
        apply_json_patch(PATIENT, _doublings(40))  # 2**40 names without the bound
    assert refused.value.issues[0].code == "too-costly"
    assert "max_json_values" in refused.value.message


def test_copies_within_the_limit_apply():
    # /name holds 3 values (the array, a name, its family); each copy adds all of /name to it
    patched = apply_json_patch(PATIENT, _doublings(5), max_copied=93)  # 3 + 6 + 12 + 24 + 48
    assert len(patched["name"]) == 6
    with pytest.raises(PayloadTooLarge):
        apply_json_patch(PATIENT, _doublings(5), max_copied=92)
