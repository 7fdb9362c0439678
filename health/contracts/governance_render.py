"""Governance's queries: the state key of a readable path, and a stored value as JSON (bytes
as hex, enums by lower-case name, a proposal with its decoded body)."""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from enum import IntEnum

from health.contracts.common import ID_BYTES, PARAM_DEFAULTS, PARAM_PREFIX, u64
from health.contracts.governance_types import (
    BALLOT_CODEC,
    BODY_CODECS,
    MEMBER_CODEC,
    MEMBER_PREFIX,
    NEXT_ID_KEY,
    OPEN_PREFIX,
    PROPOSAL_CODEC,
    PROPOSAL_PREFIX,
    VOTE_PREFIX,
)
from node.app.module import JsonValue


def governance_key(path: str) -> bytes:
    """The state key (or key prefix) of a readable path: see ``GovernanceModule.query_key``;
    ``ValueError`` for anything else."""
    head, _, rest = path.partition("/")
    parts = rest.split("/") if rest else []
    if head == "n" and not parts:
        return NEXT_ID_KEY
    if head == "m" and len(parts) <= 1:
        return MEMBER_PREFIX + b"".join(_path_id(p) for p in parts)
    if head == "p" and len(parts) <= 1:
        if parts and parts[0] not in PARAM_DEFAULTS:
            raise ValueError(f"governance: no parameter {parts[0]!r}")
        return PARAM_PREFIX + b"".join(p.encode() for p in parts)
    if head == "q" and len(parts) <= 1:
        return PROPOSAL_PREFIX + b"".join(_path_number(p) for p in parts)
    if head == "v" and 1 <= len(parts) <= 2:
        return VOTE_PREFIX + _path_number(parts[0]) + b"".join(map(_path_id, parts[1:]))
    if head == "o" and 1 <= len(parts) <= 2:
        return OPEN_PREFIX + _path_id(parts[0]) + b"".join(map(_path_number, parts[1:]))
    raise ValueError(f"governance: no state at path {path!r}")


def render_governance(key: bytes, value: bytes) -> JsonValue:
    """A stored governance value as JSON (with the ids and numbers of its key)."""
    if key == NEXT_ID_KEY:
        return {"next_id": int.from_bytes(value, "big")}
    if key.startswith(MEMBER_PREFIX):
        member = MEMBER_CODEC.decode(value)
        return {"institution": key[len(MEMBER_PREFIX) :].hex(), **_json_of(member)}
    if key.startswith(PARAM_PREFIX):
        return {"name": key[len(PARAM_PREFIX) :].decode(), "value": _u64_of(value)}
    if key.startswith(PROPOSAL_PREFIX):
        proposal = PROPOSAL_CODEC.decode(value)
        body = _json_of(BODY_CODECS[proposal.kind].decode(proposal.body))
        return {**_json_of(proposal), "body": body}
    if key.startswith(VOTE_PREFIX):
        suffix = key[len(VOTE_PREFIX) :]
        ballot = _json_of(BALLOT_CODEC.decode(value))
        return {"proposal": _u64_of(suffix[:8]), "member": suffix[8:].hex(), **ballot}
    if key.startswith(OPEN_PREFIX):
        suffix = key[len(OPEN_PREFIX) :]
        return {
            "proposer": suffix[:ID_BYTES].hex(),
            "proposal": _u64_of(suffix[ID_BYTES:]),
            "deadline_ms": _u64_of(value),
        }
    return {"hex": value.hex()}


def _path_id(text: str) -> bytes:
    try:
        value = bytes.fromhex(text)
    except ValueError as exc:
        raise ValueError(f"governance: {text!r} is not a hex id") from exc
    if len(value) != ID_BYTES:
        raise ValueError(f"governance: an id is {ID_BYTES} bytes, got {len(value)}")
    return value


def _path_number(text: str) -> bytes:
    if not (text.isascii() and text.isdigit()) or int(text) >= 1 << 64:
        raise ValueError(f"governance: {text!r} is not a proposal id")
    return u64(int(text))


def _u64_of(value: bytes) -> int:
    return int.from_bytes(value, "big")


def _json_of(record: object) -> dict[str, JsonValue]:
    """A record as JSON: bytes as hex, enums by lower-case name, nested records as objects
    (fields in declaration order)."""
    if not is_dataclass(record) or isinstance(record, type):
        raise AssertionError(f"not a record: {type(record).__name__}")
    result: dict[str, JsonValue] = {}
    for field in fields(record):
        result[field.name] = _json_value(getattr(record, field.name))
    return result


def _json_value(value: object) -> JsonValue:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, IntEnum):
        return value.name.lower()
    if isinstance(value, bool | int | str):
        return value
    if is_dataclass(value):
        return _json_of(value)
    raise AssertionError(f"no JSON form for {type(value).__name__}")
