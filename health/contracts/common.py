"""What every health contract shares: roles, identity records, ids, parameters, reads.

The identity records are defined here (written only by the ``identity`` module) because
every other contract reads them: who is an active practitioner of an active institution,
which device is paired to which patient. Governance parameters are likewise read by every
contract (written only by ``governance``); ``param`` gives the value in force, or its default.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Final, TypeVar

from crypto_core.signatures import sha256
from node.app.errors import TxFailed
from node.app.module import KeyReader
from node.codec import Bool, Bytes, EnumOf, StructCodec, Text, UInt
from node.errors import DecodeError
from node.types import PUBLIC_KEY_BYTES, ResultCode

T = TypeVar("T")

ID_BYTES: Final = 32
"""Every id of the health chain (identity, grant, record, referral...) is 32 bytes."""
ENCRYPTION_KEY_BYTES: Final = 32
"""An X25519 public key."""
NAME_PATTERN: Final = re.compile(r"[a-z][a-z0-9_]{0,31}", re.ASCII)
"""Kinds, specialties, FHIR-free codes of the chain: lower-case ASCII words."""
MAX_LABEL_CHARS: Final = 64
"""A public label (an institution's or a practitioner's display name)."""
MAX_FHIR_TYPE_CHARS: Final = 64
MAX_CODE_CHARS: Final = 64
FHIR_TYPE_PATTERN: Final = re.compile(r"[A-Z][A-Za-z]{0,63}", re.ASCII)
"""A FHIR R4 resource type name (``Observation``, ``CarePlan``...)."""
CODE_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:|/-]{0,63}", re.ASCII)
"""A coded concept as ``system|code`` or a bare code (``http://loinc.org|2339-0``)."""

IDENTITY_PREFIX: Final = b"identity/i/"
KEY_PREFIX: Final = b"identity/k/"
CHILD_PREFIX: Final = b"identity/c/"
PARAM_PREFIX: Final = b"governance/p/"

DAY_MS: Final = 24 * 3600 * 1000
PARAM_DEFAULTS: Final[Mapping[str, int]] = {
    "voting_period_ms": 3 * DAY_MS,
    "quorum_pct": 50,
    "threshold_pct": 66,
    "max_grant_ms": 365 * DAY_MS,
    "emergency_access_ms": DAY_MS,
    "max_record_bytes": 1024 * 1024,
    "audit_batch_max": 256,
    "reminder_grace_ms": 3600 * 1000,
    "max_custodians": 8,
}
"""Every governance parameter and its value until a vote changes it (docs/HEALTH.md)."""
PARAM_LIMITS: Final[Mapping[str, tuple[int, int]]] = {
    "voting_period_ms": (60_000, 90 * DAY_MS),
    "quorum_pct": (1, 100),
    "threshold_pct": (50, 100),
    "max_grant_ms": (60_000, 10 * 365 * DAY_MS),
    "emergency_access_ms": (0, 7 * DAY_MS),
    "max_record_bytes": (1024, 16 * 1024 * 1024),
    "audit_batch_max": (1, 512),  # about 550 entries fill a 64 KiB transaction
    "reminder_grace_ms": (60_000, DAY_MS),
    "max_custodians": (1, 8),
}
"""The range a vote may set each parameter to (inclusive)."""


class HealthRole(IntEnum):
    """What an identity is."""

    INSTITUTION = 1
    PRACTITIONER = 2
    PATIENT = 3
    DEVICE = 4
    AUDITOR = 5


INSTITUTION_KINDS: Final = frozenset({"hospital", "clinic", "lab"})
DEVICE_KINDS: Final = frozenset({"glucose_meter", "cgm", "insulin_pump"})


@dataclass(frozen=True, slots=True)
class Identity:
    """The record of one identity (``identity/i/<id>``).

    ``kind``: an institution's kind, a practitioner's specialty, a device's kind ("" for
    patients and auditors). ``label``: public display name of institutions and practitioners
    ("" otherwise: patients and devices are pseudonymous). ``parent``: the institution of a
    practitioner or patient, the patient of a device, empty for institutions and auditors.
    """

    id: bytes
    role: HealthRole
    kind: str
    label: str
    parent: bytes
    signing_key: bytes
    encryption_key: bytes
    key_epoch: int
    active: bool
    registered_height: int


@dataclass(frozen=True, slots=True)
class KeyEntry:
    """A signing key ever bound to an identity (``identity/k/<key>``): the nonce of the
    transactions it signs, and whether it may still sign (not after a rotation)."""

    identity: bytes
    next_nonce: int
    active: bool


_ID = Bytes.exactly(ID_BYTES)
IDENTITY_CODEC: Final = StructCodec(
    Identity,
    [
        ("id", _ID),
        ("role", EnumOf(HealthRole)),
        ("kind", Text(32, re.compile(r"|" + NAME_PATTERN.pattern, re.ASCII))),
        ("label", Text(MAX_LABEL_CHARS)),
        ("parent", Bytes(ID_BYTES)),
        ("signing_key", Bytes.exactly(PUBLIC_KEY_BYTES)),
        ("encryption_key", Bytes.exactly(ENCRYPTION_KEY_BYTES)),
        ("key_epoch", UInt()),
        ("active", Bool()),
        ("registered_height", UInt()),
    ],
    512,
    memo_entries=16_384,  # read to authenticate every transaction
)
KEY_ENTRY_CODEC: Final = StructCodec(
    KeyEntry,
    [("identity", _ID), ("next_nonce", UInt()), ("active", Bool())],
    96,
    memo_entries=16_384,  # read at admission, recheck and execution of every transaction
)


def u64(value: int) -> bytes:
    """``value`` as 8 bytes big-endian: key order is numeric order."""
    return value.to_bytes(8, "big")


def derive_id(domain: bytes, tx_hash: bytes | None) -> bytes:
    """The id of the object a transaction creates: ``SHA-256(domain ‖ tx hash)``."""
    if tx_hash is None:
        raise AssertionError("an object id needs the creating transaction's hash")
    return sha256(domain + tx_hash)


def read_struct(reader: KeyReader, key: bytes, codec: StructCodec[T]) -> T | None:
    """The record under ``key`` decoded with ``codec``, or None. Our own writes are
    canonical, so a value that does not decode is a bug (``AssertionError``)."""
    stored = reader.get(key)
    if stored is None:
        return None
    try:
        return codec.decode(stored)
    except DecodeError as exc:
        raise AssertionError(f"corrupt record under {key!r}: {exc}") from exc


def identity_key(identity_id: bytes) -> bytes:
    """The state key of an identity record."""
    return IDENTITY_PREFIX + identity_id


def signing_key_key(signing_key: bytes) -> bytes:
    """The state key of a signing key's entry."""
    return KEY_PREFIX + signing_key


def child_key(parent: bytes, child: bytes) -> bytes:
    """The index entry listing ``child`` under ``parent``."""
    return CHILD_PREFIX + parent + child


def get_identity(reader: KeyReader, identity_id: bytes) -> Identity | None:
    """The identity ``identity_id``, or None."""
    return read_struct(reader, identity_key(identity_id), IDENTITY_CODEC)


def get_key_entry(reader: KeyReader, signing_key: bytes) -> KeyEntry | None:
    """The entry of a signing key, or None."""
    return read_struct(reader, signing_key_key(signing_key), KEY_ENTRY_CODEC)


def identity_of_sender(reader: KeyReader, sender: bytes) -> Identity | None:
    """The identity whose current signing key is ``sender`` (None if none or rotated)."""
    entry = get_key_entry(reader, sender)
    if entry is None or not entry.active:
        return None
    return get_identity(reader, entry.identity)


def is_acting(reader: KeyReader, identity: Identity | None) -> bool:
    """True if ``identity`` is active, and so is its parent where it acts through one (a
    practitioner's institution, a device's patient)."""
    if identity is None or not identity.active:
        return False
    if identity.role in (HealthRole.PRACTITIONER, HealthRole.DEVICE):
        parent = get_identity(reader, identity.parent)
        return parent is not None and parent.active
    return True


def require_sender(
    reader: KeyReader, sender: bytes, roles: Collection[HealthRole], what: str
) -> Identity:
    """The acting identity of ``sender`` if its role is one of ``roles``; else
    ``TxFailed(UNAUTHORIZED)`` saying that only those roles may do ``what``."""
    identity = identity_of_sender(reader, sender)
    if identity is None or identity.role not in roles or not is_acting(reader, identity):
        names = " or ".join(sorted(role.name.lower() for role in roles))
        raise TxFailed(ResultCode.UNAUTHORIZED, f"only an active {names} may {what}")
    return identity


def require_identity(
    reader: KeyReader, identity_id: bytes, roles: Collection[HealthRole], what: str
) -> Identity:
    """The acting identity ``identity_id`` if its role is one of ``roles``; else
    ``TxFailed`` (NOT_FOUND when unknown, UNAUTHORIZED otherwise)."""
    identity = get_identity(reader, identity_id)
    if identity is None:
        raise TxFailed(ResultCode.NOT_FOUND, f"no identity {identity_id.hex()}")
    if identity.role not in roles or not is_acting(reader, identity):
        names = " or ".join(sorted(role.name.lower() for role in roles))
        raise TxFailed(ResultCode.UNAUTHORIZED, f"{what}: must be an active {names}")
    return identity


def param_key(name: str) -> bytes:
    """The state key of a governance parameter."""
    return PARAM_PREFIX + name.encode()


def param(reader: KeyReader, name: str) -> int:
    """The governance parameter ``name`` in force (its default until a vote sets it)."""
    if name not in PARAM_DEFAULTS:
        raise AssertionError(f"no governance parameter {name!r}")
    stored = reader.get(param_key(name))
    return PARAM_DEFAULTS[name] if stored is None else int.from_bytes(stored, "big")


def check_name(value: str, what: str, allowed: Collection[str] | None = None) -> str:
    """``value`` if it is a chain name (and one of ``allowed``); else INVALID_PAYLOAD."""
    if NAME_PATTERN.fullmatch(value) is None or (allowed is not None and value not in allowed):
        hint = f" (one of {', '.join(sorted(allowed))})" if allowed is not None else ""
        raise TxFailed(ResultCode.INVALID_PAYLOAD, f"bad {what} {value!r}{hint}")
    return value


# -- shared between contracts ----------------------------------------------------------------


class Purpose(IntEnum):
    """Why data is read (FHIR Consent's purpose of use)."""

    TREATMENT = 1
    RESEARCH = 2


class AccessBasis(IntEnum):
    """Under what a read is allowed (and audited)."""

    OWNER = 1
    GRANT = 2
    EMERGENCY = 3


@dataclass(frozen=True, slots=True)
class Access:
    """A read allowed now: its basis and the grant's or emergency access' id (empty for
    the owner). Returned by ``health.contracts.consent.find_access``."""

    basis: AccessBasis
    basis_id: bytes


@dataclass(frozen=True, slots=True)
class ReadingNotice:
    """What ``records`` tells ``care`` (module call ``care.reading_committed``) when a
    glucose reading of ``patient`` taken at ``data_time_ms`` is committed."""

    patient: bytes
    record: bytes
    data_time_ms: int


READING_NOTICE_CODEC: Final = StructCodec(
    ReadingNotice, [("patient", _ID), ("record", _ID), ("data_time_ms", UInt())], 128
)
GLUCOSE_RESOURCE_TYPE: Final = "Observation"
GLUCOSE_READING_CODES: Final = frozenset(
    {
        "http://loinc.org|41653-7",  # Glucose [Mass/volume] in Capillary blood by Glucometer
        "http://loinc.org|99504-3",  # Glucose [Mass/volume] in Interstitial fluid (CGM)
    }
)
"""Codes of the records that count as glucose readings (close measurement reminders)."""
