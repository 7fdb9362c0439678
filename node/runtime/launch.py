"""Running a node from its home: checks, wiring, the one nursery, and a graceful stop.

``run_node(loaded_home)`` is what ``bighealth run`` does:

1. preflight: the API and libp2p ports are free, the genesis' blocks fit a network message;
2. open LevelDB (``HOME/data``) and ``NodeCore.open`` with the application the caller chose
   (``app_factory``: the composition root, ``node.cli.composition``, picks the modules;
   default: ``node.chain.default_application``), restoring the last committed height and
   replaying the consensus log of the current one;
3. in one nursery: the signal watcher (SIGTERM/SIGINT), the libp2p network, the HTTP API,
   then the runtime (the core task);
4. on SIGTERM or SIGINT: cancel the nursery — the API stops accepting, the network closes,
   the core task stops between two events (never inside one) — then sync and close
   LevelDB. Nothing is lost: every commit and every signature was durable before it was
   announced.

Errors an operator can fix are raised as ``NodeStartError`` (with what to do); a
``ChainHaltError`` means the chain cannot safely go on on this node.
"""

from __future__ import annotations

import gc
import logging
import signal
import socket
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, Final

import trio
from prometheus_client import disable_created_metrics

from node.adapters.config import (
    DEFAULT_MAX_MESSAGE_BYTES,
    MAX_GOSSIP_MESSAGE_BYTES,
    Libp2pNetworkConfig,
)
from node.adapters.errors import (
    DatabaseLockedError,
    ForeignDatabaseError,
    KeyFileError,
    NetworkConfigError,
    StorageCorruptedError,
)
from node.adapters.leveldb_store import LevelDBStorage
from node.adapters.libp2p import Libp2pNetwork
from node.api.http import HttpLimits, serve_http
from node.api.routes import MAX_WAIT_MS, NodeApi
from node.chain.application import AppFactory, default_application
from node.chain.compact import max_compact_message_bytes
from node.chain.errors import InvalidGenesisError, StorageMismatchError
from node.chain.genesis import ConsensusParams
from node.core import NodeCore
from node.errors import BigHealthError, StorageError
from node.home import LoadedHome, listen_port, parse_host_port
from node.home.config import LISTEN_PATTERN
from node.runtime.byzantine import ByzantineKind, ByzantineModeError, byzantine_network
from node.runtime.extension import NodeExtension, NodeServices
from node.runtime.fault_gate import NO_FAULTS, FaultOptions, gated
from node.runtime.logs import adopt_library_loggers, fields
from node.runtime.metrics import NodeMetrics
from node.runtime.node import NodeIdentity, NodeRuntime, RuntimeLimits, TipBoard
from node.runtime.system import SystemClock, SystemRng

logger = logging.getLogger("node.runtime")

MAX_NETWORK_MESSAGE_BYTES: Final = MAX_GOSSIP_MESSAGE_BYTES
"""The largest message a node gossips: py-libp2p's gossipsub loses messages near 1 MiB, so the
network adapter caps messages below it. Proposed blocks with transactions travel compact
(``node.chain.compact``), so it bounds ``max_block_txs``, not ``max_block_bytes``."""


GC_YOUNG_THRESHOLD: Final = 50_000
"""Allocations between two collections of the garbage collector's youngest generation
(Python's default is 700)."""


def tune_garbage_collector() -> None:
    """Leave what start-up loaded (code, the state) out of the cyclic collector's scans and
    collect the youngest generation every ``GC_YOUNG_THRESHOLD`` allocations. A node's data
    is bytes, tuples and dataclasses that reference counting frees; at 700 the collector ran
    hundreds of times a second under load and scanned the mempool and the blocks in flight
    each time: executing a block of 1,500 ``kv.set`` and encoding its results took 32.4 us
    a transaction with Python's default, 25.6 us with young collections this rare. Cycles
    (trio's tasks, exceptions) are still collected, just in larger steps."""
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, oldest)


class NodeStartError(BigHealthError):
    """The node cannot start as configured; the message says what to change."""


class PortInUseError(NodeStartError):
    """A port the node must listen on is taken (another node, another program)."""


@dataclass(frozen=True, slots=True)
class Started:
    """Where a running node can be reached."""

    peer_id: str
    listen_addrs: tuple[str, ...]
    api_host: str
    api_port: int


def preflight(loaded: LoadedHome) -> None:
    """Refuse to start, with a clear message, what would fail later less clearly."""
    check_block_size(loaded.genesis.params)
    config = loaded.config
    host, port = parse_host_port(config.api.listen)
    check_port_free(host, port, "the API address (config.toml [api] listen)")
    match = LISTEN_PATTERN.fullmatch(config.p2p.listen)
    if match is not None and match.group(1) in ("ip4", "ip6") and listen_port(config.p2p.listen):
        p2p_host = config.p2p.listen.split("/")[2]
        check_port_free(p2p_host, int(match.group(2)), "the libp2p address ([p2p] listen)")


def check_block_size(params: ConsensusParams) -> None:
    """``NodeStartError`` if the genesis allows blocks the network cannot carry (as compact
    blocks: a header, evidence and 34 bytes per transaction in one message)."""
    needed = max_compact_message_bytes(params)
    if needed > MAX_NETWORK_MESSAGE_BYTES:
        raise NodeStartError(
            f"the genesis allows blocks of {params.max_block_txs} transactions, whose compact "
            f"form takes up to {needed} bytes, but the libp2p network carries at most "
            f"{MAX_NETWORK_MESSAGE_BYTES}-byte messages: lower params.max_block_txs, "
            "params.max_evidence_bytes or params.max_block_bytes in genesis.json"
        )


def check_port_free(host: str, port: int, what: str) -> None:
    """``PortInUseError`` unless a TCP listener could bind ``host:port`` now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise PortInUseError(
                f"{what} {host}:{port} is not available ({exc.strerror or exc}): is another "
                "node running with this home, or another program on that port?"
            ) from exc


def network_config(loaded: LoadedHome, version: str) -> Libp2pNetworkConfig:
    """The libp2p settings of a home (messages sized for the genesis' blocks)."""
    params = loaded.genesis.params
    block_message = max_compact_message_bytes(params)
    try:
        return Libp2pNetworkConfig(
            chain_id=loaded.genesis.chain_id,
            home=loaded.home.path,
            listen_multiaddr=loaded.config.p2p.listen,
            bootstrap=loaded.config.p2p.bootstrap,
            agent=f"bighealth/{version}",
            max_peers=loaded.config.p2p.max_peers,
            allow_observers=loaded.config.p2p.allow_libp2p_peers,
            max_message_bytes=max(DEFAULT_MAX_MESSAGE_BYTES, block_message),
        )
    except NetworkConfigError as exc:
        raise NodeStartError(f"{loaded.home.config_path}: {exc}") from exc


def api_limits(loaded: LoadedHome) -> HttpLimits:
    """The HTTP server's bounds from ``[api]``."""
    api = loaded.config.api
    timeout_s = api.request_timeout_ms / 1000
    return HttpLimits(
        max_connections=api.max_connections,
        max_body_bytes=api.max_request_bytes,
        request_timeout_s=timeout_s,
        handler_timeout_s=timeout_s,
    )


def long_poll_limit_ms(loaded: LoadedHome) -> int:
    """How long ``GET /events`` may wait: ``MAX_WAIT_MS``, and a second less than the
    request timeout of ``[api]`` (the server answers 503 to a handler that takes longer)."""
    return max(0, min(MAX_WAIT_MS, loaded.config.api.request_timeout_ms - 1_000))


@contextmanager
def open_storage(loaded: LoadedHome) -> Iterator[LevelDBStorage]:
    """LevelDB in ``HOME/data``, closed (after a final sync) on exit."""
    path = loaded.home.data_path
    try:
        storage = LevelDBStorage(path, loaded.genesis.chain_id)
    except DatabaseLockedError as exc:
        raise NodeStartError(f"{path} is in use: is this node already running? ({exc})") from exc
    except ForeignDatabaseError as exc:
        raise NodeStartError(f"{path} holds another chain's data: {exc}") from exc
    except StorageCorruptedError as exc:
        raise NodeStartError(
            f"{path} is damaged ({exc}): restore it from a backup, or move it away to "
            "resynchronise this node from its peers"
        ) from exc
    try:
        yield storage
    finally:
        try:
            storage.sync()
        except StorageError:
            logger.exception("final sync of the database failed")
        storage.close()


def open_core(
    storage: LevelDBStorage, loaded: LoadedHome, app_factory: AppFactory = default_application
) -> NodeCore:
    """The chain core on ``storage`` running ``app_factory``'s application
    (``NodeStartError`` for a foreign store, or a genesis the application refuses)."""
    try:
        return NodeCore.open(
            storage,
            loaded.validator_key,
            loaded.genesis,
            loaded.config.chain,
            app_factory=app_factory,
        )
    except StorageMismatchError as exc:
        raise NodeStartError(
            f"{loaded.home.data_path} does not belong to the genesis in "
            f"{loaded.home.genesis_path}: {exc}"
        ) from exc
    except InvalidGenesisError as exc:
        raise NodeStartError(f"{loaded.home.genesis_path}: {exc}") from exc


ExtensionsFactory = Callable[[LoadedHome], AbstractContextManager[Sequence[NodeExtension]]]
"""Opens what a node's extensions need (their own stores, keys) for the node's lifetime and
gives the extensions; the composition root (``node.cli``) supplies it."""


@contextmanager
def no_extensions(loaded: LoadedHome) -> Iterator[Sequence[NodeExtension]]:
    """The ``ExtensionsFactory`` of a node that runs none."""
    yield ()


async def run_node(
    loaded: LoadedHome,
    *,
    version: str,
    app_factory: AppFactory = default_application,
    extensions: ExtensionsFactory = no_extensions,
    faults: FaultOptions = NO_FAULTS,
    byzantine: frozenset[ByzantineKind] = frozenset(),
) -> None:
    """Run the node of ``loaded`` with ``app_factory``'s application and ``extensions``
    until SIGTERM/SIGINT (returns) or a fatal error (raises ``NodeStartError``,
    ``ChainHaltError`` or a bug); ``faults``: fault injection (``node.runtime.fault_gate``),
    for fault campaigns only; ``byzantine``: lies the node tells (``node.runtime.byzantine``),
    for attack tests only."""
    adopt_library_loggers()
    disable_created_metrics()  # type: ignore[no-untyped-call]  # *_created series: noise
    preflight(loaded)
    with open_storage(loaded) as storage, extensions(loaded) as plugged:
        core = open_core(storage, loaded, app_factory)
        tune_garbage_collector()
        try:
            await _serve(core, loaded, version, plugged, faults, byzantine=byzantine)
        except BaseExceptionGroup as group:
            raise _single_error(group) from None


async def _serve(
    core: NodeCore,
    loaded: LoadedHome,
    version: str,
    extensions: Sequence[NodeExtension],
    faults: FaultOptions,
    *,
    byzantine: frozenset[ByzantineKind] = frozenset(),
) -> None:
    tip = TipBoard(core.height, core.last_block_id)
    try:
        network = Libp2pNetwork(
            network_config(loaded, version), rng=SystemRng(), status_provider=tip.encoded
        )
    except KeyFileError as exc:
        raise NodeStartError(str(exc)) from exc
    metrics = NodeMetrics(network.snapshot)
    key = loaded.validator_key
    identity = NodeIdentity(loaded.config.moniker, version, None if key is None else key.public_key)
    limits = RuntimeLimits(
        sync_request_timeout_ms=loaded.config.chain.sync_request_timeout_ms,
        consensus_direct=loaded.config.p2p.consensus_direct,
    )
    outbound = gated(network, loaded.home.path, faults)
    try:
        liar = byzantine_network(outbound, byzantine, signer=key, chain_id=core.chain_id)
    except ByzantineModeError as exc:
        raise NodeStartError(str(exc)) from exc
    runtime = NodeRuntime(
        core,
        outbound if liar is None else liar,
        SystemClock(faults.clock_skew_ms),
        identity=identity,
        metrics=metrics,
        max_block_bytes=loaded.genesis.params.max_block_bytes,
        limits=limits,
        tip=tip,
    )
    metrics.info.info(
        {"moniker": identity.moniker, "version": version, "chain_id": core.chain_id,
         "peer_id": network.local_peer, "role": loaded.config.role}
    )  # fmt: skip
    host, port = parse_host_port(loaded.config.api.listen)
    async with trio.open_nursery() as nursery:
        await nursery.start(_stop_on_signal, nursery.cancel_scope)
        addrs = await nursery.start(network.serve)
        handler = NodeApi(runtime, max_wait_ms=long_poll_limit_ms(loaded))
        for extension in extensions:
            for route in extension.routes():
                handler.add_route(route.method, route.path_pattern, route.handler)
        api = await nursery.start(serve_http, host, port, handler, api_limits(loaded))
        # Logged before the core task starts: its first commit must not come before it.
        _log_started(core, loaded, Started(network.local_peer, tuple(addrs), api[0], api[1]))
        await nursery.start(runtime.run)
        if liar is not None:
            nursery.start_soon(liar.attack)
        for extension in extensions:
            await nursery.start(_run_extension, extension, runtime.services())


async def _run_extension(
    extension: NodeExtension,
    services: NodeServices,
    *,
    task_status: Any = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run ``extension`` in the node's nursery; it stops with the node (an error it raises
    stops the node too: an extension that cannot work must not pretend to)."""
    logger.info("extension starting", extra=fields(extension=extension.name))
    await extension.run(services, task_status=task_status)


def _log_started(core: NodeCore, loaded: LoadedHome, started: Started) -> None:
    logger.info(
        "node started",
        extra=fields(
            chain_id=core.chain_id,
            genesis_hash=core.genesis_hash.hex(),
            role=loaded.config.role,
            height=core.height,
            peer_id=started.peer_id,
            listen=list(started.listen_addrs),
            api=f"http://{started.api_host}:{started.api_port}",
            validator_key=None if core.public_key is None else core.public_key.hex(),
        ),
    )


async def _stop_on_signal(
    scope: trio.CancelScope, *, task_status: Any = trio.TASK_STATUS_IGNORED
) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        task_status.started()
        async for signum in signals:
            logger.info("stopping", extra=fields(signal=signal.Signals(signum).name))
            scope.cancel()
            return


def _single_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one project error inside ``group`` (nurseries wrap errors in groups), else the
    group itself."""
    leaves = list(_leaves(group))
    ours = [leaf for leaf in leaves if isinstance(leaf, BigHealthError)]
    if len(ours) == 1 and len(leaves) == 1:
        return ours[0]
    return group


def _leaves(error: BaseException) -> Iterator[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            yield from _leaves(inner)
    else:
        yield error
