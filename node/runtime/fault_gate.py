"""A fault gate in a node's transport, for fault campaigns only (``bighealth chaos``).

``FaultGate`` wraps the runtime's network (``node.runtime.network.RuntimeNetwork``) and
drops messages from and to the peers a control file names: ``HOME/chaos-gate.json``,

    {"drop_from": ["<peer id>", ...], "drop_to": ["<peer id>", ...]}

- ``drop_from``: every message whose origin is one of these peers is dropped on arrival
  (gossip is judged by its publisher, so a relay through a third peer does not leak it),
  and their requests (block sync, records) are refused;
- ``drop_to``: direct sends to these peers are dropped and requests to them fail with
  ``PeerUnreachableError``. Broadcasts go out as they are: gossip picks its own route, so
  a partition is made by gating the receivers (both sides name each other in
  ``drop_from``), and a one-way loss from A to B by ``drop_from: [A]`` at B alone.

The file is re-read when its inode, modification time or size changes, looked at no more than
once every ``poll_interval_s``; an absent file opens the gate; a file that does not parse
keeps the last rules (and is logged). It is at most ``MAX_GATE_FILE_BYTES``.

Only ``bighealth run --fault-gate`` installs it, and that flag is refused unless the
environment sets ``BIGHEALTH_ALLOW_FAULTS=1`` (``faults_allowed``): a production node never
runs with it.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from node.errors import BigHealthError, PeerUnreachableError, RequestRejectedError
from node.ports import InboundMessage, PeerId
from node.runtime.forwarding import ForwardingNetwork
from node.runtime.logs import fields
from node.runtime.network import RequestHandler, RuntimeNetwork

logger = logging.getLogger("node.runtime.fault_gate")

GATE_FILE: Final = "chaos-gate.json"
"""The control file, in the node's home."""
ALLOW_FAULTS_ENV: Final = "BIGHEALTH_ALLOW_FAULTS"
"""The environment variable that must be ``1`` for any fault-injection flag to be accepted."""
MAX_GATE_FILE_BYTES: Final = 64 * 1024
MAX_GATE_PEERS: Final = 256
"""Most peer ids in each list of the control file."""
POLL_INTERVAL_S: Final = 0.2


class FaultGateError(BigHealthError):
    """The control file is not a gate description (or fault injection is not allowed)."""


def faults_allowed(environ: Mapping[str, str] = os.environ) -> bool:
    """True when ``BIGHEALTH_ALLOW_FAULTS=1``: fault-injection flags may be used."""
    return environ.get(ALLOW_FAULTS_ENV) == "1"


@dataclass(frozen=True, slots=True)
class GateRules:
    """Which peers' messages are dropped (see the module docstring)."""

    drop_from: frozenset[PeerId] = frozenset()
    drop_to: frozenset[PeerId] = frozenset()


OPEN: Final = GateRules()


def parse_gate(raw: bytes) -> GateRules:
    """The rules of a control file's bytes; ``FaultGateError`` for anything else."""
    if len(raw) > MAX_GATE_FILE_BYTES:
        raise FaultGateError(f"the gate file holds {len(raw)} bytes, at most {MAX_GATE_FILE_BYTES}")
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise FaultGateError(f"the gate file is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise FaultGateError("the gate file must hold a JSON object")
    unknown = set(document) - {"drop_from", "drop_to"}
    if unknown:
        raise FaultGateError(f"unknown keys in the gate file: {sorted(unknown)}")
    return GateRules(_peers(document, "drop_from"), _peers(document, "drop_to"))


def _peers(document: dict[str, Any], key: str) -> frozenset[PeerId]:
    value = document.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise FaultGateError(f"{key} must be a list of peer ids (strings)")
    if len(value) > MAX_GATE_PEERS:
        raise FaultGateError(f"{key} names {len(value)} peers, at most {MAX_GATE_PEERS}")
    return frozenset(PeerId(item) for item in value)


def gate_text(rules: GateRules) -> str:
    """The control file's text for ``rules`` (what a campaign writes)."""
    document = {"drop_from": sorted(rules.drop_from), "drop_to": sorted(rules.drop_to)}
    return json.dumps(document, sort_keys=True)


class GateFile:
    """The rules of one control file, re-read when it changes (see the module docstring)."""

    def __init__(
        self,
        path: Path,
        *,
        poll_interval_s: float = POLL_INTERVAL_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self._poll_interval_s = poll_interval_s
        self._monotonic = monotonic
        self._next_poll = float("-inf")
        self._signature: tuple[int, int, int] | None = None
        self._rules = OPEN

    def rules(self) -> GateRules:
        """The rules in force now (the file looked at if the poll interval passed)."""
        now = self._monotonic()
        if now >= self._next_poll:
            self._next_poll = now + self._poll_interval_s
            self._reload()
        return self._rules

    def _reload(self) -> None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._signature, self._rules = None, OPEN
            return
        signature = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if signature == self._signature:
            return
        self._signature = signature
        try:
            with self.path.open("rb") as file:
                self._rules = parse_gate(file.read(MAX_GATE_FILE_BYTES + 1))
        except (OSError, FaultGateError) as exc:
            logger.warning("gate file ignored", extra=fields(path=str(self.path), error=str(exc)))
            return
        logger.info(
            "gate rules",
            extra=fields(
                drop_from=sorted(self._rules.drop_from), drop_to=sorted(self._rules.drop_to)
            ),
        )


class FaultGate(ForwardingNetwork):
    """A ``RuntimeNetwork`` that drops what ``gate``'s rules say (see the module docstring)."""

    def __init__(self, inner: RuntimeNetwork, gate: GateFile) -> None:
        super().__init__(inner)
        self._gate = gate
        self.dropped = 0
        """Messages and requests dropped or refused so far."""

    # -- gated ----------------------------------------------------------------------------------

    def receive(self, max_messages: int) -> list[InboundMessage]:
        """Up to ``max_messages`` delivered messages, those from gated peers dropped; fewer
        only when the inner network has no more."""
        kept: list[InboundMessage] = []
        while len(kept) < max_messages:
            wanted = max_messages - len(kept)
            batch = self._inner.receive(wanted)
            blocked = self._gate.rules().drop_from
            for message in batch:
                if message.sender in blocked:
                    self.dropped += 1
                else:
                    kept.append(message)
            if len(batch) < wanted:
                break
        return kept

    def send(self, peer: PeerId, topic: str, data: bytes) -> None:
        if peer in self._gate.rules().drop_to:
            self.dropped += 1
            return
        self._inner.send(peer, topic, data)

    async def request(self, peer: PeerId, protocol: str, data: bytes, timeout_ms: int) -> bytes:
        if peer in self._gate.rules().drop_to:
            self.dropped += 1
            raise PeerUnreachableError(f"{peer} is behind the fault gate")
        return await self._inner.request(peer, protocol, data, timeout_ms)

    def register_handler(self, protocol: str, handler: RequestHandler) -> None:
        async def gated(peer: PeerId, data: bytes) -> bytes:
            if peer in self._gate.rules().drop_from:
                self.dropped += 1
                raise RequestRejectedError("behind the fault gate")
            return await handler(peer, data)

        self._inner.register_handler(protocol, gated)


@dataclass(frozen=True, slots=True)
class FaultOptions:
    """The fault-injection settings of one node run (``bighealth run --fault-gate
    --clock-skew-ms N``); the default injects nothing."""

    gate: bool = False
    clock_skew_ms: int = 0


NO_FAULTS: Final = FaultOptions()


def gated(network: RuntimeNetwork, home: Path, options: FaultOptions) -> RuntimeNetwork:
    """``network`` behind a ``FaultGate`` on ``home``'s control file if ``options.gate``,
    else ``network`` itself."""
    return FaultGate(network, GateFile(home / GATE_FILE)) if options.gate else network
