"""The two PATCH formats FHIR R4 allows, applied to resource dicts.

* ``apply_json_patch``: JSON Patch (RFC 6902) with JSON Pointers (RFC 6901).
* ``apply_fhirpath_patch``: FHIRPath Patch (http://hl7.org/fhir/R4/fhirpatch.html), a
  ``Parameters`` resource of ``operation`` parts.

Both are pure: they return a new dict and never mutate their arguments. A document that is not a
patch at all raises ``InvalidRequest`` (400); a patch that cannot be applied to this resource raises
``PatchError`` (422) naming the operation (0-based, as in ``Parameters.parameter[n]``) and its path.
FHIR forbids empty objects and arrays, so both remove the ones a patch leaves behind, once, after
the last operation (pruning earlier would make "delete then add" lose the parent it adds to).
The result is not validated here: the caller runs ``validate_resource`` on it.

``_json`` holds JSON Patch, ``_fhirpath`` FHIRPath Patch, ``_paths`` the element facts and path
walking FHIRPath Patch relies on, ``_values`` what both share (failure kinds, copy and prune).
"""

from fhir_gateway.fhir.patch._fhirpath import apply_fhirpath_patch
from fhir_gateway.fhir.patch._json import MAX_COPIED_VALUES, apply_json_patch

__all__ = ["apply_json_patch", "apply_fhirpath_patch", "MAX_COPIED_VALUES"]
