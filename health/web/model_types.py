"""The shared types of the health API's models (pydantic v2): the bases of every request
and response model (``Out``, ``Body``, ``Query``), the annotated field types (``Hex32``,
``TimeMs``...), their patterns and bounds, and the refusal every route may answer
(``ErrorOut``).

Conventions: ids, keys and hashes are lower-case hex (``Hex32``: 32 bytes; empty where the
chain keeps none, ``HexOrEmpty``); times are milliseconds since the Unix epoch (``_ms``);
enumerations are the chain's names in lower case. Request models are strict for JSON bodies
(no type coercion, unknown fields refused); query models coerce text to numbers (a query is
text) and refuse unknown parameters.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

U64_MAX: Final = 2**64 - 1
U32_MAX: Final = 2**32 - 1
DEFAULT_LIST_LIMIT: Final = 100
MAX_LIST_LIMIT: Final = 500
"""A listing's largest page (a scan reads one more to tell ``truncated``; a node reads at
most 1,000 entries a scan)."""
HEX32_PATTERN: Final = r"^[0-9a-f]{64}$"
HEX32_INPUT_PATTERN: Final = r"^[0-9a-fA-F]{64}$"
KEYSTORE_NAME_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
CODE_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._:|/-]{0,63}$"
FHIR_TYPE_PATTERN: Final = r"^[A-Z][A-Za-z]{0,63}$"
MAX_PASSPHRASE_CHARS: Final = 1_024

Hex32 = Annotated[str, Field(pattern=HEX32_PATTERN, description="32 bytes, lower-case hex")]
HexOrEmpty = Annotated[
    str, Field(pattern=r"^([0-9a-f]{64})?$", description="32 bytes in hex, or empty")
]
IdIn = Annotated[str, Field(pattern=HEX32_INPUT_PATTERN, description="32 bytes in hex")]
TimeMs = Annotated[int, Field(ge=0, le=U64_MAX, description="milliseconds since the epoch")]
Count = Annotated[int, Field(ge=0)]
Role = Literal["institution", "practitioner", "patient", "device", "auditor"]
Code = Annotated[str, Field(pattern=CODE_PATTERN, max_length=64)]
FhirType = Annotated[str, Field(pattern=FHIR_TYPE_PATTERN, max_length=64)]


class Out(BaseModel):
    """A response document: exactly these fields (``additionalProperties: false``)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Body(BaseModel):
    """A JSON request body: strict types, no unknown field."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Query(BaseModel):
    """Query parameters: text coerced to numbers, no unknown parameter."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# -- errors -----------------------------------------------------------------------------------


class ErrorOut(Out):
    """Every refusal (``reason``: see ``health.web.errors``; the node's own routes give
    ``error`` alone)."""

    error: str
    reason: str | None = None
