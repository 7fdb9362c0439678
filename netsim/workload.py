"""Workloads: the clients of a simulated network, and the registry of what they submitted.

A :class:`Workload` is started once with a :class:`WorkloadContext` and from then on
schedules its own arrivals in virtual time and hands transactions to nodes through the
context. It declares what the chain needs at genesis for its transactions: the accounts, each
module's ``app_state`` (built from the run's validators: a chain whose governance names the
validators needs them) and the application itself (``app_factory``; None: the node's default
modules). The context records every transaction in the :class:`TxRegistry`, which the
validity checker asks ("did a client send this?") and which turns commits into commit
latencies and into completions the workload hears about. The workload also reads each
decided height as executed (:class:`CommittedBlock`: receipts and events, as a client
watching a node's event feed would) and ends with a :class:`WorkloadReport`: counts for the
run's summary, and the story's expectations the run broke, which the run records as
violations of the ``workload`` checker (a transaction that commits with a failed receipt is
no violation by itself: it is counted).

:class:`GenericWorkload` is what runs today: clients, each with its own account, signing
``kv.set`` transactions with consecutive nonces. A client sends its next transaction a
random (exponential) interval after the previous one, so all clients together offer the
configured rate — but never before the previous one committed (one transaction in flight
per account keeps nonces free of gaps, whatever node a transaction reaches); it re-sends a
transaction to another validator after a timeout (a node may be down, a message lost). When
commit latency exceeds a client's interval, the rate achieved is what latency allows.

The health scenario (:mod:`netsim.health_workload`: institutions, practitioners, patients
with devices uploading readings, grants, care plans, reminders, referrals, governance votes)
is another ``Workload`` that brings the health chain's modules; :data:`WORKLOADS` is the
registry the CLI reads (each entry builds its workload from the run's ``SimConfig``).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Final, Protocol

from crypto_core.signatures import Ed25519KeyPair, sha256
from netsim.errors import ConfigError, LimitExceeded
from netsim.limits import MAX_PENDING_TX_TRACKED, MAX_TX_RATE_PER_S, MAX_WORKLOAD_TXS
from netsim.samples import Samples
from netsim.topology import Topology
from node.app.accounts import GenesisAccount, Role
from node.app.kv import set_payload
from node.app.module import JsonValue
from node.chain.application import AppFactory
from node.testing.factories import TxFactory, key_pairs
from node.types import Event, TxReceipt, Validator

if TYPE_CHECKING:
    from netsim.config import SimConfig

DEFAULT_RESUBMIT_MS: Final = 10_000
"""A client re-sends a transaction not committed after this long, in milliseconds."""

MAX_CLIENTS: Final = 100_000
MAX_PAYLOAD_BYTES: Final = 4_096


class TxRegistry:
    """Every transaction clients created, the pending ones' submit times, commit latencies."""

    __slots__ = ("_known", "_on_commit", "_pending", "committed", "latency_us", "untracked")

    def __init__(self, latency_rng: random.Random) -> None:
        self._known: set[bytes] = set()
        self._pending: dict[bytes, int] = {}
        self._on_commit: dict[bytes, Callable[[], None]] = {}
        self.latency_us = Samples(latency_rng)
        self.committed = 0
        self.untracked = 0

    def __contains__(self, tx_hash: object) -> bool:
        return tx_hash in self._known

    def __len__(self) -> int:
        return len(self._known)

    def created(self, tx_hash: bytes, time_us: int, on_commit: Callable[[], None]) -> None:
        """A client made ``tx_hash`` at ``time_us``; ``on_commit`` runs when it commits.

        Raises LimitExceeded past MAX_WORKLOAD_TXS (the run made more transactions than a
        run may). Beyond MAX_PENDING_TX_TRACKED pending transactions, latency is not tracked
        (counted in ``untracked``).
        """
        if len(self._known) >= MAX_WORKLOAD_TXS:
            raise LimitExceeded(f"a run may create at most {MAX_WORKLOAD_TXS} transactions")
        self._known.add(tx_hash)
        if len(self._pending) >= MAX_PENDING_TX_TRACKED:
            self.untracked += 1
            return
        self._pending[tx_hash] = time_us
        self._on_commit[tx_hash] = on_commit

    def commit(self, tx_hash: bytes, time_us: int) -> None:
        """``tx_hash`` was decided (first decision of its height) at ``time_us``."""
        submitted = self._pending.pop(tx_hash, None)
        if submitted is None:
            return
        self.committed += 1
        self.latency_us.add(time_us - submitted)
        self._on_commit.pop(tx_hash)()

    @property
    def pending(self) -> int:
        """Submitted and not yet committed (tracked) transactions."""
        return len(self._pending)


class WorkloadContext(Protocol):
    """What a workload may do in a run."""

    @property
    def chain_id(self) -> str:
        """The chain transactions are signed for."""
        ...

    @property
    def topology(self) -> Topology:
        """Where the nodes are (which are validators)."""
        ...

    @property
    def rng(self) -> random.Random:
        """The workload's own random stream."""
        ...

    def now_us(self) -> int:
        """Virtual time."""
        ...

    def later(self, delay_us: int, callback: Callable[[], None]) -> None:
        """Run ``callback`` after ``delay_us`` of virtual time."""
        ...

    def submit(
        self,
        node: int,
        tx: bytes,
        on_commit: Callable[[], None],
        on_refused: Callable[[str], None] | None = None,
    ) -> bool:
        """Hand ``tx`` to ``node`` (registering it the first time); False if that node's
        process is not running. ``on_commit`` runs once, when ``tx`` commits; ``on_refused``
        (later, never within this call) hears the node's refusal ``"<reason>: <message>"``
        when it does not admit ``tx``."""
        ...


@dataclass(frozen=True, slots=True)
class CommittedBlock:
    """A decided height as the first honest node to decide it executed it (every honest node
    executes it alike: the state-root checker holds them to it). ``time_us``: virtual time of
    that first decision; ``time_ms``: the block time; ``events``: the block-time events (due
    work); ``receipts``: each transaction's outcome, in block order."""

    height: int
    time_us: int
    time_ms: int
    receipts: tuple[TxReceipt, ...]
    events: tuple[Event, ...]


@dataclass(frozen=True, slots=True)
class WorkloadReport:
    """What a workload tells at the end of a run: ``counts`` (``"<group>/<name>"`` -> n,
    printed by group in the summary and kept in the JSON result) and ``problems``, the
    expectations of its story the run broke (each becomes a ``workload`` violation)."""

    counts: dict[str, int] = field(default_factory=dict)
    problems: tuple[str, ...] = ()


class Workload(Protocol):
    """A source of client transactions (see the module docstring)."""

    @property
    def name(self) -> str:
        """The name the CLI knows it by."""
        ...

    def genesis_accounts(self) -> tuple[GenesisAccount, ...]:
        """Accounts that must exist at genesis for this workload's transactions."""
        ...

    def genesis_app_state(self, validators: tuple[Validator, ...]) -> dict[str, JsonValue]:
        """Each module's genesis state (module name -> JSON value) for a chain whose genesis
        validators are ``validators``; empty when the modules need none."""
        ...

    def app_factory(self) -> AppFactory | None:
        """The application the nodes run, or None for the node's default one."""
        ...

    def start(self, ctx: WorkloadContext) -> None:
        """Begin submitting (schedule the first arrivals)."""
        ...

    def on_block(self, block: CommittedBlock) -> None:
        """Height ``block.height`` was decided (heights come in order, each once)."""
        ...

    def report(self) -> WorkloadReport:
        """Counts and broken expectations, at the end of the run."""
        ...


@dataclass(slots=True)
class _Client:
    key: Ed25519KeyPair
    home_node: int
    sequence: int = 0
    current: bytes = b""
    attempt: int = 0
    due_us: int = 0


class GenericWorkload:
    """Closed-loop clients sending ``kv.set`` transactions (see the module docstring)."""

    name = "generic"

    def __init__(
        self,
        *,
        clients: int = 64,
        rate_tps: float = 50.0,
        payload_bytes: int = 64,
        resubmit_ms: int = DEFAULT_RESUBMIT_MS,
    ) -> None:
        """``clients`` accounts sending ``rate_tps`` transactions per second of virtual time in
        total (while commits keep up: a client has one transaction in flight at a time)."""
        if not 1 <= clients <= MAX_CLIENTS:
            raise ConfigError(f"clients must be in 1..{MAX_CLIENTS}, got {clients}")
        if not 0 <= rate_tps <= MAX_TX_RATE_PER_S:
            raise ConfigError(f"the tx rate must be in 0..{MAX_TX_RATE_PER_S}/s, got {rate_tps}")
        if not 1 <= payload_bytes <= MAX_PAYLOAD_BYTES:
            raise ConfigError(f"payload must be 1..{MAX_PAYLOAD_BYTES} bytes")
        if resubmit_ms < 1:
            raise ConfigError("resubmit_ms must be >= 1")
        self._client_count = clients
        self._rate_tps = rate_tps
        self._payload_bytes = payload_bytes
        self._resubmit_us = resubmit_ms * 1_000
        self._keys = key_pairs(clients, prefix="netsim-client")
        self._clients: list[_Client] = []
        self._ctx: WorkloadContext | None = None
        self._factory: TxFactory | None = None
        self.submitted = 0
        self.resubmitted = 0

    def genesis_accounts(self) -> tuple[GenesisAccount, ...]:
        """One ordinary account per client."""
        return tuple(GenesisAccount(key.public_key, Role.PATIENT) for key in self._keys)

    def genesis_app_state(self, validators: tuple[Validator, ...]) -> dict[str, JsonValue]:
        """Nothing: the default modules start empty."""
        return {}

    def app_factory(self) -> AppFactory | None:
        """The node's default application (accounts, key-value)."""
        return None

    def on_block(self, block: CommittedBlock) -> None:
        """Nothing to do: commits arrive through ``on_commit``."""

    def report(self) -> WorkloadReport:
        """How many transactions were sent, and sent again."""
        counts = {"clients/submitted": self.submitted, "clients/resubmitted": self.resubmitted}
        return WorkloadReport(counts)

    def start(self, ctx: WorkloadContext) -> None:
        """Give each client a home node and schedule its first transaction."""
        self._ctx = ctx
        self._factory = TxFactory(ctx.chain_id)
        if self._rate_tps == 0:
            return
        nodes = ctx.topology.nodes
        self._clients = [_Client(key, ctx.rng.randrange(nodes)) for key in self._keys]
        for client in self._clients:
            client.due_us = self._interval_us()
            ctx.later(client.due_us, partial(self._next, client))

    def _interval_us(self) -> int:
        """A client's next interval: exponential, its mean ``clients / rate`` seconds."""
        assert self._ctx is not None
        mean_us = self._client_count * 1_000_000 / self._rate_tps
        return 1 + int(self._ctx.rng.expovariate(1.0 / mean_us))

    def _next(self, client: _Client) -> None:
        ctx, factory = self._ctx, self._factory
        assert ctx is not None and factory is not None
        client.sequence += 1
        key = b"k%d" % client.sequence
        value = ctx.rng.randbytes(self._payload_bytes)
        client.current = factory.encoded(client.key, "kv.set", set_payload(key, value))
        client.attempt = 0
        self._send(client, client.home_node)

    def _send(self, client: _Client, node: int) -> None:
        ctx = self._ctx
        assert ctx is not None
        tx = client.current
        attempt = client.attempt
        self.submitted += 1
        ctx.submit(node, tx, lambda: self._committed(client, tx))
        ctx.later(self._resubmit_us, lambda: self._maybe_resend(client, tx, attempt))

    def _committed(self, client: _Client, tx: bytes) -> None:
        """Send the next transaction when it is due (at once if it is overdue)."""
        if client.current == tx:
            client.current = b""
            ctx = self._ctx
            assert ctx is not None
            now_us = ctx.now_us()  # a late client does not make up for lost time
            client.due_us = max(client.due_us + self._interval_us(), now_us)
            ctx.later(max(1, client.due_us - now_us), partial(self._next, client))

    def _maybe_resend(self, client: _Client, tx: bytes, attempt: int) -> None:
        """Still not committed: send it again, to a validator picked at random."""
        if client.current != tx or client.attempt != attempt:
            return
        ctx = self._ctx
        assert ctx is not None
        client.attempt += 1
        self.resubmitted += 1
        self._send(client, ctx.rng.randrange(ctx.topology.validators))


WorkloadFactory = Callable[["SimConfig"], Workload]
"""Builds a run's workload from its configuration."""


def generic_workload(config: SimConfig) -> Workload:
    """The generic workload with the run's clients, rate and payload size."""
    return GenericWorkload(
        clients=config.clients, rate_tps=config.tx_rate, payload_bytes=config.payload_bytes
    )


def health_workload(config: SimConfig) -> Workload:
    """The health story (:mod:`netsim.health_workload`) with the run's health options."""
    from netsim.health_workload import HealthWorkload  # noqa: PLC0415  (health loads if asked)

    return HealthWorkload.from_config(config)


WORKLOADS: Final[dict[str, WorkloadFactory]] = {
    "generic": generic_workload,
    "health": health_workload,
}
"""Workloads by CLI name."""


def tx_digest(tx: bytes) -> bytes:
    """The hash a transaction is known by (SHA-256 of its canonical bytes)."""
    return sha256(tx)
