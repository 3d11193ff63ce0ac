"""HL7 v2 ADT and pharmacy messages (RDE, RDS, RAS) → FHIR R4 transaction Bundles. Pure: text
in, a Bundle or a typed error out. What a pharmacy segment fills is data
(``mappings/hl7v2/segment-*.json``, read by ``_segment_maps``).

result = convert(text, options=ConvertOptions(default_sender=SenderProfile(zone="America/New_York")))
result.bundle          # transaction Bundle: POST ifNoneExist + conditional FHIRPath PATCH
build_ack(result.message, "AA")
"""

from __future__ import annotations

from ._ack import build_ack
from ._codes import CodeMaps, load_code_maps
from ._convert import SUPPORTED_VERSIONS, ConversionResult, convert
from ._datetime import to_fhir_date, to_fhir_datetime, to_fhir_instant
from ._encoding import Delimiters
from ._errors import (
    BadEncodingCharacters,
    CharacterSetError,
    DataTypeError,
    EmptyMessage,
    HL7Error,
    MessageRejected,
    MessageTooLarge,
    NotHL7,
    RequiredFieldMissing,
    SegmentSequenceError,
    TableValueNotFound,
    UnsupportedEvent,
    UnsupportedMessage,
    UnsupportedProcessing,
    UnsupportedVersion,
)
from ._options import DEFAULT_COUNTRY, DEFAULT_ZONE, ConvertOptions, SenderProfile
from ._parse import (
    Composite,
    Message,
    Segment,
    decode,
    empty_batch,
    parse,
    read_header,
    split_batch,
)

__all__ = [
    "BadEncodingCharacters",
    "CharacterSetError",
    "CodeMaps",
    "Composite",
    "ConversionResult",
    "ConvertOptions",
    "DEFAULT_COUNTRY",
    "DEFAULT_ZONE",
    "DataTypeError",
    "Delimiters",
    "EmptyMessage",
    "HL7Error",
    "Message",
    "MessageRejected",
    "MessageTooLarge",
    "NotHL7",
    "RequiredFieldMissing",
    "SUPPORTED_VERSIONS",
    "Segment",
    "SegmentSequenceError",
    "SenderProfile",
    "TableValueNotFound",
    "UnsupportedEvent",
    "UnsupportedMessage",
    "UnsupportedProcessing",
    "UnsupportedVersion",
    "build_ack",
    "convert",
    "decode",
    "empty_batch",
    "load_code_maps",
    "parse",
    "read_header",
    "split_batch",
    "to_fhir_date",
    "to_fhir_datetime",
    "to_fhir_instant",
]
