"""The application: a registry of modules over a versioned, Merkle-rooted state.

Contract for the node core that drives it:

- ``init_chain(genesis_time_ms)`` once; it commits height 0 and returns the genesis state
  root (the ``app_state_root`` of the block at height 1).
- ``check_tx(tx)`` for mempool admission and re-checks, after ``verify_transaction`` checked
  the signature: chain id, sender account, nonce (>= the committed one: pending predecessors
  may exist), known kind, the module's own checks; read-only, returns a ``CheckTxResult``.
- ``finalize_block(block)`` for each decided block, in height order. It refuses
  (``InvalidBlockError``, nothing changed) a block whose chain id, height, time, tx root,
  evidence or ``app_state_root`` does not follow from the last finalized block (evidence
  signatures and age are the node's to verify first: ``node.app.evidence``), then: records
  the block's evidence (``validator.equivocated`` events), runs due work
  (the block-time hook, at most ``max_due_tasks_per_block`` tasks whose time has come, in
  time order), then every transaction in order (decode, chain id, signature unless its hash
  is in ``preverified_tx_hashes``, account, nonce, module), commits the state as the block's
  height and returns a ``BlockResult``: receipts, block events, the new state root (the next
  block's ``app_state_root``), the validator-set updates (``consensus.ValidatorUpdate``,
  effective at ``node.app.validators.effective_height(height)``: pass them to
  ``ValidatorSetSchedule.commit``) and the state changes to persist.
- ``query(key, height)`` returns the value with a proof against that height's state root;
  ``committed_evidence(evidence)`` the record of an equivocation the chain committed.
- ``state_entries()`` lists every committed entry of the last finalized height: what a node
  persists after ``init_chain`` (later heights report their own ``state_changes``) and hands
  back to ``restore`` on a restart.

Deterministic: the result is a function of the previous state and the block alone.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final, cast

from consensus.evidence import DuplicateVoteEvidence
from consensus.validator_set import ValidatorUpdate
from crypto_core import hash_leaf, merkle_root
from node.app.blocks import validate_body
from node.app.due import DUE_PREFIX, due_ms_of, parse_task
from node.app.errors import ModuleContractError, TxFailed
from node.app.evidence import (
    EvidenceRecord,
    check_block_evidence,
    read_record,
    record_block_evidence,
)
from node.app.module import (
    Authenticator,
    BlockInfo,
    CheckContext,
    ExecContext,
    Module,
    check_module_name,
)
from node.app.state import DEFAULT_RETENTION_HEIGHTS, VersionedState
from node.app.validators import effective_height
from node.app.view import ExecutionLimits, GasMeter, GasSchedule, MeteredReader, WriteBuffer
from node.codec import MAX_LOG_CHARS, RECEIPT_CODEC, TX_CODEC, block_id, tx_hash, tx_signature_ok
from node.errors import DecodeError, InvalidBlockError
from node.types import (
    PUBLIC_KEY_BYTES,
    Block,
    Event,
    EventAttribute,
    ResultCode,
    StateProof,
    Transaction,
    TxReceipt,
)

DecodedTxLookup = Callable[[bytes], "Transaction | None"]
"""The decoded transaction of a transaction hash, where a caller holds it (else None)."""

GENESIS_HEIGHT: Final = 0
# Genesis writes are the operator's configuration, not a user's transaction: no gas limit.
_GENESIS_LIMITS: Final = ExecutionLimits(
    max_gas_per_tx=1 << 62, max_bytes_written_per_tx=1 << 40, max_events_per_tx=1 << 20
)


@dataclass(frozen=True, slots=True)
class AppConfig:
    """Settings every node of a chain must share (they change results)."""

    chain_id: str
    limits: ExecutionLimits = field(default_factory=ExecutionLimits)
    gas: GasSchedule = field(default_factory=GasSchedule)
    state_retention_heights: int = DEFAULT_RETENTION_HEIGHTS


@dataclass(frozen=True, slots=True)
class CheckTxResult:
    """Whether a transaction may enter the mempool (``code`` OK) and, if not, why."""

    code: ResultCode
    log: str
    gas_used: int

    @property
    def ok(self) -> bool:
        """True when admitted."""
        return self.code is ResultCode.OK


@dataclass(frozen=True, slots=True)
class BlockResult:
    """What executing one block produced (see the module docstring)."""

    height: int
    block_id: bytes
    state_root: bytes
    receipts: tuple[TxReceipt, ...]
    block_events: tuple[Event, ...]
    validator_updates: tuple[ValidatorUpdate, ...]
    validator_updates_effective_height: int
    state_changes: tuple[tuple[bytes, bytes | None], ...]


def receipts_root(receipts: Sequence[TxReceipt]) -> bytes:
    """RFC 9162 root over ``hash_leaf(encode(receipt))``: a commitment to a block's results."""
    return cast(bytes, merkle_root([hash_leaf(RECEIPT_CODEC.encode(r)) for r in receipts]))


class Application:
    """The deterministic state machine of a chain (single-threaded; see module docstring)."""

    def __init__(
        self, config: AppConfig, modules: Sequence[Module], authenticator: Authenticator
    ) -> None:
        self.config = config
        self._modules: dict[str, Module] = {}
        for module in modules:
            name = check_module_name(module.name)
            if name in self._modules:
                raise ValueError(f"two modules named {name!r}")
            self._modules[name] = module
        self._auth = authenticator
        self._state = VersionedState(config.state_retention_heights)
        self._last = BlockInfo(config.chain_id, -1, 0, bytes(PUBLIC_KEY_BYTES))

    # -- lifecycle --------------------------------------------------------------------------

    def init_chain(self, genesis_time_ms: int) -> bytes:
        """Write every module's genesis state as height 0; returns the state root."""
        if self._state.height >= 0:
            raise RuntimeError("the chain is already initialised")
        info = BlockInfo(self.config.chain_id, GENESIS_HEIGHT, genesis_time_ms, self._last.proposer)
        buffer = WriteBuffer(self._state)
        run = _BlockRun(self, info, frozenset(), buffer)
        for module in self._modules.values():
            ctx = run.context(module.name, buffer, GasMeter(1 << 62), limits=_GENESIS_LIMITS)
            module.init_genesis(ctx)
        root = self._state.commit(GENESIS_HEIGHT, buffer.changes())
        self._last = info
        return root

    def restore(
        self, *, height: int, last_block_time_ms: int, entries: Iterable[tuple[bytes, bytes]]
    ) -> bytes:
        """Resume from persisted state entries of ``height``; returns its state root."""
        if self._state.height >= 0:
            raise RuntimeError("the chain is already initialised")
        self._state = VersionedState.from_entries(
            height, entries, self.config.state_retention_heights
        )
        self._last = BlockInfo(
            self.config.chain_id, height, last_block_time_ms, self._last.proposer
        )
        return self._state.root

    # -- queries ----------------------------------------------------------------------------

    @property
    def height(self) -> int:
        """The last finalized height (0 after genesis, -1 before)."""
        return self._state.height

    @property
    def state_root(self) -> bytes:
        """The state root of the last finalized height."""
        return self._state.root

    @property
    def last_block_time_ms(self) -> int:
        """The time of the last finalized block (the genesis time after ``init_chain``)."""
        return self._last.time_ms

    def module(self, name: str) -> Module:
        """The registered module ``name`` (``KeyError`` otherwise)."""
        return self._modules[name]

    def next_nonce(self, sender: bytes) -> int:
        """The committed next nonce of ``sender`` (a ``node.mempool.NonceLookup``)."""
        return self._auth.next_nonce(self._state, sender)

    def get(self, key: bytes) -> bytes | None:
        """A committed value, without proof."""
        return self._state.get(key)

    def state_entries(self) -> list[tuple[bytes, bytes]]:
        """Every committed ``(key, value)`` of the last finalized height, in key order: a
        snapshot (later commits do not change it); empty before ``init_chain``."""
        return list(self._state.iterate(b""))

    def committed_evidence(self, evidence: DuplicateVoteEvidence) -> EvidenceRecord | None:
        """The committed record of ``evidence``'s step (validator, height, round, vote
        type), whichever pair of conflicting votes it holds; None if not committed."""
        return read_record(self._state, evidence)

    def query(self, key: bytes, height: int | None = None) -> StateProof:
        """``key``'s value at ``height`` (default: latest) with a proof against that
        height's state root; ``KeyError`` for a height no longer (or not yet) retained."""
        return self._state.prove(key, height)

    # -- transactions -----------------------------------------------------------------------

    def check_tx(self, tx: Transaction) -> CheckTxResult:
        """Read-only admission check against the latest committed state."""
        self._require_initialised()
        meter = GasMeter(self.config.limits.max_gas_per_tx)
        try:
            if tx.chain_id != self.config.chain_id:
                raise TxFailed(ResultCode.WRONG_CHAIN, f"chain {tx.chain_id!r}")
            self._auth.authenticate(self._state, tx.sender)
            expected = self._auth.next_nonce(self._state, tx.sender)
            if tx.nonce < expected:
                raise TxFailed(ResultCode.BAD_NONCE, f"nonce {tx.nonce} < next {expected}")
            module = self.module_for(tx)
            view = MeteredReader(self._state, meter, self.config.gas)
            module.check_tx(CheckContext(module.name, self._last, view, tx.sender), tx)
        except TxFailed as failure:
            return CheckTxResult(failure.code, _log(failure.message), meter.used)
        return CheckTxResult(ResultCode.OK, "", meter.used)

    def module_for(self, tx: Transaction) -> Module:
        """The module handling ``tx.kind`` (``TxFailed(UNKNOWN_KIND)`` if none)."""
        module = self._modules.get(tx.module)
        if module is None or tx.action not in module.actions:
            raise TxFailed(ResultCode.UNKNOWN_KIND, f"unknown kind {tx.kind!r}")
        return module

    # -- blocks -----------------------------------------------------------------------------

    def finalize_block(
        self,
        block: Block,
        *,
        preverified_tx_hashes: Container[bytes] = frozenset(),
        size_bytes: int | None = None,
        decoded_tx: DecodedTxLookup | None = None,
    ) -> BlockResult:
        """Execute and commit ``block`` (see the module docstring). ``size_bytes``: the size
        of the block's canonical encoding, if the caller has it (saves encoding it again);
        ``decoded_tx``: the decoded transaction of a hash, where the caller holds it (its
        mempool), so that transaction is not decoded again."""
        self._check_block(block, size_bytes)
        header = block.header
        info = BlockInfo(self.config.chain_id, header.height, header.time_ms, header.proposer)
        run = _BlockRun(self, info, preverified_tx_hashes, WriteBuffer(self._state), decoded_tx)
        block_events = record_block_evidence(run.buffer, block) + run.run_due_tasks()
        receipts = tuple(run.deliver(raw) for raw in block.txs)
        changes = run.buffer.changes()
        assert len(receipts) == len(block.txs), "one receipt per transaction"
        root = self._state.commit(header.height, changes)
        self._last = info
        return BlockResult(
            height=header.height,
            block_id=block_id(header),
            state_root=root,
            receipts=receipts,
            block_events=block_events,
            validator_updates=tuple(run.updates[k] for k in sorted(run.updates)),
            validator_updates_effective_height=effective_height(header.height),
            state_changes=tuple(sorted(changes.items())),
        )

    def _check_block(self, block: Block, size_bytes: int | None) -> None:
        self._require_initialised()
        header = block.header
        if header.chain_id != self.config.chain_id:
            raise InvalidBlockError(f"chain {header.chain_id!r}")
        if header.height != self._state.height + 1:
            raise InvalidBlockError(f"height {header.height} after {self._state.height}")
        if header.time_ms <= self._last.time_ms:
            raise InvalidBlockError(f"time {header.time_ms} not after {self._last.time_ms}")
        if header.app_state_root != self._state.root:
            raise InvalidBlockError("app_state_root is not the state root of the parent")
        validate_body(block, size_bytes=size_bytes)
        check_block_evidence(block, self.config.chain_id, self._state)

    def _require_initialised(self) -> None:
        if self._state.height < 0:
            raise RuntimeError("init_chain (or restore) first")


class _BlockRun:
    """The execution of one block: its write buffer, task sequence and validator updates."""

    def __init__(
        self,
        app: Application,
        info: BlockInfo,
        preverified: Container[bytes],
        buffer: WriteBuffer,
        decoded_tx: DecodedTxLookup | None = None,
    ) -> None:
        self.app = app
        self.info = info
        self.preverified = preverified
        self.decoded_tx = decoded_tx
        self.buffer = buffer
        self.updates: dict[bytes, ValidatorUpdate] = {}
        self._sequence = 0
        self._limits = app.config.limits
        self._gas = app.config.gas

    def next_sequence(self) -> int:
        self._sequence += 1
        return self._sequence

    def context(
        self,
        module: str,
        buffer: WriteBuffer,
        meter: GasMeter,
        *,
        sender: bytes | None = None,
        tx_hash_: bytes | None = None,
        limits: ExecutionLimits | None = None,
    ) -> ExecContext:
        return ExecContext(
            module=module,
            block=self.info,
            buffer=buffer,
            meter=meter,
            gas=self._gas,
            limits=limits or self._limits,
            next_task_sequence=self.next_sequence,
            sender=sender,
            tx_hash=tx_hash_,
            invoke=self.invoke,
        )

    def invoke(self, ctx: ExecContext, action: str, payload: bytes) -> bytes:
        """A module call (``ExecContext.call``): ``on_call`` of the module ``ctx`` is for."""
        module = self.app._modules.get(ctx.module)
        if module is None:
            raise TxFailed(ResultCode.UNKNOWN_KIND, f"no module {ctx.module!r} to call")
        result = module.on_call(ctx, action, payload)
        if type(result) is not bytes:
            raise ModuleContractError(f"{ctx.module}.on_call returned {type(result).__name__}")
        return result

    def run_due_tasks(self) -> tuple[Event, ...]:
        """The block-time hook: due tasks in time order, at most the per-block limit."""
        due: list[tuple[bytes, bytes]] = []
        for key, value in self.app._state.iterate(DUE_PREFIX):
            if (
                due_ms_of(key) > self.info.time_ms
                or len(due) >= self._limits.max_due_tasks_per_block
            ):
                break
            due.append((key, value))
        events: list[Event] = []
        for key, value in due:
            events += self._run_task(key, value)
        return tuple(events)

    def _run_task(self, key: bytes, value: bytes) -> list[Event]:
        task = parse_task(key, value)  # framework-written entries: corruption is a bug
        self.buffer.delete(key)  # a task runs once, whatever its outcome
        module = self.app._modules.get(task.module)
        task_buffer = WriteBuffer(self.buffer)
        ctx = self.context(task.module, task_buffer, GasMeter(self._limits.max_gas_per_due_task))
        try:
            if module is None:
                raise TxFailed(ResultCode.UNKNOWN_KIND, f"no module {task.module!r}")
            module.on_due(ctx, task)
        except TxFailed as failure:
            return [_task_failed_event(key, task.module, task.kind, failure)]
        task_buffer.merge_into(self.buffer)
        self.updates.update(ctx.validator_updates)
        return ctx.events

    def deliver(self, raw: bytes) -> TxReceipt:
        """One transaction of the block: authenticate, consume the nonce, execute."""
        hash_ = tx_hash(raw)
        tx = None if self.decoded_tx is None else self.decoded_tx(hash_)
        if tx is None:
            try:
                tx = TX_CODEC.decode(raw)
            except DecodeError as exc:
                return TxReceipt(hash_, ResultCode.MALFORMED, _log(str(exc)), 0, ())
        try:
            self._authenticate(tx, hash_)
        except TxFailed as failure:
            return TxReceipt(hash_, failure.code, _log(failure.message), 0, ())
        self.app._auth.consume_nonce(self.buffer, tx.sender)
        return self._execute(tx, hash_, len(raw))

    def _authenticate(self, tx: Transaction, hash_: bytes) -> None:
        if tx.chain_id != self.info.chain_id:
            raise TxFailed(ResultCode.WRONG_CHAIN, f"chain {tx.chain_id!r}")
        if hash_ not in self.preverified and not tx_signature_ok(tx):
            raise TxFailed(ResultCode.BAD_SIGNATURE, "signature does not verify")
        auth = self.app._auth
        auth.authenticate(self.buffer, tx.sender)
        expected = auth.next_nonce(self.buffer, tx.sender)
        if tx.nonce != expected:
            raise TxFailed(ResultCode.BAD_NONCE, f"nonce {tx.nonce}, expected {expected}")

    def _execute(self, tx: Transaction, hash_: bytes, size: int) -> TxReceipt:
        tx_buffer = WriteBuffer(self.buffer)
        meter = GasMeter(self._limits.max_gas_per_tx)
        try:
            meter.consume(self._gas.tx_base + self._gas.tx_per_byte * size, "transaction")
            module = self.app.module_for(tx)
            ctx = self.context(module.name, tx_buffer, meter, sender=tx.sender, tx_hash_=hash_)
            module.deliver_tx(ctx, tx)
        except TxFailed as failure:
            return TxReceipt(hash_, failure.code, _log(failure.message), meter.used, ())
        tx_buffer.merge_into(self.buffer)
        self.updates.update(ctx.validator_updates)
        return TxReceipt(hash_, ResultCode.OK, "", meter.used, tuple(ctx.events))


def _task_failed_event(task_id: bytes, module: str, kind: str, failure: TxFailed) -> Event:
    attributes = {
        "code": failure.code.name.lower(),
        "kind": kind,
        "log": _log(failure.message),
        "module": module,
        "task": task_id.hex(),
    }
    return Event(
        "system.due_task_failed",
        tuple(EventAttribute(k, v) for k, v in sorted(attributes.items())),
    )


def _log(message: str) -> str:
    return message[:MAX_LOG_CHARS]
