"""Governance's genesis: the member institutions and parameters the chain starts with,
checked, and read from ``app_state["governance"]`` of the genesis document."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from consensus.limits import MAX_TOTAL_VOTING_POWER
from health.contracts.common import ID_BYTES, PARAM_DEFAULTS, PARAM_LIMITS
from health.contracts.governance_types import (
    MAX_MEMBERS,
    MAX_VALIDATOR_POWER,
    MAX_WEIGHT,
    MIN_WEIGHT,
    GenesisMember,
)
from node.app.module import JsonValue
from node.types import PUBLIC_KEY_BYTES


def check_genesis_members(genesis: Sequence[GenesisMember]) -> tuple[GenesisMember, ...]:
    """``genesis`` if it is a valid set of members (``ValueError`` otherwise)."""
    if len(genesis) > MAX_MEMBERS:
        raise ValueError(f"governance: at most {MAX_MEMBERS} members")
    for index, member in enumerate(genesis):
        where = f"governance member {index}"
        if type(member.institution) is not bytes or len(member.institution) != ID_BYTES:
            raise ValueError(f"{where}: institution must be {ID_BYTES} bytes")
        if type(member.validator_key) is not bytes or len(member.validator_key) != 32:
            raise ValueError(f"{where}: validator_key must be {PUBLIC_KEY_BYTES} bytes")
        if type(member.weight) is not int or not MIN_WEIGHT <= member.weight <= MAX_WEIGHT:
            raise ValueError(f"{where}: weight must be an int in {MIN_WEIGHT}..{MAX_WEIGHT}")
        if type(member.power) is not int or not 0 <= member.power <= MAX_VALIDATOR_POWER:
            raise ValueError(f"{where}: power must be an int in 0..{MAX_VALIDATOR_POWER}")
    if len({m.institution for m in genesis}) != len(genesis):
        raise ValueError("governance: an institution is listed twice")
    if len({m.validator_key for m in genesis}) != len(genesis):
        raise ValueError("governance: a validator key is listed twice")
    if sum(m.power for m in genesis) > MAX_TOTAL_VOTING_POWER:
        raise ValueError("governance: the total validator power is too large")
    return tuple(genesis)


def check_genesis_params(params: Mapping[str, int]) -> dict[str, int]:
    """``params`` if every name is a parameter and every value within its limits."""
    for name, value in params.items():
        if name not in PARAM_DEFAULTS:
            raise ValueError(f"governance: no parameter {name!r}")
        low, high = PARAM_LIMITS[name]
        if type(value) is not int or not low <= value <= high:
            raise ValueError(f"governance: parameter {name} must be an int in {low}..{high}")
    return dict(params)


def _json_object(value: JsonValue, where: str, keys: frozenset[str]) -> dict[str, JsonValue]:
    if not isinstance(value, dict):
        raise ValueError(f"{where} must be a JSON object")
    unknown = sorted(set(value) - keys)
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {', '.join(unknown)}")
    return value


def _json_hex(value: JsonValue, where: str) -> bytes:
    if not isinstance(value, str):
        raise ValueError(f"{where} must be a hex string")
    try:
        return bytes.fromhex(value)
    except ValueError as exc:
        raise ValueError(f"{where} must be a hex string") from exc


def _json_int(value: JsonValue, where: str) -> int:
    if type(value) is not int:
        raise ValueError(f"{where} must be an integer")
    return value


_MEMBER_FIELDS: Final = frozenset({"institution", "validator_key", "power", "weight"})


def _genesis_member(value: JsonValue, where: str) -> GenesisMember:
    item = _json_object(value, where, _MEMBER_FIELDS)
    missing = sorted(_MEMBER_FIELDS - set(item))
    if missing:
        raise ValueError(f"{where}: missing field(s) {', '.join(missing)}")
    return GenesisMember(
        institution=_json_hex(item["institution"], f"{where}.institution"),
        validator_key=_json_hex(item["validator_key"], f"{where}.validator_key"),
        power=_json_int(item["power"], f"{where}.power"),
        weight=_json_int(item["weight"], f"{where}.weight"),
    )


def genesis_of_app_state(value: JsonValue) -> tuple[list[GenesisMember], dict[str, int]]:
    """The members and parameters of ``app_state["governance"]`` (not None): see
    ``GovernanceModule.from_app_state``; ``ValueError`` saying what is wrong otherwise."""
    state = _json_object(value, "app_state.governance", frozenset({"members", "params"}))
    listed = state.get("members", [])
    if not isinstance(listed, list):
        raise ValueError("app_state.governance.members must be a list")
    genesis = [
        _genesis_member(item, f"app_state.governance.members[{index}]")
        for index, item in enumerate(listed)
    ]
    raw_params = state.get("params", {})
    if not isinstance(raw_params, dict):
        raise ValueError("app_state.governance.params must be a JSON object")
    params = {
        name: _json_int(item, f"app_state.governance.params.{name}")
        for name, item in raw_params.items()
    }
    return genesis, params
