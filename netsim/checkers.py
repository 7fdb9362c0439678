"""Checkers run on every decision and every signed message: safety, validity, liveness.

- **agreement**: one block per height across every honest node that decides it.
- **validity**: a decided block extends the agreed chain (its parent is the block decided at
  the height below), carries only transactions a client submitted, none twice in the chain;
  a node decides heights in order.
- **state root**: every honest node has the same application state root after a height.
- **double sign**: no honest validator signs two different votes (or proposals) for one
  (height, round, step) — watched on the wire, across crashes and restarts.
- **accusation**: no honest validator is accused of equivocation.
- **node error**: no exception escapes an honest node's code, whatever it receives.
- **liveness**: once every fault has healed, a new height is decided at least every
  ``liveness_bound_us``, and at the end of a run no honest node that is up lags behind.
- **workload** (raised by the simulation, not here): at the end of a run, the expectations
  of the workload's story that did not hold (e.g. a reminder that came due and was neither
  acknowledged nor escalated in time).

Byzantine nodes' decisions are not checked (they may be fed anything); what they *send* is
what the safety checkers are about. Violations are results, not exceptions: the run records
them (up to ``MAX_VIOLATIONS_KEPT``) and the caller decides whether to stop.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Container, Sequence
from dataclasses import dataclass, field

from netsim.errors import LimitExceeded
from netsim.limits import DOUBLE_SIGN_WINDOW_HEIGHTS, MAX_HEIGHTS_RECORDED, MAX_VIOLATIONS_KEPT
from netsim.node_api import Decision, Envelope
from node.errors import DecodeError
from node.testing.signing import SigningLedger
from node.types import ZERO_HASH, Proposal, Vote

AGREEMENT = "agreement"
VALIDITY = "validity"
STATE_ROOT = "state-root"
DOUBLE_SIGN = "double-sign"
ACCUSATION = "accusation"
NODE_ERROR = "node-error"
LIVENESS = "liveness"
WORKLOAD = "workload"

_PROPOSAL_STEP = 0


@dataclass(frozen=True, slots=True)
class Violation:
    """A checker failed: which, when, where, and what it saw."""

    checker: str
    time_us: int
    node: int | None
    message: str

    def describe(self) -> str:
        """One line for the report."""
        where = "" if self.node is None else f" node {self.node}"
        return f"[{self.checker}] t={self.time_us / 1_000_000:.3f}s{where}: {self.message}"


@dataclass(slots=True)
class HeightRecord:
    """The agreed decision of one height and when honest nodes reached it."""

    decision: Decision
    first_time_us: int
    last_time_us: int
    deciders: int = 1


@dataclass(slots=True)
class DecisionLog:
    """Per height the agreed decision; per node its latest height and decision time."""

    heights: dict[int, HeightRecord] = field(default_factory=dict)
    node_height: list[int] = field(default_factory=list)
    node_last_decision_us: list[int] = field(default_factory=list)
    last_new_height_us: int = 0

    @property
    def max_height(self) -> int:
        """The highest height any honest node decided (0 before any)."""
        return max(self.heights, default=0)


class CheckerSuite:
    """All checkers of a run; it is the hosts' observer (``netsim.host.HostObserver``)."""

    def __init__(
        self,
        *,
        honest: Sequence[bool],
        honest_validator_keys: frozenset[bytes],
        known_tx: Container[bytes],
        own_keys: Sequence[bytes | None],
        liveness_bound_us: int,
        on_violation: Callable[[Violation], None] | None = None,
    ) -> None:
        """Checkers for nodes whose honesty is ``honest[i]`` and whose own signing key is
        ``own_keys[i]`` (None for non-validators); ``known_tx`` tells submitted
        transaction hashes; ``on_violation`` is called on each new violation."""
        nodes = len(honest)
        self.log = DecisionLog(node_height=[0] * nodes, node_last_decision_us=[0] * nodes)
        self.violations: list[Violation] = []
        self.violation_count = 0
        self.accusations = 0
        self.rejected_inputs = 0
        self.committed_txs = 0
        self._honest = tuple(honest)
        self._honest_keys = honest_validator_keys
        self._known_tx = known_tx
        self._tx_height: dict[bytes, int] = {}
        self._own_keys = tuple(own_keys)
        self._ledger = SigningLedger()
        self._liveness_bound_us = liveness_bound_us
        self._healed_at_us: int | None = None
        self._on_violation = on_violation
        self.on_commit: Callable[[int, HeightRecord], None] | None = None

    @property
    def failed(self) -> bool:
        """True once any checker failed."""
        return self.violation_count > 0

    def fail(self, checker: str, time_us: int, node: int | None, message: str) -> None:
        """Record a violation (kept up to MAX_VIOLATIONS_KEPT; all are counted)."""
        violation = Violation(checker, time_us, node, message)
        self.violation_count += 1
        if len(self.violations) < MAX_VIOLATIONS_KEPT:
            self.violations.append(violation)
        if self._on_violation is not None:
            self._on_violation(violation)

    # --- decisions -------------------------------------------------------------------------------

    def on_decision(self, node: int, time_us: int, decision: Decision) -> None:
        """Check a decision against the agreed chain, then record it."""
        if not self._honest[node]:
            return
        log = self.log
        height = decision.height
        previous_height = log.node_height[node]
        if height <= previous_height:  # the same decision again, after a restart
            self._check_repeat(node, time_us, decision)
            return
        if height != previous_height + 1:
            self.fail(VALIDITY, time_us, node, f"decided {height} after {previous_height}")
        record = log.heights.get(height)
        if record is None:
            self._check_new_height(node, time_us, decision)
        else:
            self._check_against(record, node, time_us, decision)
            record.deciders += 1
            record.last_time_us = time_us
        log.node_height[node] = height
        log.node_last_decision_us[node] = time_us

    def _check_repeat(self, node: int, time_us: int, decision: Decision) -> None:
        record = self.log.heights.get(decision.height)
        if record is not None:
            self._check_against(record, node, time_us, decision)

    def _check_against(
        self, record: HeightRecord, node: int, time_us: int, decision: Decision
    ) -> None:
        agreed = record.decision
        if decision.block_id != agreed.block_id:
            self.fail(
                AGREEMENT,
                time_us,
                node,
                f"height {decision.height}: decided {decision.block_id.hex()[:16]}, "
                f"others decided {agreed.block_id.hex()[:16]}",
            )
        elif decision.app_state_root != agreed.app_state_root:
            self.fail(
                STATE_ROOT,
                time_us,
                node,
                f"height {decision.height}: state root {decision.app_state_root.hex()[:16]}, "
                f"others {agreed.app_state_root.hex()[:16]}",
            )

    def _check_new_height(self, node: int, time_us: int, decision: Decision) -> None:
        log = self.log
        height = decision.height
        parent = log.heights.get(height - 1)
        expected_parent = ZERO_HASH if height == 1 else None
        if parent is not None:
            expected_parent = parent.decision.block_id
        named_parent = decision.previous_block_id
        if None not in (expected_parent, named_parent) and named_parent != expected_parent:
            self.fail(VALIDITY, time_us, node, f"height {height} does not extend the chain")
        self._check_txs(node, time_us, decision)
        self._check_liveness_gap(time_us)
        if len(log.heights) >= MAX_HEIGHTS_RECORDED:
            raise LimitExceeded(f"more than {MAX_HEIGHTS_RECORDED} heights decided in one run")
        record = HeightRecord(decision, time_us, time_us)
        log.heights[height] = record
        log.last_new_height_us = time_us
        self._forget_signatures_below(height - DOUBLE_SIGN_WINDOW_HEIGHTS)
        if self.on_commit is not None:
            self.on_commit(height, record)

    def _check_txs(self, node: int, time_us: int, decision: Decision) -> None:
        for tx_hash in decision.tx_hashes:
            if tx_hash not in self._known_tx:
                self.fail(
                    VALIDITY,
                    time_us,
                    node,
                    f"height {decision.height} holds tx {tx_hash.hex()[:16]} no client sent",
                )
                continue
            earlier = self._tx_height.setdefault(tx_hash, decision.height)
            if earlier != decision.height:
                self.fail(
                    VALIDITY,
                    time_us,
                    node,
                    f"tx {tx_hash.hex()[:16]} committed at {earlier} and {decision.height}",
                )
        self.committed_txs += len(decision.tx_hashes)

    # --- signatures and accusations --------------------------------------------------------------

    def on_signed_message(self, node: int, time_us: int, envelope: Envelope) -> None:
        """Check an honest node's vote or proposal against what it signed before: only
        messages signed with the node's own key (``own_keys``) are its signatures; what it
        relays is not."""
        try:
            message = envelope.decoded()
        except DecodeError as exc:
            self.fail(DOUBLE_SIGN, time_us, node, f"sent an undecodable signed message: {exc}")
            return
        if not isinstance(message, Vote | Proposal):
            return
        own_key = self._own_keys[node] if node < len(self._own_keys) else None
        double = self._ledger.record(own_key, message)
        if double is not None:
            self.fail(
                DOUBLE_SIGN,
                time_us,
                node,
                f"signed two different messages for height {double.height}, round "
                f"{double.round}, step {double.step}",
            )

    def _forget_signatures_below(self, height: int) -> None:
        self._ledger.forget_below(height)

    def on_accusation(self, node: int, time_us: int, validator: bytes) -> None:
        """An honest node holds evidence against ``validator``: it must be Byzantine."""
        self.accusations += 1
        if self._honest[node] and validator in self._honest_keys:
            self.fail(ACCUSATION, time_us, node, f"accused honest validator {validator.hex()[:16]}")

    def on_rejected(self, node: int, sender: int, reason: str) -> None:
        """Count an input a node refused (expected with spammers and faults)."""
        self.rejected_inputs += 1

    def on_node_error(self, node: int, time_us: int, what: str, error: Exception) -> None:
        """An exception escaped node code."""
        frames = traceback.extract_tb(error.__traceback__)
        where = f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""
        self.fail(NODE_ERROR, time_us, node, f"{error!r} while handling {what}{where}")

    # --- liveness --------------------------------------------------------------------------------

    def faults_healed(self, time_us: int) -> None:
        """Every fault is over from ``time_us`` on: the liveness clock starts."""
        self._healed_at_us = time_us

    def _check_liveness_gap(self, time_us: int) -> None:
        healed = self._healed_at_us
        if healed is None or time_us <= healed:
            return
        since_us = max(healed, self.log.last_new_height_us)
        if time_us - since_us > self._liveness_bound_us:
            self.fail(
                LIVENESS,
                time_us,
                None,
                f"no new height for {(time_us - since_us) / 1e6:.1f}s after faults healed "
                f"(bound {self._liveness_bound_us / 1e6:.1f}s)",
            )

    def finish(self, time_us: int, target_height: int, up: Sequence[bool]) -> None:
        """End-of-run liveness: progress since healing, and no honest up node left behind."""
        healed = self._healed_at_us
        if healed is None or time_us - healed <= self._liveness_bound_us:
            return
        log = self.log
        since_us = max(healed, log.last_new_height_us)
        if log.max_height < target_height and time_us - since_us > self._liveness_bound_us:
            self.fail(
                LIVENESS,
                time_us,
                None,
                f"stuck at height {log.max_height} (target {target_height}) for "
                f"{(time_us - since_us) / 1e6:.1f}s after faults healed",
            )
        top = min(log.max_height, target_height)
        for node, honest in enumerate(self._honest):
            if honest and up[node] and log.node_height[node] < top:
                self.fail(LIVENESS, time_us, node, f"at height {log.node_height[node]} of {top}")
                return
