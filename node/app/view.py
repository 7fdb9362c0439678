"""State access during execution: layered write buffers and the metered view modules get.

Layers: the committed ``VersionedState`` <- the block's ``WriteBuffer`` <- one transaction's
``WriteBuffer``. A transaction's writes reach the block buffer only if it succeeds; the
block's reach the committed state in one ``commit`` at the end of the block.

Metering: every read, write, delete, iteration step and event costs gas (``GasSchedule``)
and a transaction may spend at most its limit (``ExecutionLimits``); running out raises
``OutOfGas``, which fails the transaction (its writes are dropped). So no transaction can
make a block arbitrarily slow, and the cost is the same on every node (it counts operations
and bytes, never time).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import Final, Protocol

from node.app.errors import ModuleContractError, OutOfGas, TxFailed
from node.codec import KIB, MAX_STATE_KEY_BYTES, MAX_STATE_VALUE_BYTES
from node.types import ResultCode

MAX_ITERATE_ITEMS: Final = 1_000


class StateReader(Protocol):
    """Read access to a state layer."""

    def get(self, key: bytes) -> bytes | None:
        """The value of ``key``, or ``None``."""
        ...

    def iterate(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Entries under ``prefix`` in ascending key order."""
        ...


class WriteBuffer:
    """Pending writes over a parent layer; reads see the pending writes first."""

    def __init__(self, parent: StateReader) -> None:
        self._parent = parent
        self._pending: dict[bytes, bytes | None] = {}  # None: deleted

    def __len__(self) -> int:
        return len(self._pending)

    def get(self, key: bytes) -> bytes | None:
        """The value of ``key`` as this layer sees it."""
        if key in self._pending:
            return self._pending[key]
        return self._parent.get(key)

    def iterate(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Entries under ``prefix`` in key order, pending writes merged over the parent's."""
        mine = sorted((k, v) for k, v in self._pending.items() if k.startswith(prefix))
        return _merge(mine, self._parent.iterate(prefix))

    def set(self, key: bytes, value: bytes) -> None:
        """Write ``value`` under ``key`` (unchecked: callers check)."""
        self._pending[key] = value

    def delete(self, key: bytes) -> None:
        """Delete ``key`` (unchecked: callers check)."""
        self._pending[key] = None

    def changes(self) -> dict[bytes, bytes | None]:
        """A copy of the pending writes (``None``: delete)."""
        return dict(self._pending)

    def merge_into(self, target: WriteBuffer) -> None:
        """Move these writes into ``target`` (normally the parent layer)."""
        target._pending.update(self._pending)
        self._pending.clear()


def _merge(
    mine: list[tuple[bytes, bytes | None]], parent: Iterator[tuple[bytes, bytes]]
) -> Iterator[tuple[bytes, bytes]]:
    index = 0
    for parent_key, parent_value in parent:
        while index < len(mine) and mine[index][0] < parent_key:
            yield from _present(mine[index])
            index += 1
        if index < len(mine) and mine[index][0] == parent_key:
            yield from _present(mine[index])  # this layer's write shadows the parent's
            index += 1
        else:
            yield parent_key, parent_value
    for item in mine[index:]:
        yield from _present(item)


def _present(item: tuple[bytes, bytes | None]) -> Iterator[tuple[bytes, bytes]]:
    key, value = item
    if value is not None:
        yield key, value


@dataclass(frozen=True, slots=True)
class GasSchedule:
    """Gas prices of state operations (bytes are key + value bytes)."""

    tx_base: int = 1_000
    tx_per_byte: int = 2
    read_base: int = 20
    read_per_byte: int = 1
    write_base: int = 200
    write_per_byte: int = 10
    delete: int = 100
    iterate_item: int = 20
    event_base: int = 50
    event_per_byte: int = 2
    schedule: int = 500

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if type(value) is not int or value < 0:
                raise ValueError(f"GasSchedule.{field.name} must be an int >= 0, got {value!r}")


@dataclass(frozen=True, slots=True)
class ExecutionLimits:
    """Per-transaction and per-block bounds of execution."""

    max_gas_per_tx: int = 2_000_000
    max_gas_per_due_task: int = 500_000
    max_bytes_written_per_tx: int = 256 * KIB
    max_events_per_tx: int = 32
    max_schedules_per_tx: int = 16
    max_due_tasks_per_block: int = 256
    max_schedule_ahead_ms: int = 10 * 366 * 24 * 3600 * 1000  # ten years

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if type(value) is not int or value < 1:
                raise ValueError(f"ExecutionLimits.{field.name} must be an int >= 1, got {value!r}")


class GasMeter:
    """Counts gas against a limit; ``consume`` raises ``OutOfGas`` past the limit."""

    __slots__ = ("limit", "used")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def consume(self, amount: int, what: str) -> None:
        """Spend ``amount`` gas for ``what``."""
        self.used += amount
        if self.used > self.limit:
            self.used = self.limit
            raise OutOfGas(f"out of gas ({self.limit}) at {what}")


class MeteredReader:
    """Metered read access to state (what ``check_tx`` gets)."""

    def __init__(self, layer: StateReader, meter: GasMeter, gas: GasSchedule) -> None:
        self._layer = layer
        self._meter = meter
        self._gas = gas

    def get(self, key: bytes) -> bytes | None:
        """The value of ``key`` (any namespace), or ``None``."""
        _check_key(key)
        value = self._layer.get(key)
        size = len(key) + (len(value) if value is not None else 0)
        self._meter.consume(self._gas.read_base + self._gas.read_per_byte * size, "read")
        return value

    def iterate(self, prefix: bytes, limit: int) -> list[tuple[bytes, bytes]]:
        """Up to ``limit`` (<= 1000) entries under ``prefix`` in key order."""
        if not 1 <= limit <= MAX_ITERATE_ITEMS:
            raise ModuleContractError(f"iterate limit must be 1..{MAX_ITERATE_ITEMS}")
        items: list[tuple[bytes, bytes]] = []
        for key, value in self._layer.iterate(prefix):
            cost = self._gas.iterate_item + self._gas.read_per_byte * (len(key) + len(value))
            self._meter.consume(cost, "iterate")
            items.append((key, value))
            if len(items) == limit:
                break
        return items


class MeteredView(MeteredReader):
    """A module's access to state during one transaction or due task.

    Reads anywhere (modules read each other's state through the owners' helper functions);
    writes only under ``write_prefix`` (the module's namespace, ``b"<module>/"``): a write
    elsewhere is a bug in the module and raises ``ModuleContractError``. Keys are 1..256
    bytes, values at most 64 KiB (``TxFailed(LIMIT_EXCEEDED)`` otherwise).
    """

    def __init__(
        self,
        buffer: WriteBuffer,
        meter: GasMeter,
        gas: GasSchedule,
        write_prefix: bytes,
        max_bytes_written: int,
    ) -> None:
        super().__init__(buffer, meter, gas)
        self._buffer = buffer
        self._write_prefix = write_prefix
        self._max_bytes_written = max_bytes_written
        self.bytes_written = 0

    @property
    def write_prefix(self) -> bytes:
        """The namespace this view may write under."""
        return self._write_prefix

    def set(self, key: bytes, value: bytes) -> None:
        """Write ``value`` under ``key`` (inside the module's namespace)."""
        self._check_writable(key)
        if type(value) is not bytes:
            raise ModuleContractError(f"values are bytes, not {type(value).__name__}")
        if len(value) > MAX_STATE_VALUE_BYTES:
            raise TxFailed(ResultCode.LIMIT_EXCEEDED, f"a value of {len(value)} bytes")
        size = len(key) + len(value)
        self._count_written(size)
        self._meter.consume(self._gas.write_base + self._gas.write_per_byte * size, "write")
        self._buffer.set(key, value)

    def delete(self, key: bytes) -> None:
        """Delete ``key`` (inside the module's namespace) if present."""
        self._check_writable(key)
        self._meter.consume(self._gas.delete, "delete")
        self._buffer.delete(key)

    def _check_writable(self, key: bytes) -> None:
        _check_key(key)
        if not key.startswith(self._write_prefix):
            raise ModuleContractError(
                f"write to {key!r} outside the namespace {self._write_prefix!r}"
            )

    def _count_written(self, size: int) -> None:
        self.bytes_written += size
        if self.bytes_written > self._max_bytes_written:
            raise TxFailed(
                ResultCode.LIMIT_EXCEEDED, f"more than {self._max_bytes_written} bytes written"
            )


def _check_key(key: bytes) -> None:
    if type(key) is not bytes:
        raise ModuleContractError(f"keys are bytes, not {type(key).__name__}")
    if not 1 <= len(key) <= MAX_STATE_KEY_BYTES:
        raise TxFailed(ResultCode.LIMIT_EXCEEDED, f"a key of {len(key)} bytes (1..256)")
