"""The application framework: deterministic modules over a versioned, provable state.

- ``Application`` (``application.py``): module registry, ``check_tx``, ``finalize_block``
  (block-time hook, then transactions) -> ``BlockResult``, ``query`` with proofs.
- ``Module``, ``ExecContext``, ``CheckContext`` (``module.py``): the interface of a module
  and what it may do (metered reads and writes, events, due work, validator updates).
- ``VersionedState``, ``verify_state_proof`` (``state.py``): the Merkle-rooted state.
- ``WriteBuffer``, ``MeteredView``, ``GasSchedule``, ``ExecutionLimits`` (``view.py``).
- ``build_block``, ``assemble_block``, ``encode_block``, ``validate_header``,
  ``validate_body``, ``propose_time_ms`` (``blocks.py``): chain rules of headers and bodies.
- ``EvidenceRecord``, ``evidence_key``, ``EQUIVOCATED_EVENT`` (``evidence.py``): equivocation
  evidence committed by blocks, recorded in the state with a ``validator.equivocated`` event.
- ``VALIDATOR_UPDATE_DELAY_HEIGHTS``, ``effective_height`` (``validators.py``): when the
  validator-set updates of a block take effect (consensus' ``ValidatorSetSchedule`` applies
  them).
- Modules shipped here: ``AccountsModule`` (identities, roles, nonces; the framework's
  ``Authenticator``) and ``KvModule`` (per-account key-value store, for tests).

A typical node wires it as::

    accounts = AccountsModule(genesis_accounts)
    app = Application(AppConfig(chain_id), [accounts, KvModule()], authenticator=accounts)
    genesis_root = app.init_chain(genesis_time_ms)
"""

from node.app.accounts import AccountsModule, GenesisAccount, Role
from node.app.application import (
    AppConfig,
    Application,
    BlockResult,
    CheckTxResult,
    receipts_root,
)
from node.app.blocks import (
    DEFAULT_MAX_FUTURE_DRIFT_MS,
    assemble_block,
    build_block,
    encode_block,
    propose_time_ms,
    validate_body,
    validate_header,
)
from node.app.due import DueTask
from node.app.errors import ModuleContractError, OutOfGas, TxFailed
from node.app.evidence import EQUIVOCATED_EVENT, EvidenceRecord, evidence_key
from node.app.kv import KvModule
from node.app.module import Authenticator, BlockInfo, CheckContext, ExecContext, Module
from node.app.state import VersionedState, state_leaf_hash, verify_state_proof
from node.app.validators import VALIDATOR_UPDATE_DELAY_HEIGHTS, effective_height
from node.app.view import ExecutionLimits, GasMeter, GasSchedule, MeteredView, WriteBuffer

__all__ = [
    "DEFAULT_MAX_FUTURE_DRIFT_MS",
    "EQUIVOCATED_EVENT",
    "VALIDATOR_UPDATE_DELAY_HEIGHTS",
    "AccountsModule",
    "AppConfig",
    "Application",
    "Authenticator",
    "BlockInfo",
    "BlockResult",
    "CheckContext",
    "CheckTxResult",
    "DueTask",
    "EvidenceRecord",
    "ExecContext",
    "ExecutionLimits",
    "GasMeter",
    "GasSchedule",
    "GenesisAccount",
    "KvModule",
    "MeteredView",
    "Module",
    "ModuleContractError",
    "OutOfGas",
    "Role",
    "TxFailed",
    "VersionedState",
    "WriteBuffer",
    "assemble_block",
    "build_block",
    "effective_height",
    "encode_block",
    "evidence_key",
    "propose_time_ms",
    "receipts_root",
    "state_leaf_hash",
    "validate_body",
    "validate_header",
    "verify_state_proof",
]
