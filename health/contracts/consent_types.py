"""Consent's shapes: the state layout (prefixes, keys, limits), the grant and emergency
access records and transaction payloads with their codecs, the client helpers that encode
the payloads, and the query paths that name state keys."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Final, Protocol, TypeVar

from health.contracts.common import (
    CODE_PATTERN,
    FHIR_TYPE_PATTERN,
    ID_BYTES,
    MAX_CODE_CHARS,
    MAX_FHIR_TYPE_CHARS,
    Purpose,
    u64,
)
from node.app.module import (
    KeyReader,
)
from node.codec import ArrayOf, Bool, Bytes, EnumOf, StructCodec, Text, UInt
from node.errors import DecodeError

T = TypeVar("T")

CONSENT: Final = "consent"
GRANT_PREFIX: Final = b"consent/g/"
GRANTEE_INDEX_PREFIX: Final = b"consent/x/"
GRANT_COUNT_PREFIX: Final = b"consent/n/"
EMERGENCY_PREFIX: Final = b"consent/e/"
EMERGENCY_INDEX_PREFIX: Final = b"consent/y/"

GRANT_ID_DOMAIN: Final = b"bighealth/consent/grant/v1\x00"
EMERGENCY_ID_DOMAIN: Final = b"bighealth/consent/emergency/v1\x00"

MAX_GRANT_TYPES: Final = 16
MAX_GRANT_CODES: Final = 32
MAX_ACTIVE_GRANTS_PER_PATIENT: Final = 256
MAX_ACTIVE_GRANTS_PER_PAIR: Final = 16
"""Active grants of one patient to one grantee: also the bound of ``find_access``'s scans."""
MAX_LIST_ITEMS: Final = 1_000
OPEN_WINDOW: Final = 0
"""``data_from_ms`` / ``data_to_ms`` value meaning "no bound on that side"."""


class GrantStatus(IntEnum):
    """Where a grant is in its life (FHIR Consent: active, then inactive)."""

    ACTIVE = 1
    REVOKED = 2
    EXPIRED = 3


class ScanReader(KeyReader, Protocol):
    """A reader that also scans key ranges with a bound (``MeteredReader`` and
    ``MeteredView`` are ones): what ``find_access`` and the list helpers need."""

    def iterate(self, prefix: bytes, limit: int) -> list[tuple[bytes, bytes]]:
        """Up to ``limit`` entries under ``prefix`` in key order."""
        ...


# -- payloads and records ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GrantPayload:
    """``consent.grant``: the sender (a patient) lets ``grantee`` (an acting practitioner or
    institution) read its data of ``resource_types`` and ``codes`` (empty: all) whose own
    time lies in ``[data_from_ms, data_to_ms]`` (0: open) for ``purpose`` until block time
    ``expires_ms``. ``referral``: the referral the grant answers (32 bytes) or empty."""

    grantee: bytes
    resource_types: tuple[str, ...]
    codes: tuple[str, ...]
    data_from_ms: int
    data_to_ms: int
    purpose: Purpose
    referral: bytes
    expires_ms: int


@dataclass(frozen=True, slots=True)
class RevokePayload:
    """``consent.revoke``: end the active grant ``grant`` of ``patient`` (the sender)."""

    patient: bytes
    grant: bytes


@dataclass(frozen=True, slots=True)
class BreakGlassPayload:
    """``consent.break_glass``: the sender (a practitioner) opens emergency access to
    ``patient``'s data, giving ``reason_code`` (e.g. ``v3-ActReason|ETREAT``)."""

    patient: bytes
    reason_code: str


@dataclass(frozen=True, slots=True)
class Grant:
    """A grant as stored (``consent/g/<patient><id>``). ``ended_ms``: when it was revoked
    or expired (0 while active); ``expiry_task``: the due task that expires it."""

    id: bytes
    patient: bytes
    grantee: bytes
    resource_types: tuple[str, ...]
    codes: tuple[str, ...]
    data_from_ms: int
    data_to_ms: int
    purpose: Purpose
    referral: bytes
    issued_ms: int
    expires_ms: int
    status: GrantStatus
    ended_ms: int
    expiry_task: bytes


@dataclass(frozen=True, slots=True)
class EmergencyAccess:
    """An emergency access as stored (``consent/e/<patient><id>``): open from
    ``opened_ms`` until ``expires_ms`` unless ``closed_ms`` (0 while open) says otherwise."""

    id: bytes
    patient: bytes
    practitioner: bytes
    institution: bytes
    reason_code: str
    opened_ms: int
    expires_ms: int
    open: bool
    closed_ms: int


_ID = Bytes.exactly(ID_BYTES)
_REFERRAL = Bytes(ID_BYTES)
_TYPES = ArrayOf(Text(MAX_FHIR_TYPE_CHARS, FHIR_TYPE_PATTERN), MAX_GRANT_TYPES)
_CODES = ArrayOf(Text(MAX_CODE_CHARS, CODE_PATTERN), MAX_GRANT_CODES)
_TASK = Bytes(64)
GRANT_PAYLOAD_CODEC: Final = StructCodec(
    GrantPayload,
    [
        ("grantee", _ID),
        ("resource_types", _TYPES),
        ("codes", _CODES),
        ("data_from_ms", UInt()),
        ("data_to_ms", UInt()),
        ("purpose", EnumOf(Purpose)),
        ("referral", _REFERRAL),
        ("expires_ms", UInt()),
    ],
    4096,
)
REVOKE_PAYLOAD_CODEC: Final = StructCodec(RevokePayload, [("patient", _ID), ("grant", _ID)], 128)
BREAK_GLASS_PAYLOAD_CODEC: Final = StructCodec(
    BreakGlassPayload,
    [("patient", _ID), ("reason_code", Text(MAX_CODE_CHARS, CODE_PATTERN))],
    256,
)
GRANT_CODEC: Final = StructCodec(
    Grant,
    [
        ("id", _ID),
        ("patient", _ID),
        ("grantee", _ID),
        ("resource_types", _TYPES),
        ("codes", _CODES),
        ("data_from_ms", UInt()),
        ("data_to_ms", UInt()),
        ("purpose", EnumOf(Purpose)),
        ("referral", _REFERRAL),
        ("issued_ms", UInt()),
        ("expires_ms", UInt()),
        ("status", EnumOf(GrantStatus)),
        ("ended_ms", UInt()),
        ("expiry_task", _TASK),
    ],
    4096,
)
EMERGENCY_CODEC: Final = StructCodec(
    EmergencyAccess,
    [
        ("id", _ID),
        ("patient", _ID),
        ("practitioner", _ID),
        ("institution", _ID),
        ("reason_code", Text(MAX_CODE_CHARS, CODE_PATTERN)),
        ("opened_ms", UInt()),
        ("expires_ms", UInt()),
        ("open", Bool()),
        ("closed_ms", UInt()),
    ],
    512,
)


def decode_stored(codec: StructCodec[T], key: bytes, value: bytes) -> T:
    """The consent record stored under ``key``, decoded (``AssertionError`` if it is corrupt:
    consent writes only canonical records)."""
    try:
        return codec.decode(value)
    except DecodeError as exc:  # our own writes are canonical: corruption is a bug
        raise AssertionError(f"corrupt record under {key!r}: {exc}") from exc


# -- state keys ----------------------------------------------------------------------------


def grant_key(patient: bytes, grant_id: bytes) -> bytes:
    """The state key of a grant."""
    return GRANT_PREFIX + patient + grant_id


def grantee_index_key(grantee: bytes, patient: bytes, grant_id: bytes) -> bytes:
    """The grantee-index entry of an active grant."""
    return GRANTEE_INDEX_PREFIX + grantee + patient + grant_id


def grant_count_key(patient: bytes) -> bytes:
    """The state key of the number of a patient's active grants."""
    return GRANT_COUNT_PREFIX + patient


def emergency_key(patient: bytes, access_id: bytes) -> bytes:
    """The state key of an emergency access."""
    return EMERGENCY_PREFIX + patient + access_id


def emergency_index_key(practitioner: bytes, patient: bytes, access_id: bytes) -> bytes:
    """The index entry of an open emergency access."""
    return EMERGENCY_INDEX_PREFIX + practitioner + patient + access_id


# -- client helpers ------------------------------------------------------------------------


def grant_payload(
    grantee: bytes,
    *,
    expires_ms: int,
    purpose: Purpose = Purpose.TREATMENT,
    resource_types: Sequence[str] = (),
    codes: Sequence[str] = (),
    data_from_ms: int = OPEN_WINDOW,
    data_to_ms: int = OPEN_WINDOW,
    referral: bytes = b"",
) -> bytes:
    """The payload of a ``consent.grant`` transaction (client helper)."""
    payload = GrantPayload(
        grantee=grantee,
        resource_types=tuple(resource_types),
        codes=tuple(codes),
        data_from_ms=data_from_ms,
        data_to_ms=data_to_ms,
        purpose=purpose,
        referral=referral,
        expires_ms=expires_ms,
    )
    return GRANT_PAYLOAD_CODEC.encode(payload)


def revoke_payload(patient: bytes, grant_id: bytes) -> bytes:
    """The payload of a ``consent.revoke`` transaction (client helper)."""
    return REVOKE_PAYLOAD_CODEC.encode(RevokePayload(patient, grant_id))


def break_glass_payload(patient: bytes, reason_code: str) -> bytes:
    """The payload of a ``consent.break_glass`` transaction (client helper)."""
    return BREAK_GLASS_PAYLOAD_CODEC.encode(BreakGlassPayload(patient, reason_code))


# -- query paths ---------------------------------------------------------------------------

TIME_SEGMENT: Final = 0
"""In a path layout: a segment that is a decimal time in ms, stored as u64 big-endian."""
_HEX_PATTERN: Final = re.compile(r"(?:[0-9a-fA-F]{2})+", re.ASCII)
_DECIMAL_PATTERN: Final = re.compile(r"[0-9]{1,20}", re.ASCII)


def key_from_path(namespace: bytes, path: str, layouts: Mapping[str, Sequence[int]]) -> bytes:
    """The state key a readable query path names: ``<letter>[/<segment>...]``, where
    ``layouts[letter]`` gives the byte length of each segment (a hex id) or
    ``TIME_SEGMENT`` (decimal ms). Fewer segments than the layout name a key prefix
    (``g/<hex patient>``). ``ValueError`` for anything else."""
    letter, *segments = path.strip("/").split("/")
    layout = layouts.get(letter)
    if layout is None:
        names = ", ".join(sorted(layouts))
        raise ValueError(f"unknown path {path!r}: it starts with one of {names}")
    if len(segments) > len(layout):
        raise ValueError(f"path {path!r} has more than {len(layout)} segments")
    key = namespace + letter.encode() + b"/"
    for text, size in zip(segments, layout, strict=False):
        key += _segment_bytes(text, size, path)
    return key


def _segment_bytes(text: str, size: int, path: str) -> bytes:
    if size == TIME_SEGMENT:
        if _DECIMAL_PATTERN.fullmatch(text) is None or int(text) >= 1 << 64:
            raise ValueError(f"path {path!r}: {text!r} is not a time in ms")
        return u64(int(text))
    if _HEX_PATTERN.fullmatch(text) is None or len(text) != 2 * size:
        raise ValueError(f"path {path!r}: {text!r} is not the hex of {size} bytes")
    return bytes.fromhex(text)
