"""The interface every application module implements, and what it is given to work with.

A module owns a namespace (``b"<name>/"``) of the state and the transaction kinds
``"<name>.<action>"`` for ``action in actions``. The framework calls:

- ``init_genesis(ctx)`` once, when the chain starts (unmetered, no sender);
- ``check_tx(ctx, tx)`` for mempool admission: cheap, read-only, against the latest
  committed state; raise ``TxFailed`` to refuse;
- ``deliver_tx(ctx, tx)`` for each authenticated transaction of a block; read and write
  through ``ctx.view``, emit events, schedule due work; raise ``TxFailed`` to fail (all of
  the transaction's writes, events and schedules are then dropped);
- ``on_due(ctx, task)`` at the start of the first block whose time reaches a task it
  scheduled (``ctx.sender`` is ``None``);
- ``on_call(ctx, action, payload)`` when another module calls it (``ctx.call``): the one way
  a module changes another module's namespace, through an interface that module chose
  (``ctx.caller`` names the calling module; ``ctx.sender`` is the transaction's sender);
- ``query_key(path)`` and ``render(key, value)`` for clients (``GET /state/<module>/<path>``):
  the state key a readable path names, and a stored value as JSON.

Everything a module does must be a deterministic function of the state, the transaction and
``ctx.block`` (block height and agreed block time): no clock, no randomness, no floats, no
iteration over sets or unordered data whose order could leak into state or events.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol, TypeAlias, TypeVar

from consensus.limits import MAX_TOTAL_VOTING_POWER
from consensus.validator_set import ValidatorUpdate
from node.app.due import (
    DUE_RECORD_CODEC,
    MAX_DUE_PAYLOAD_BYTES,
    NAME_PATTERN,
    DueRecord,
    DueTask,
    due_key,
    is_due_key,
)
from node.app.errors import ModuleContractError, TxFailed
from node.app.view import (
    ExecutionLimits,
    GasMeter,
    GasSchedule,
    MeteredReader,
    MeteredView,
    WriteBuffer,
)
from node.codec import (
    ATTRIBUTE_KEY_PATTERN,
    MAX_ATTRIBUTE_VALUE_CHARS,
    MAX_EVENT_ATTRIBUTES,
    StructCodec,
)
from node.errors import DecodeError
from node.types import PUBLIC_KEY_BYTES, Event, EventAttribute, ResultCode, Transaction

T = TypeVar("T")
JsonValue: TypeAlias = bool | int | str | list["JsonValue"] | dict[str, "JsonValue"] | None
"""A value that ``json.dumps`` writes as is (no floats: module state is exact)."""
MAX_CALL_DEPTH: Final = 4
"""How deep module calls may nest (a calls b calls c ...): a bound, not a feature."""

MODULE_NAME_PATTERN: Final = re.compile(r"[a-z][a-z0-9_]{0,31}", re.ASCII)
# ``system`` and ``validator`` name the framework's own events (``system.due_task_failed``,
# ``validator.equivocated``): no module may emit events that pass for them.
RESERVED_MODULE_NAMES: Final = frozenset({"system", "validator"})
# One validator's power can be at most the whole set's limit (consensus checks the total).
MAX_VOTING_POWER: Final = MAX_TOTAL_VOTING_POWER

AttributeValue = str | int | bytes


@dataclass(frozen=True, slots=True)
class BlockInfo:
    """The block being executed (for ``check_tx``: the latest committed block)."""

    chain_id: str
    height: int
    time_ms: int
    proposer: bytes


def decode_payload(codec: StructCodec[T], payload: bytes) -> T:
    """A transaction payload decoded with ``codec``; ``TxFailed(INVALID_PAYLOAD)`` if bad."""
    try:
        return codec.decode(payload)
    except DecodeError as exc:
        raise TxFailed(ResultCode.INVALID_PAYLOAD, str(exc)) from exc


class CheckContext:
    """What ``check_tx`` gets: read-only, metered access to the latest committed state."""

    def __init__(self, module: str, block: BlockInfo, view: MeteredReader, sender: bytes) -> None:
        self.module = module
        self.block = block
        self.view = view
        self.sender = sender


class ExecContext:
    """What ``deliver_tx``, ``on_due`` and ``init_genesis`` get.

    ``view`` reads anywhere and writes in the module's namespace; ``emit`` records an event
    ``"<module>.<name>"``; ``schedule``/``cancel`` manage the module's due work;
    ``set_validator_power`` requests a validator-set change (see ``node.app.validators``).
    """

    def __init__(
        self,
        *,
        module: str,
        block: BlockInfo,
        buffer: WriteBuffer,
        meter: GasMeter,
        gas: GasSchedule,
        limits: ExecutionLimits,
        next_task_sequence: Callable[[], int],
        sender: bytes | None = None,
        tx_hash: bytes | None = None,
        invoke: ModuleInvoker | None = None,
        caller: str | None = None,
        depth: int = 0,
    ) -> None:
        self.module = module
        self.caller = caller
        self.block = block
        self.sender = sender
        self.tx_hash = tx_hash
        self.view = MeteredView(
            buffer, meter, gas, module.encode() + b"/", limits.max_bytes_written_per_tx
        )
        self.events: list[Event] = []
        self.validator_updates: dict[bytes, ValidatorUpdate] = {}
        self._buffer = buffer
        self._meter = meter
        self._gas = gas
        self._limits = limits
        self._next_task_sequence = next_task_sequence
        self._schedules = 0
        self._invoke = invoke
        self._depth = depth

    def require_sender(self) -> bytes:
        """The transaction's sender (a bug to ask outside a transaction)."""
        if self.sender is None:
            raise ModuleContractError("no sender outside a transaction")
        return self.sender

    def emit(self, name: str, **attributes: AttributeValue) -> None:
        """Record the event ``"<module>.<name>"``; bytes become hex, ints decimal text."""
        if name not in _CHECKED_NAMES:
            if type(name) is not str or NAME_PATTERN.fullmatch(name) is None:
                raise ModuleContractError(f"bad event name {name!r}")
            if len(_CHECKED_NAMES) < _MAX_CHECKED_NAMES:
                _CHECKED_NAMES.add(name)
        if len(self.events) >= self._limits.max_events_per_tx:
            raise TxFailed(ResultCode.LIMIT_EXCEEDED, "too many events")
        if len(attributes) > MAX_EVENT_ATTRIBUTES:
            raise ModuleContractError(f"more than {MAX_EVENT_ATTRIBUTES} event attributes")
        pairs: list[EventAttribute] = []
        size = len(name)
        for key in sorted(attributes):  # one loop: this runs for every event of every tx
            text = _attribute_text(key, attributes[key])
            pairs.append(EventAttribute(key, text))
            size += len(key) + len(text)
        self._meter.consume(self._gas.event_base + self._gas.event_per_byte * size, "event")
        self.events.append(Event(f"{self.module}.{name}", tuple(pairs)))

    def schedule(self, due_ms: int, kind: str, payload: bytes = b"") -> bytes:
        """Run ``on_due`` of this module with a ``DueTask(kind, payload)`` at the first block
        whose time is >= ``due_ms``; returns the task id (keep it to ``cancel``)."""
        if NAME_PATTERN.fullmatch(kind) is None:
            raise ModuleContractError(f"bad task kind {kind!r}")
        if len(payload) > MAX_DUE_PAYLOAD_BYTES:
            raise ModuleContractError(f"task payload over {MAX_DUE_PAYLOAD_BYTES} bytes")
        horizon = self.block.time_ms + self._limits.max_schedule_ahead_ms
        if type(due_ms) is not int or not 0 <= due_ms <= horizon:
            raise TxFailed(ResultCode.LIMIT_EXCEEDED, f"due time {due_ms} beyond {horizon}")
        if self._schedules >= self._limits.max_schedules_per_tx:
            raise TxFailed(ResultCode.LIMIT_EXCEEDED, "too many tasks scheduled")
        self._meter.consume(self._gas.schedule, "schedule")
        key = due_key(due_ms, self.block.height, self._next_task_sequence())
        record = DueRecord(module=self.module, kind=kind, payload=payload)
        self._buffer.set(key, DUE_RECORD_CODEC.encode(record))
        self._schedules += 1
        return key

    def cancel(self, task_id: bytes) -> bool:
        """Remove a pending task of this module; False if it already ran or never existed."""
        if not is_due_key(task_id):
            raise ModuleContractError(f"not a task id: {task_id!r}")
        self._meter.consume(self._gas.delete, "cancel")
        stored = self._buffer.get(task_id)
        if stored is None:
            return False
        if DUE_RECORD_CODEC.decode(stored).module != self.module:
            raise ModuleContractError(f"{self.module} cancelled another module's task")
        self._buffer.delete(task_id)
        return True

    def call(self, module: str, action: str, payload: bytes = b"") -> bytes:
        """Run ``module.on_call(action, payload)`` inside this transaction (or task): its
        writes, events, schedules and validator updates join this one's and fail with it; a
        ``TxFailed`` it raises propagates here. Returns what ``on_call`` returned."""
        if self._invoke is None:
            raise ModuleContractError("module calls are not available here")
        if self._depth >= MAX_CALL_DEPTH:
            raise TxFailed(ResultCode.LIMIT_EXCEEDED, f"module calls nested over {MAX_CALL_DEPTH}")
        if module == self.module:
            raise ModuleContractError(f"{module} called itself")
        self._meter.consume(self._gas.tx_base, "module call")
        callee = ExecContext(
            module=module,
            block=self.block,
            buffer=self._buffer,
            meter=self._meter,
            gas=self._gas,
            limits=self._limits,
            next_task_sequence=self._next_task_sequence,
            sender=self.sender,
            tx_hash=self.tx_hash,
            invoke=self._invoke,
            caller=self.module,
            depth=self._depth + 1,
        )
        callee.events = self.events  # one list: the per-transaction event limit holds
        callee.validator_updates = self.validator_updates
        return self._invoke(callee, action, payload)

    def set_validator_power(self, public_key: bytes, voting_power: int) -> None:
        """Ask for ``public_key`` to have ``voting_power`` (0 removes it) from the height
        the framework documents; the last request in a block wins."""
        if type(public_key) is not bytes or len(public_key) != PUBLIC_KEY_BYTES:
            raise TxFailed(ResultCode.INVALID_PAYLOAD, "a validator key is 32 bytes")
        if type(voting_power) is not int or not 0 <= voting_power <= MAX_VOTING_POWER:
            raise TxFailed(ResultCode.INVALID_PAYLOAD, f"voting power {voting_power}")
        self.validator_updates[public_key] = ValidatorUpdate(public_key, voting_power)


_CHECKED_NAMES: set[str] = set()
"""Event names that matched ``NAME_PATTERN`` (modules emit a handful)."""
_MAX_CHECKED_NAMES = 4_096
_CHECKED_KEYS: set[str] = set()
"""Attribute keys that matched ``ATTRIBUTE_KEY_PATTERN`` (modules use a handful)."""
_MAX_CHECKED_KEYS = 4_096


def _attribute_text(key: str, value: AttributeValue) -> str:
    if key not in _CHECKED_KEYS:
        if type(key) is not str or ATTRIBUTE_KEY_PATTERN.fullmatch(key) is None:
            raise ModuleContractError(f"bad event attribute key {key!r}")
        if len(_CHECKED_KEYS) < _MAX_CHECKED_KEYS:
            _CHECKED_KEYS.add(key)
    if isinstance(value, bytes):
        text = value.hex()
    elif isinstance(value, int) and not isinstance(value, bool):
        text = str(value)
    elif isinstance(value, str):
        text = value
    else:
        raise ModuleContractError(f"event attribute {key}: {type(value).__name__}")
    if len(text) > MAX_ATTRIBUTE_VALUE_CHARS:
        raise TxFailed(ResultCode.LIMIT_EXCEEDED, f"event attribute {key} is too long")
    return text


class Module(ABC):
    """Base class of application modules; see the module docstring for the contract."""

    #: The module's name: its namespace and the first part of its transaction kinds.
    name: str
    #: The actions it handles (``"<name>.<action>"`` kinds).
    actions: frozenset[str]

    def init_genesis(self, ctx: ExecContext) -> None:  # noqa: B027 (optional hook)
        """Write the module's initial state (default: nothing)."""

    def check_tx(self, ctx: CheckContext, tx: Transaction) -> None:  # noqa: B027 (optional hook)
        """Refuse (``TxFailed``) a transaction that cannot apply (default: accept)."""

    @abstractmethod
    def deliver_tx(self, ctx: ExecContext, tx: Transaction) -> None:
        """Apply an authenticated transaction of one of this module's kinds."""

    def on_due(self, ctx: ExecContext, task: DueTask) -> None:
        """Run a due task this module scheduled (default: it schedules none)."""
        raise TxFailed(ResultCode.UNKNOWN_KIND, f"{self.name} has no due task {task.kind!r}")

    def on_call(self, ctx: ExecContext, action: str, payload: bytes) -> bytes:
        """Serve a call of another module (``ctx.caller``); default: no calls served."""
        raise TxFailed(ResultCode.UNKNOWN_KIND, f"{self.name} serves no call {action!r}")

    def query_key(self, path: str) -> bytes:
        """The state key that the query path ``path`` names; ``ValueError`` for a path this
        module does not understand. Default: ``path`` is the hex of the key after the
        module's ``"<name>/"`` prefix."""
        try:
            suffix = bytes.fromhex(path)
        except ValueError as exc:
            raise ValueError(f"{self.name}: a query path is the hex of a key") from exc
        return self.name.encode() + b"/" + suffix

    def render(self, key: bytes, value: bytes) -> JsonValue:
        """``value`` (stored under ``key``) as JSON for clients; default: its hex."""
        return {"hex": value.hex()}


def check_module_name(name: str) -> str:
    """``name`` if it is a valid, unreserved module name (``ValueError`` otherwise)."""
    if not isinstance(name, str) or MODULE_NAME_PATTERN.fullmatch(name) is None:
        raise ValueError(f"module name {name!r} must match {MODULE_NAME_PATTERN.pattern}")
    if name in RESERVED_MODULE_NAMES:
        raise ValueError(f"module name {name!r} is reserved")
    return name


ModuleInvoker = Callable[[ExecContext, str, bytes], bytes]
"""Runs ``on_call`` of the module ``ctx.module`` names (the application provides it)."""


class KeyReader(Protocol):
    """Anything with ``get(key) -> value | None`` (a state layer or a metered view)."""

    def get(self, key: bytes) -> bytes | None:
        """The value of ``key``, or ``None``."""
        ...


class Authenticator(Protocol):
    """Who may send transactions, and their nonces (the accounts module implements it).

    The framework calls ``authenticate`` and compares ``next_nonce`` before running a
    transaction, then ``consume_nonce`` (unmetered, kept even if the transaction fails).
    """

    def authenticate(self, reader: KeyReader, sender: bytes) -> None:
        """Raise ``TxFailed`` (UNKNOWN_SENDER, ACCOUNT_INACTIVE) if ``sender`` may not send."""
        ...

    def next_nonce(self, reader: KeyReader, sender: bytes) -> int:
        """The nonce the next transaction of ``sender`` must carry (0 for an unknown one)."""
        ...

    def consume_nonce(self, buffer: WriteBuffer, sender: bytes) -> None:
        """Advance ``sender``'s nonce by one."""
        ...
