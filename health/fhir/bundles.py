"""FHIR R4 ``Bundle``s: ``bundle`` builds one (deterministic ``urn:uuid`` full URLs,
``resource_urn``) and ``resources_of`` reads the resources of one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from crypto_core.signatures import sha256
from health.contracts.common import FHIR_TYPE_PATTERN
from health.fhir.base import FhirError, Json, check_id, require_type
from health.fhir.datetimes import iso_datetime

MAX_BUNDLE_ENTRIES: Final = 10_000
BUILT_BUNDLE_TYPES: Final = frozenset({"collection", "searchset"})
"""Bundle types ``bundle`` builds (the others need entries with requests or a Composition)."""
READ_BUNDLE_TYPES: Final = frozenset(
    {"collection", "searchset", "document", "transaction", "batch"}
)
"""Bundle types ``resources_of`` reads (the types whose entries carry resources)."""
ENTRY_MEMBERS: Final = frozenset(
    {"id", "extension", "modifierExtension", "link", "fullUrl", "resource", "search", "request"}
)
FULL_URL_DOMAIN: Final = b"bighealth/fhir/full-url/v1\x00"


def resource_urn(resource_type: str, resource_id: str) -> str:
    """The deterministic ``urn:uuid:`` of the resource ``resource_type/resource_id``: the
    first 16 bytes of SHA-256(domain ‖ ``type/id``) formatted as an RFC 9562 version 8
    UUID (lower-case hex). The same resource gets the same URN in every bundle."""
    digest = bytearray(sha256(FULL_URL_DOMAIN + f"{resource_type}/{resource_id}".encode())[:16])
    digest[6] = (digest[6] & 0x0F) | 0x80  # version 8
    digest[8] = (digest[8] & 0x3F) | 0x80  # variant RFC 9562
    text = digest.hex()
    return f"urn:uuid:{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def bundle(
    resources: Sequence[Mapping[str, Any]],
    *,
    bundle_id: str,
    timestamp_ms: int,
    kind: str = "collection",
) -> Json:
    """An R4 ``Bundle`` of type ``kind`` (``collection`` or ``searchset``, which also gets
    ``total``) holding ``resources`` in order, each with ``fullUrl`` = ``resource_urn`` of
    its type and id, and ``timestamp`` = ``timestamp_ms``. Each resource needs a valid
    ``resourceType`` and ``id``, no two the same; at most 10,000. The resources are put in
    as they are (not copied)."""
    check_id(bundle_id, "a bundle id")
    if not isinstance(kind, str) or kind not in BUILT_BUNDLE_TYPES:
        raise FhirError(f"a bundle built here is one of {sorted(BUILT_BUNDLE_TYPES)}, got {kind!r}")
    if not isinstance(resources, list | tuple):
        raise FhirError(f"the resources are a list, got {type(resources).__name__}")
    if len(resources) > MAX_BUNDLE_ENTRIES:
        raise FhirError(
            f"a bundle holds at most {MAX_BUNDLE_ENTRIES} entries, got {len(resources)}"
        )
    entries: list[Json] = []
    seen: set[str] = set()
    for index, resource in enumerate(resources):
        resource_type = _resource_type_of(resource, f"resource {index}")
        full_url = resource_urn(
            resource_type, check_id(resource.get("id"), f"the id of resource {index}")
        )
        if full_url in seen:
            raise FhirError(f"resource {index} ({resource_type}/{resource['id']}) is repeated")
        seen.add(full_url)
        entries.append({"fullUrl": full_url, "resource": resource})
    result: Json = {
        "resourceType": "Bundle",
        "id": bundle_id,
        "type": kind,
        "timestamp": iso_datetime(timestamp_ms),
    }
    if kind == "searchset":
        result["total"] = len(entries)
    if entries:
        result["entry"] = entries
    return result


def resources_of(bundle_resource: Mapping[str, Any]) -> list[Json]:
    """The resources of a ``Bundle`` (``loads``'s output, say), in entry order, for import.
    ``FhirError`` unless it is a ``Bundle`` of type collection, searchset, document,
    transaction or batch; its ``entry`` (absent: no resources) is a list of at most 10,000
    objects with only R4 entry members, each with a ``resource`` object that has a
    ``resourceType``, and a ``fullUrl`` string, if any, that no other entry has."""
    require_type(bundle_resource, "Bundle")
    kind = bundle_resource.get("type")
    if not isinstance(kind, str) or kind not in READ_BUNDLE_TYPES:
        raise FhirError(f"a bundle read here is one of {sorted(READ_BUNDLE_TYPES)}, got {kind!r}")
    entries = bundle_resource.get("entry", [])
    if not isinstance(entries, list):
        raise FhirError("a bundle's entry is a list")
    if len(entries) > MAX_BUNDLE_ENTRIES:
        raise FhirError(f"a bundle holds at most {MAX_BUNDLE_ENTRIES} entries, got {len(entries)}")
    resources: list[Json] = []
    full_urls: set[str] = set()
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise FhirError(f"entry {index} is not a JSON object")
        unknown = entry.keys() - ENTRY_MEMBERS
        if unknown:
            raise FhirError(f"entry {index} has unknown members {', '.join(sorted(unknown))}")
        full_url = entry.get("fullUrl")
        if full_url is not None:
            if not isinstance(full_url, str) or not full_url:
                raise FhirError(f"the fullUrl of entry {index} is not a string")
            if full_url in full_urls:
                raise FhirError(f"entry {index} repeats the fullUrl {full_url}")
            full_urls.add(full_url)
        resource = entry.get("resource")
        if not isinstance(resource, dict):
            raise FhirError(f"entry {index} has no resource object")
        _resource_type_of(resource, f"the resource of entry {index}")
        resources.append(resource)
    return resources


def _resource_type_of(resource: object, what: str) -> str:
    if not isinstance(resource, dict):
        raise FhirError(f"{what} is not a JSON object")
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str) or not FHIR_TYPE_PATTERN.fullmatch(resource_type):
        raise FhirError(f"{what} has no valid resourceType, got {resource_type!r}")
    return resource_type
