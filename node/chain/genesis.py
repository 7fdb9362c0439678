"""The genesis document: what every node of a chain starts from, with one canonical hash.

A ``Genesis`` names the chain, its start time, the initial validators with their voting
power, the initial accounts (institutions, mostly), the chain-wide ``ConsensusParams`` and
each module's initial state (``app_state``: module name -> the canonical encoding of a JSON
value, ``node.chain.app_state``; a module reads its own with ``app_state_of``).
Its canonical encoding (``GENESIS_CODEC``, msgpack arrays as in ``node.codec``) gives one
hash on every machine. The ``GenesisModule`` (``node.app.genesis_anchor``, re-exported here)
writes that hash into the genesis state
(``genesis/hash``), so the state root at height 0 — which block 1 carries as its
``app_state_root`` — commits to the whole document: a node started from another genesis
disagrees about block 1 and can never join.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Final, cast

from consensus.errors import InvalidConfigError as ConsensusConfigError
from consensus.errors import InvalidValidatorSetError
from consensus.timeouts import TimeoutConfig
from consensus.validator_set import ValidatorSet
from crypto_core.signatures import sha256
from node.app.accounts import GenesisAccount, Role
from node.app.blocks import DEFAULT_MAX_FUTURE_DRIFT_MS
from node.app.genesis_anchor import GENESIS_HASH_KEY, GENESIS_MODULE, GenesisModule
from node.app.module import JsonValue
from node.chain.app_state import (
    MAX_APP_STATE_MODULES,
    AppStateEntries,
    check_app_states,
    decode_app_state,
)
from node.chain.errors import InvalidGenesisError
from node.codec import (
    CHAIN_ID_PATTERN,
    COMMIT_SIGNATURE_BYTES,
    KIB,
    MAX_BLOCK_BYTES,
    MAX_EVIDENCE_BYTES,
    MAX_EVIDENCE_PER_BLOCK,
    MAX_TX_BYTES,
    MAX_TXS_PER_BLOCK,
    MAX_VALIDATORS,
    MIB,
    U64_MAX,
    VALIDATOR_CODEC,
    ArrayOf,
    Bytes,
    EnumOf,
    Kind,
    Nested,
    StructCodec,
    Text,
    UInt,
)
from node.errors import DecodeError, EncodeError, SchemaError
from node.types import PUBLIC_KEY_BYTES, Validator

DEFAULT_MAX_BLOCK_BYTES: Final = 512 * KIB
"""Default block size limit. A block travels as one network message, and the libp2p adapter
carries at most 768 KiB per message (640 KiB by default; gossipsub silently loses messages
of about 1 MiB, docs/NETWORKING.md): 512 KiB leaves room for the envelope and framing under the
adapter's default, so a default chain never makes blocks its own network drops."""
DEFAULT_MAX_BLOCK_TXS: Final = 5_000
"""Default number of transactions a block may carry."""
HEADER_OVERHEAD_BYTES: Final = 1 * KIB
"""Room a block needs besides its transactions and its commit certificate (header fields,
array headers)."""
MAX_GENESIS_ACCOUNTS: Final = 100_000
"""Most accounts a genesis document may list."""
MAX_GENESIS_BYTES: Final = 16 * MIB
"""Largest canonical encoding of a genesis document."""
MAX_DRIFT_MS: Final = 3_600_000
"""Largest ``max_future_drift_ms`` (one hour)."""
DEFAULT_EVIDENCE_MAX_AGE_HEIGHTS: Final = 100_000
"""Default age limit of evidence, in heights (about a day at one block a second)."""
MAX_EVIDENCE_AGE_HEIGHTS: Final = 10_000_000
"""Largest ``evidence_max_age_heights``."""
DEFAULT_MAX_EVIDENCE_PER_BLOCK: Final = 32
"""Default number of evidence objects a block may carry."""
DEFAULT_MAX_EVIDENCE_BYTES: Final = 32 * KIB
"""Default limit of the encoded evidence of one block, in bytes."""


@dataclass(frozen=True, slots=True)
class ConsensusParams:
    """Rules every node of a chain shares (a node with other values judges blocks
    differently). Timeouts grow by their delta each round (``consensus.TimeoutConfig``)."""

    timeout_propose_ms: int = 3_000
    timeout_propose_delta_ms: int = 500
    timeout_prevote_ms: int = 1_000
    timeout_prevote_delta_ms: int = 500
    timeout_precommit_ms: int = 1_000
    timeout_precommit_delta_ms: int = 500
    max_block_bytes: int = DEFAULT_MAX_BLOCK_BYTES
    """Largest canonical encoding of a block, header included."""
    max_block_txs: int = DEFAULT_MAX_BLOCK_TXS
    """Most transactions in a block."""
    max_future_drift_ms: int = DEFAULT_MAX_FUTURE_DRIFT_MS
    """How far a proposed block's time may be ahead of a validating node's clock."""
    evidence_max_age_heights: int = DEFAULT_EVIDENCE_MAX_AGE_HEIGHTS
    """A block at height H may carry evidence of heights H - evidence_max_age_heights .. H - 1
    only: older evidence has expired (nodes keep the validator sets that far back)."""
    max_evidence_per_block: int = DEFAULT_MAX_EVIDENCE_PER_BLOCK
    """Most evidence objects in a block."""
    max_evidence_bytes: int = DEFAULT_MAX_EVIDENCE_BYTES
    """Most bytes of encoded evidence objects in a block (counted inside max_block_bytes)."""

    def __post_init__(self) -> None:
        for item in fields(self):
            if type(getattr(self, item.name)) is not int:
                raise InvalidGenesisError(f"ConsensusParams.{item.name} must be an int")
        try:
            self.timeouts()
        except ConsensusConfigError as exc:
            raise InvalidGenesisError(str(exc)) from exc
        if not MAX_TX_BYTES + HEADER_OVERHEAD_BYTES <= self.max_block_bytes <= MAX_BLOCK_BYTES:
            raise InvalidGenesisError(
                f"max_block_bytes must be in {MAX_TX_BYTES + HEADER_OVERHEAD_BYTES}.."
                f"{MAX_BLOCK_BYTES}, got {self.max_block_bytes}"
            )
        if not 1 <= self.max_block_txs <= MAX_TXS_PER_BLOCK:
            raise InvalidGenesisError(f"max_block_txs must be in 1..{MAX_TXS_PER_BLOCK}")
        if not 1 <= self.max_future_drift_ms <= MAX_DRIFT_MS:
            raise InvalidGenesisError(f"max_future_drift_ms must be in 1..{MAX_DRIFT_MS}")
        self._check_evidence_limits()

    def _check_evidence_limits(self) -> None:
        if not 1 <= self.evidence_max_age_heights <= MAX_EVIDENCE_AGE_HEIGHTS:
            raise InvalidGenesisError(
                f"evidence_max_age_heights must be in 1..{MAX_EVIDENCE_AGE_HEIGHTS}"
            )
        if not 1 <= self.max_evidence_per_block <= MAX_EVIDENCE_PER_BLOCK:
            raise InvalidGenesisError(
                f"max_evidence_per_block must be in 1..{MAX_EVIDENCE_PER_BLOCK}"
            )
        if not MAX_EVIDENCE_BYTES <= self.max_evidence_bytes < self.max_block_bytes:
            raise InvalidGenesisError(
                f"max_evidence_bytes must hold one evidence object ({MAX_EVIDENCE_BYTES} "
                f"bytes) and be below max_block_bytes, got {self.max_evidence_bytes}"
            )

    def timeouts(self) -> TimeoutConfig:
        """The consensus core's timeout configuration."""
        return TimeoutConfig(
            timeout_propose_ms=self.timeout_propose_ms,
            timeout_propose_delta_ms=self.timeout_propose_delta_ms,
            timeout_prevote_ms=self.timeout_prevote_ms,
            timeout_prevote_delta_ms=self.timeout_prevote_delta_ms,
            timeout_precommit_ms=self.timeout_precommit_ms,
            timeout_precommit_delta_ms=self.timeout_precommit_delta_ms,
        )


@dataclass(frozen=True, slots=True)
class Genesis:
    """The genesis document (validated on construction: ``InvalidGenesisError``)."""

    chain_id: str
    genesis_time_ms: int
    validators: tuple[Validator, ...]
    accounts: tuple[GenesisAccount, ...] = ()
    params: ConsensusParams = field(default_factory=ConsensusParams)
    app_state: AppStateEntries = ()
    """Module name -> canonical bytes of its genesis state (names ascending, each once)."""

    def __post_init__(self) -> None:
        if not isinstance(self.chain_id, str) or not CHAIN_ID_PATTERN.fullmatch(self.chain_id):
            raise InvalidGenesisError(
                f"chain id {self.chain_id!r}: 1 to 64 letters, digits, '.', '_' or '-', "
                "starting with a letter or a digit"
            )
        if type(self.genesis_time_ms) is not int or not 0 <= self.genesis_time_ms <= U64_MAX:
            raise InvalidGenesisError("genesis_time_ms must be a u64 of milliseconds")
        if not isinstance(self.params, ConsensusParams):
            raise InvalidGenesisError("params must be a ConsensusParams")
        _check_validators(self.validators, self.params)
        _check_accounts(self.accounts)
        check_app_states(self.app_state, max_total_bytes=MAX_GENESIS_BYTES)

    def app_state_of(self, name: str) -> JsonValue | None:
        """The genesis state of module ``name`` (decoded), or None if it has none."""
        for module, data in self.app_state:
            if module == name:
                return decode_app_state(data)
        return None

    def app_state_modules(self) -> tuple[str, ...]:
        """The names of the modules that have a genesis state, ascending."""
        return tuple(name for name, _ in self.app_state)

    def validator_set(self) -> ValidatorSet:
        """The validator set of height 1."""
        return ValidatorSet(self.validators)

    def encode(self) -> bytes:
        """The canonical encoding."""
        try:
            return GENESIS_CODEC.encode(self)
        except EncodeError as exc:
            raise InvalidGenesisError(f"genesis does not fit its schema: {exc}") from exc

    def hash(self) -> bytes:
        """SHA-256 of the canonical encoding: the chain's identity beside its id."""
        return sha256(self.encode())

    @classmethod
    def decode(cls, data: bytes) -> Genesis:
        """A genesis from its canonical encoding (``InvalidGenesisError`` if it is not one)."""
        try:
            return GENESIS_CODEC.decode(data)
        except DecodeError as exc:
            raise InvalidGenesisError(f"not a canonical genesis document: {exc}") from exc


def _check_validators(validators: object, params: ConsensusParams) -> None:
    if type(validators) is not tuple or not all(isinstance(v, Validator) for v in validators):
        raise InvalidGenesisError("validators must be a tuple of Validator")
    try:
        ValidatorSet(validators)
    except InvalidValidatorSetError as exc:
        raise InvalidGenesisError(f"invalid genesis validators: {exc}") from exc
    certificate_bytes = len(validators) * COMMIT_SIGNATURE_BYTES
    if params.max_block_bytes < MAX_TX_BYTES + certificate_bytes + HEADER_OVERHEAD_BYTES:
        raise InvalidGenesisError(
            f"max_block_bytes {params.max_block_bytes} cannot hold a commit certificate of "
            f"{len(validators)} validators and one transaction"
        )


def _check_accounts(accounts: object) -> None:
    if type(accounts) is not tuple or not all(isinstance(a, GenesisAccount) for a in accounts):
        raise InvalidGenesisError("accounts must be a tuple of GenesisAccount")
    if len(accounts) > MAX_GENESIS_ACCOUNTS:
        raise InvalidGenesisError(f"at most {MAX_GENESIS_ACCOUNTS} genesis accounts")
    keys = [account.public_key for account in accounts]
    if any(type(key) is not bytes or len(key) != PUBLIC_KEY_BYTES for key in keys):
        raise InvalidGenesisError(f"account keys are {PUBLIC_KEY_BYTES}-byte public keys")
    if len(set(keys)) != len(keys):
        raise InvalidGenesisError("a genesis account is listed twice")


# The types check their fields across each other on construction: a decoded document that
# breaks such a rule is a ``SchemaError`` like any other bad input.
_PARAMS_CODEC = StructCodec(
    ConsensusParams,
    [(item.name, UInt()) for item in fields(ConsensusParams)],
    256,
    invariant_errors=(InvalidGenesisError,),
)
_ACCOUNT_CODEC = StructCodec(
    GenesisAccount,
    [("public_key", Bytes.exactly(PUBLIC_KEY_BYTES)), ("role", EnumOf(Role))],
    64,
)
_MODULE_NAME = Text(32)
_MODULE_STATE = Bytes(MAX_GENESIS_BYTES, min_len=1)


class _ModuleState(Kind):
    """One ``(module name, canonical bytes)`` pair of ``Genesis.app_state`` (an array of two;
    ``Genesis`` checks the bytes themselves)."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__("a (module name, bytes) pair")

    def accepts(self, value: object) -> bool:
        return (
            type(value) is tuple
            and len(value) == 2
            and _MODULE_NAME.accepts(value[0])
            and _MODULE_STATE.accepts(value[1])
        )

    def to_wire(self, value: object, path: str | None) -> object:
        return list(cast(tuple[str, bytes], super().to_wire(value, path)))

    def from_wire(self, raw: object, path: str | None) -> object:
        if type(raw) is not list:
            raise SchemaError(f"{path}: expected {self.description}")
        return super().from_wire(tuple(raw), path)


GENESIS_CODEC: Final = StructCodec(
    Genesis,
    [
        ("chain_id", Text(64, CHAIN_ID_PATTERN)),
        ("genesis_time_ms", UInt()),
        ("validators", ArrayOf(Nested(VALIDATOR_CODEC), MAX_VALIDATORS)),
        ("accounts", ArrayOf(Nested(_ACCOUNT_CODEC), MAX_GENESIS_ACCOUNTS)),
        ("params", Nested(_PARAMS_CODEC)),
        ("app_state", ArrayOf(_ModuleState(), MAX_APP_STATE_MODULES)),
    ],
    MAX_GENESIS_BYTES,
    invariant_errors=(InvalidGenesisError,),
)


__all__ = [
    "GENESIS_CODEC",
    "GENESIS_HASH_KEY",
    "GENESIS_MODULE",
    "ConsensusParams",
    "Genesis",
    "GenesisModule",
]
