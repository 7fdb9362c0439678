"""``ConsensusCore``: the single entry point of the consensus state machine.

``handle(input) -> list[Effect]`` checks an input, routes it by height (current height: to the
height driver; a near future height: to a bounded buffer; an earlier height: ignored) and
returns what the shell must do. The core is deterministic: the same inputs in the same order
give the same effects and state, which is what :meth:`ConsensusCore.replay` relies on after a
crash. See the package docstring for the whole input/effect contract.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from consensus.driver import HeightDriver
from consensus.effects import Effect, Persist
from consensus.errors import ConsensusError, InvalidConfigError, MalformedMessageError, UsageError
from consensus.evidence import EvidenceStore
from consensus.future_buffer import LOCAL_SENDER, FutureBuffer
from consensus.inputs import (
    CommitCertificateReceived,
    Input,
    ProposalReceived,
    ProposeValue,
    StartHeight,
    TimeoutElapsed,
    ValueValidity,
    VoteReceived,
)
from consensus.limits import FUTURE_HEIGHTS_BUFFERED
from consensus.round_machine import RoundState
from consensus.sign_guard import SignGuard, SigningRecord
from consensus.stats import CoreStats
from consensus.timeouts import TimeoutConfig, TimeoutKind
from consensus.types import PublicKey
from consensus.validation import (
    check_certificate_fields,
    check_chain_id,
    check_expected_chain,
    check_height,
    check_proposal_fields,
    check_public_key,
    check_round,
    check_value_id,
    check_vote_fields,
)
from consensus.validator_set import ValidatorSet


class ConsensusCore:
    """Tendermint consensus for one node, as a pure state machine (see the package docs)."""

    __slots__ = (
        "_chain_id",
        "_driver",
        "_evidence",
        "_future",
        "_guard",
        "_own_key",
        "_stats",
        "_timeouts",
    )

    def __init__(
        self,
        chain_id: str,
        own_key: PublicKey | None = None,
        *,
        timeouts: TimeoutConfig | None = None,
        last_signed: SigningRecord | None = None,
        evidence: EvidenceStore | None = None,
    ) -> None:
        """A core for ``chain_id``; ``own_key`` None runs an observer that never signs.

        ``last_signed`` is the record of the latest ``Persist`` effect of a previous run
        (restart without an input log); ``evidence`` lets the application share its store.
        Raises InvalidConfigError for a bad chain id or key.
        """
        try:
            check_chain_id(chain_id)
            if own_key is not None:
                check_public_key(own_key, "own")
        except MalformedMessageError as exc:
            raise InvalidConfigError(str(exc)) from exc
        self._chain_id = chain_id
        self._own_key = own_key
        self._timeouts = timeouts if timeouts is not None else TimeoutConfig()
        self._guard = SignGuard(last_signed)
        self._evidence = evidence if evidence is not None else EvidenceStore()
        self._stats = CoreStats()
        self._future = FutureBuffer()
        self._driver: HeightDriver | None = None

    @classmethod
    def replay(
        cls,
        chain_id: str,
        own_key: PublicKey | None,
        log: Iterable[Input],
        *,
        timeouts: TimeoutConfig | None = None,
        last_signed: SigningRecord | None = None,
    ) -> tuple[ConsensusCore, list[Effect]]:
        """Rebuild a core from its input log, which must start at a ``StartHeight`` no later
        than the one of the height before the current one (see ``Persist``).

        Returns the core, in the state it had after the last logged input, and the effects
        the log produced since its last ``StartHeight``, minus ``Persist`` (already durable).
        Effects of earlier heights are dropped: those heights are committed, and their part of
        the log only serves to refill the buffer of messages that arrived early for the
        current one. Executing the returned effects again is safe: broadcasts repeat identical
        signed messages, stale timeouts are ignored, and the shell ignores a ``Decide`` of a
        height it committed. Inputs that were rejected when first handled are rejected again,
        without effect. If the block store holds a height the replayed core has not decided
        (the log lost its last inputs), feed ``StartHeight`` for the next height, as after a
        ``Decide``.
        """
        core = cls(chain_id, own_key, timeouts=timeouts, last_signed=last_signed)
        effects: list[Effect] = []
        for event in log:
            try:
                produced = core.handle(event)
            except ConsensusError:
                continue
            if isinstance(event, StartHeight):
                effects = []
            effects.extend(e for e in produced if not isinstance(e, Persist))
        return core, effects

    # --- read-only views -----------------------------------------------------------------------

    @property
    def chain_id(self) -> str:
        """The chain this core decides for."""
        return self._chain_id

    @property
    def own_key(self) -> PublicKey | None:
        """This node's public key (None for an observer)."""
        return self._own_key

    @property
    def height(self) -> int:
        """The current height (0 before the first StartHeight)."""
        return 0 if self._driver is None else self._driver.height

    @property
    def round_state(self) -> RoundState | None:
        """The round machine's state at the current height (None before the first height)."""
        return None if self._driver is None else self._driver.state

    @property
    def validator_set(self) -> ValidatorSet | None:
        """The current height's validator set."""
        return None if self._driver is None else self._driver.validator_set

    @property
    def is_validator(self) -> bool:
        """True iff this node signs at the current height."""
        return self._driver is not None and self._driver.is_validator

    @property
    def evidence(self) -> EvidenceStore:
        """Pending equivocation evidence for the application to put into blocks."""
        return self._evidence

    @property
    def last_signed(self) -> SigningRecord | None:
        """The latest signing record (what the latest Persist effect carried)."""
        return self._guard.last

    @property
    def stats(self) -> CoreStats:
        """Counters of accepted, ignored and dropped inputs."""
        return self._stats

    @property
    def tracked_rounds(self) -> int:
        """Rounds of the current height whose messages are kept (0 before the first height)."""
        return 0 if self._driver is None else self._driver.tracked_rounds

    @property
    def buffered_inputs(self) -> int:
        """Inputs waiting for a future height."""
        return len(self._future)

    # --- the entry point -----------------------------------------------------------------------

    def handle(self, event: Input) -> list[Effect]:
        """Process one input; returns the effects to execute, in order.

        Raises a typed ConsensusError, without changing any state, for a bad input:
        InvalidMessageError subclasses for a peer's bad message, UsageError for a caller bug.
        """
        handler = _HANDLERS.get(type(event))
        if handler is None:
            raise UsageError(f"not a consensus input: {type(event).__name__}")
        self._stats.inputs_handled += 1
        return handler(self, event)

    def _on_start_height(self, event: StartHeight) -> list[Effect]:
        _check_local(check_height, event.height)
        if not isinstance(event.validator_set, ValidatorSet):
            raise UsageError("StartHeight needs a ValidatorSet")
        if event.height <= self.height:
            raise UsageError(f"height {event.height} is not above the current {self.height}")
        self._driver = HeightDriver(
            self._chain_id,
            event.height,
            event.validator_set,
            own_key=self._own_key,
            timeouts=self._timeouts,
            guard=self._guard,
            evidence=self._evidence,
            stats=self._stats,
        )
        effects = self._driver.start()
        for buffered in self._future.take(event.height):
            try:
                effects.extend(_HANDLERS[type(buffered)](self, buffered))
            except ConsensusError:
                self._stats.rejected_buffered_inputs += 1
        return effects

    def _on_vote(self, event: VoteReceived) -> list[Effect]:
        vote = event.vote
        check_vote_fields(vote)
        check_expected_chain(vote.chain_id, self._chain_id)
        driver = self._route(vote.height, vote.validator, event)
        return [] if driver is None else driver.on_vote(vote)

    def _on_proposal(self, event: ProposalReceived) -> list[Effect]:
        proposal = event.proposal
        if event.value_valid is not None and type(event.value_valid) is not bool:
            raise UsageError("value_valid must be True, False or None")
        check_proposal_fields(proposal)
        check_expected_chain(proposal.chain_id, self._chain_id)
        driver = self._route(proposal.height, proposal.proposer, event)
        return [] if driver is None else driver.on_proposal(proposal, event.value_valid)

    def _on_validity(self, event: ValueValidity) -> list[Effect]:
        _check_local(check_height, event.height)
        _check_local(check_value_id, event.value_id)
        if type(event.valid) is not bool:
            raise UsageError("a validity verdict is True or False")
        driver = self._route(event.height, LOCAL_SENDER, event)
        return [] if driver is None else driver.on_validity(event.value_id, event.valid)

    def _on_propose_value(self, event: ProposeValue) -> list[Effect]:
        _check_local(check_height, event.height)
        _check_local(check_round, event.round)
        _check_local(check_value_id, event.value_id)
        driver = self._require_driver()
        if event.height > driver.height:
            raise UsageError(f"no value was requested for future height {event.height}")
        if event.height < driver.height:
            self._stats.stale_inputs += 1
            return []
        return driver.on_propose_value(event.round, event.value_id)

    def _on_timeout(self, event: TimeoutElapsed) -> list[Effect]:
        if not isinstance(event.kind, TimeoutKind):
            raise UsageError(f"unknown timeout kind {event.kind!r}")
        _check_local(check_height, event.height)
        _check_local(check_round, event.round)
        driver = self._require_driver()
        if event.height != driver.height:
            self._stats.stale_inputs += 1
            return []
        return driver.on_timeout(event.kind, event.round)

    def _on_certificate(self, event: CommitCertificateReceived) -> list[Effect]:
        certificate = event.certificate
        check_certificate_fields(certificate)
        check_expected_chain(certificate.chain_id, self._chain_id)
        driver = self._require_driver()
        if certificate.height != driver.height:
            self._stats.stale_inputs += 1  # other heights are block sync's business
            return []
        return driver.on_certificate(certificate)

    # --- routing -------------------------------------------------------------------------------

    def _require_driver(self) -> HeightDriver:
        if self._driver is None:
            raise UsageError("feed StartHeight before any other input")
        return self._driver

    def _route(self, height: int, sender: bytes, event: Input) -> HeightDriver | None:
        """The driver for ``height``; None after buffering or ignoring ``event``."""
        driver = self._require_driver()
        if height == driver.height:
            return driver
        if height < driver.height:
            self._stats.stale_inputs += 1
        elif height > driver.height + FUTURE_HEIGHTS_BUFFERED or not self._future.add(
            height, sender, event
        ):
            self._stats.dropped_inputs += 1
        return None


def _check_local(check: Callable[[object], None], value: object) -> None:
    """Run a field check on a value the shell produced: a failure is the caller's bug."""
    try:
        check(value)
    except MalformedMessageError as exc:
        raise UsageError(str(exc)) from exc


# Each handler takes its own input type; the table is keyed by that type, hence ``Any``.
_HANDLERS: dict[type, Callable[[ConsensusCore, Any], list[Effect]]] = {
    StartHeight: ConsensusCore._on_start_height,
    VoteReceived: ConsensusCore._on_vote,
    ProposalReceived: ConsensusCore._on_proposal,
    ValueValidity: ConsensusCore._on_validity,
    ProposeValue: ConsensusCore._on_propose_value,
    TimeoutElapsed: ConsensusCore._on_timeout,
    CommitCertificateReceived: ConsensusCore._on_certificate,
}
