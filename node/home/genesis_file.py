"""The genesis file (``genesis.json``): the ``Genesis`` document in JSON an operator can read.

    {
      "chain_id": "bighealth-testnet",
      "genesis_time_ms": 1767225600000,
      "validators": [{"public_key": "<64 hex digits>", "voting_power": 10}, ...],
      "accounts": [{"public_key": "<64 hex digits>", "role": "institution"}, ...],
      "params": {"timeout_propose_ms": 3000, ...},
      "app_state": {"<module>": <any JSON value but floats>, ...}
    }

Every node of a chain must hold the same document; its identity is the SHA-256 of the
canonical (msgpack) encoding, ``Genesis.hash()``, which ``bighealth genesis show`` prints so
operators can compare it out of band. Reading is strict: unknown or missing fields, values
of the wrong type and anything ``Genesis`` refuses raise ``GenesisFileError``. A missing
``params`` object (or key in it) takes the defaults of ``ConsensusParams``; a missing
``app_state`` means no module has a genesis state (``format_genesis`` omits an empty one).
Each module's state is kept as its canonical encoding (``node.chain.app_state``): key order
and spacing in the file do not change the genesis hash, the values do.
"""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from typing import Any, Final

from node.app.accounts import GenesisAccount, Role
from node.chain.app_state import AppStateEntries, decode_app_state, encode_app_states
from node.chain.errors import InvalidGenesisError
from node.chain.genesis import MAX_GENESIS_BYTES, ConsensusParams, Genesis
from node.home.errors import GenesisFileError
from node.types import PUBLIC_KEY_BYTES, Validator

MAX_GENESIS_FILE_BYTES: Final = 4 * MAX_GENESIS_BYTES
"""Largest genesis file read (JSON with hex keys is about twice the canonical size)."""
_TOP_FIELDS: Final = (
    "chain_id",
    "genesis_time_ms",
    "validators",
    "accounts",
    "params",
    "app_state",
)


def format_genesis(genesis: Genesis) -> str:
    """The JSON text of ``genesis`` (``parse_genesis`` reads it back equal)."""
    document: dict[str, Any] = {
        "chain_id": genesis.chain_id,
        "genesis_time_ms": genesis.genesis_time_ms,
        "validators": [
            {"public_key": v.public_key.hex(), "voting_power": v.voting_power}
            for v in genesis.validators
        ],
        "accounts": [
            {"public_key": a.public_key.hex(), "role": a.role.name.lower()}
            for a in genesis.accounts
        ],
        "params": asdict(genesis.params),
    }
    if genesis.app_state:
        document["app_state"] = {name: decode_app_state(data) for name, data in genesis.app_state}
    return json.dumps(document, indent=2) + "\n"


def parse_genesis(text: str | bytes, where: str = "genesis.json") -> Genesis:
    """The genesis in JSON ``text``; ``GenesisFileError`` (prefixed with ``where``) if not."""
    if len(text) > MAX_GENESIS_FILE_BYTES:
        raise GenesisFileError(f"{where}: larger than {MAX_GENESIS_FILE_BYTES} bytes")
    try:
        document = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise GenesisFileError(f"{where}: not valid JSON: {exc}") from exc
    try:
        return _genesis_of(document)
    except (GenesisFileError, InvalidGenesisError) as exc:
        raise GenesisFileError(f"{where}: {exc}") from exc


def _genesis_of(document: object) -> Genesis:
    top = _object("the genesis", document, required=_TOP_FIELDS[:3], allowed=_TOP_FIELDS)
    validators = tuple(
        _validator(i, item) for i, item in enumerate(_array("validators", top["validators"]))
    )
    accounts = tuple(
        _account(i, item) for i, item in enumerate(_array("accounts", top.get("accounts", [])))
    )
    return Genesis(
        chain_id=_string("chain_id", top["chain_id"]),
        genesis_time_ms=_integer("genesis_time_ms", top["genesis_time_ms"]),
        validators=validators,
        accounts=accounts,
        params=_params(top.get("params", {})),
        app_state=app_state_of_document(top.get("app_state", {})),
    )


def app_state_of_document(value: object, where: str = "app_state") -> AppStateEntries:
    """``Genesis.app_state`` from a JSON object of module states (``{"<module>": value}``);
    ``GenesisFileError`` if it is not one or a state is not a valid JSON value (a float)."""
    if not isinstance(value, dict):
        raise GenesisFileError(f"{where} must be a JSON object of module states")
    try:
        return encode_app_states(value)
    except InvalidGenesisError as exc:
        raise GenesisFileError(f"{where}: {exc}") from exc


def _validator(index: int, item: object) -> Validator:
    where = f"validators[{index}]"
    entry = _object(where, item, required=("public_key", "voting_power"))
    return Validator(
        public_key=public_key_of(f"{where}.public_key", entry["public_key"]),
        voting_power=_integer(f"{where}.voting_power", entry["voting_power"]),
    )


def _account(index: int, item: object) -> GenesisAccount:
    where = f"accounts[{index}]"
    entry = _object(where, item, required=("public_key", "role"))
    role_name = _string(f"{where}.role", entry["role"])
    roles = {role.name.lower(): role for role in Role}
    if role_name not in roles:
        raise GenesisFileError(f"{where}.role must be one of {', '.join(roles)}")
    key = public_key_of(f"{where}.public_key", entry["public_key"])
    return GenesisAccount(key, roles[role_name])


def _params(value: object) -> ConsensusParams:
    names = tuple(item.name for item in fields(ConsensusParams))
    entry = _object("params", value, required=(), allowed=names)
    return ConsensusParams(**{name: _integer(f"params.{name}", v) for name, v in entry.items()})


def public_key_of(where: str, value: object) -> bytes:
    """The 32-byte key in ``value`` (64 hex digits); ``GenesisFileError`` otherwise."""
    text = _string(where, value)
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise GenesisFileError(f"{where} is not hexadecimal") from None
    if len(key) != PUBLIC_KEY_BYTES:
        raise GenesisFileError(f"{where} must be {2 * PUBLIC_KEY_BYTES} hex digits")
    return key


def _object(
    where: str, value: object, *, required: tuple[str, ...], allowed: tuple[str, ...] = ()
) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise GenesisFileError(f"{where} must be a JSON object")
    missing = [name for name in required if name not in value]
    if missing:
        raise GenesisFileError(f"{where} lacks {missing[0]!r}")
    unknown = sorted(set(value) - set(allowed or required))
    if unknown:
        raise GenesisFileError(f"{where} has an unknown field {unknown[0]!r}")
    return value


def _array(where: str, value: object) -> list[Any]:
    if not isinstance(value, list):
        raise GenesisFileError(f"{where} must be a JSON array")
    return value


def _string(where: str, value: object) -> str:
    if not isinstance(value, str):
        raise GenesisFileError(f"{where} must be a string")
    return value


def _integer(where: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise GenesisFileError(f"{where} must be an integer")
    return value
