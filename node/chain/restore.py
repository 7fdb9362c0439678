"""Opening a node's chain from its ``Storage``: a new chain, or the state of the last run.

``open_chain`` returns everything ``NodeCore`` starts from: the application at the last
committed height (its state read back and checked against the stored root), the validator
schedule (with the history of past sets evidence is verified against), the last committed
block, and consensus at the next height — replayed from that height's durable log
(``ConsensusCore.replay``) with the last signing record, so a restarted validator is exactly
where its durable log says it was and never signs anything conflicting — holding the pending
equivocation evidence again.
The mempool is not restored: pending transactions are resubmitted by their clients.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from consensus import (
    ConsensusCore,
    Effect,
    Input,
    ProposalReceived,
    StartHeight,
    VoteReceived,
)
from node.app.application import Application
from node.chain import store
from node.chain.config import NodeConfig
from node.chain.errors import InvalidGenesisError, StorageMismatchError
from node.chain.evidence import PendingEvidenceLog
from node.chain.genesis import GENESIS_HASH_KEY, Genesis
from node.chain.schedule import ValidatorSchedule
from node.chain.wal import (
    ConsensusLog,
    LoggedStart,
    decode_record,
    load_log,
    load_signing_record,
    stale_log_ops,
)
from node.ports import Storage
from node.types import CommittedBlock, Proposal, PublicKey, Vote


@dataclass(frozen=True, slots=True)
class OpenedChain:
    """What a node resumes from (see the module docstring)."""

    schedule: ValidatorSchedule
    last_block: CommittedBlock | None
    consensus: ConsensusCore
    log: ConsensusLog
    replayed_effects: list[Effect]
    """Effects of the replayed log (without ``Persist``): the shell carries them out again."""
    pending_evidence: PendingEvidenceLog = field(default_factory=PendingEvidenceLog)
    """The stored copy of the evidence now pending in ``consensus.evidence``."""
    logged_messages: tuple[Vote | Proposal, ...] = ()
    """The signed votes and proposals of the durable log of the current height, in log
    order: what the node held before the restart, to re-send and relay again."""


def open_chain(
    storage: Storage,
    genesis: Genesis,
    app: Application,
    config: NodeConfig,
    *,
    own_key: PublicKey | None,
) -> OpenedChain:
    """Initialise or restore ``app`` from ``storage``; see the module docstring.

    Raises ``StorageMismatchError`` for another chain's (or a corrupt) store and
    ``InvalidGenesisError`` if ``app`` lacks the genesis module.
    """
    meta = store.read_meta(storage)
    if meta is None:
        schedule = _initialise(storage, genesis, app)
        last_block = None
    else:
        if meta.genesis_hash != genesis.hash():
            raise StorageMismatchError("the storage belongs to another genesis")
        last_block = _restore_app(storage, genesis, app, meta)
        max_age = genesis.params.evidence_max_age_heights
        schedule = ValidatorSchedule.restore(storage, meta.height, max_age)
    height = 0 if last_block is None else last_block.block.header.height
    consensus, log, inputs, effects = _restore_consensus(
        storage, genesis, config, schedule, height=height, own_key=own_key
    )
    pending, _ = PendingEvidenceLog.load(storage, consensus.evidence)
    logged = tuple(_signed_messages(inputs))
    return OpenedChain(schedule, last_block, consensus, log, effects, pending, logged)


def _initialise(storage: Storage, genesis: Genesis, app: Application) -> ValidatorSchedule:
    """A new chain: the genesis state and schedule, durable in one synced batch."""
    root = app.init_chain(genesis.genesis_time_ms)
    _require_genesis_module(app, genesis)
    schedule, schedule_ops = ValidatorSchedule.at_genesis(
        genesis.validator_set(), genesis.params.evidence_max_age_heights
    )
    ops = store.genesis_ops(genesis.hash(), app.state_entries(), root) + schedule_ops
    storage.write_batch(ops, sync=True)
    return schedule


def _restore_app(
    storage: Storage, genesis: Genesis, app: Application, meta: store.StoredMeta
) -> CommittedBlock | None:
    """Restore the application at the stored height; returns the last committed block."""
    last_block: CommittedBlock | None = None
    last_time_ms = genesis.genesis_time_ms
    if meta.height > 0:
        data = store.read_block(storage, meta.height)
        if data is None:
            raise StorageMismatchError(f"the committed block {meta.height} is missing")
        last_block = store.decode_stored_block(data)
        last_time_ms = last_block.block.header.time_ms
    root = app.restore(
        height=meta.height, last_block_time_ms=last_time_ms, entries=store.app_entries(storage)
    )
    if root != meta.app_state_root:
        raise StorageMismatchError("the stored state does not match its stored root")
    _require_genesis_module(app, genesis)
    return last_block


def _require_genesis_module(app: Application, genesis: Genesis) -> None:
    if app.get(GENESIS_HASH_KEY) != genesis.hash():
        raise InvalidGenesisError("the application must include node.chain.GenesisModule")


def _restore_consensus(
    storage: Storage,
    genesis: Genesis,
    config: NodeConfig,
    schedule: ValidatorSchedule,
    *,
    height: int,
    own_key: PublicKey | None,
) -> tuple[ConsensusCore, ConsensusLog, list[Input], list[Effect]]:
    """Consensus at ``height + 1``, replayed from its durable log (fresh if there is none),
    with the logged inputs it was replayed from."""
    next_height = height + 1
    stale = stale_log_ops(storage, next_height)
    if stale:
        storage.write_batch(stale, sync=True)
    records = load_log(storage, next_height)
    log = ConsensusLog(
        storage,
        next_height,
        config.max_wal_bytes_per_height,
        records,
        enabled=own_key is not None,
    )
    timeouts = genesis.params.timeouts()
    last_signed = load_signing_record(storage)
    if not records:
        fresh = ConsensusCore(genesis.chain_id, own_key, timeouts=timeouts, last_signed=last_signed)
        return fresh, log, [], []
    inputs = [_logged_input(decode_record(record), schedule) for record in records]
    if not isinstance(inputs[0], StartHeight) or inputs[0].height != next_height:
        raise StorageMismatchError(f"the consensus log of height {next_height} does not start it")
    consensus, effects = ConsensusCore.replay(
        genesis.chain_id, own_key, inputs, timeouts=timeouts, last_signed=last_signed
    )
    return consensus, log, inputs, effects


def _signed_messages(inputs: list[Input]) -> Iterator[Vote | Proposal]:
    """The votes and proposals among logged ``inputs`` (each was verified when logged)."""
    for event in inputs:
        if isinstance(event, VoteReceived):
            yield event.vote
        elif isinstance(event, ProposalReceived):
            yield event.proposal


def _logged_input(record: LoggedStart | Input, schedule: ValidatorSchedule) -> Input:
    if not isinstance(record, LoggedStart):
        return record
    validator_set = schedule.set_at(record.height)
    if validator_set is None:
        raise StorageMismatchError(f"no validator set for logged height {record.height}")
    return StartHeight(record.height, validator_set)
