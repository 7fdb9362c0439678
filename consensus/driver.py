"""The height driver: the rounds of one height.

It owns the vote keeper, the proposals and the application's validity verdicts of the height,
turns what they establish into round-machine events (the paper's "upon" conditions), applies
them with :func:`consensus.round_machine.apply` until no rule fires, and turns the round
machine's outputs into effects. Conditions are re-evaluated only when a fact changed (a
threshold event, a proposal, a verdict, a timeout or a step change), so a vote that crosses no
threshold costs O(1).

The caller (:class:`consensus.core.ConsensusCore`) has already checked form, chain id and
height; the driver checks membership, the proposer and the round window, and raises before
changing any state.
"""

from __future__ import annotations

from collections.abc import Iterator

from consensus import round_machine as rm
from consensus.commit import build_commit_certificate, check_certificate_quorum
from consensus.effects import (
    Decide,
    Effect,
    Persist,
    ReportEvidence,
    RequestValue,
    ScheduleTimeout,
    SignAndBroadcastProposal,
    SignAndBroadcastVote,
)
from consensus.errors import NotProposerError, UnknownValidatorError, UsageError
from consensus.evidence import EvidenceStore
from consensus.limits import (
    MAX_PROPOSALS_PER_ROUND,
    MAX_PROTECTED_QUORUM_ROUNDS,
    MAX_VALUE_VERDICTS,
    PROPOSAL_LOOKAHEAD_ROUNDS,
)
from consensus.round_window import RoundWindow
from consensus.sign_bytes import proposal_sign_bytes, vote_sign_bytes
from consensus.sign_guard import SignGuard, SigningRecord, SigningStep
from consensus.stats import CoreStats
from consensus.timeouts import TimeoutConfig, TimeoutKind
from consensus.types import CommitCertificate, Proposal, PublicKey, ValueId, Vote, VoteType
from consensus.validator_set import ValidatorSet
from consensus.votekeeper import ThresholdKind, VoteKeeper, VoteStatus

MAX_RULE_FIRINGS_PER_INPUT = 64
"""Rules one input may fire (each firing advances the state; a handful ever fire)."""

_SIGNING_STEP = {VoteType.PREVOTE: SigningStep.PREVOTE, VoteType.PRECOMMIT: SigningStep.PRECOMMIT}


class HeightDriver:
    """Consensus on one height for one node (a validator, or an observer if ``own_key`` is
    None or not in the set)."""

    __slots__ = (
        "_chain_id",
        "_commit_quorums",
        "_evidence",
        "_guard",
        "_height",
        "_keeper",
        "_own_key",
        "_proposals",
        "_skip_round",
        "_state",
        "_stats",
        "_timeouts",
        "_validator_set",
        "_verdicts",
        "_window",
    )

    def __init__(
        self,
        chain_id: str,
        height: int,
        validator_set: ValidatorSet,
        *,
        own_key: PublicKey | None,
        timeouts: TimeoutConfig,
        guard: SignGuard,
        evidence: EvidenceStore,
        stats: CoreStats,
    ) -> None:
        self._chain_id = chain_id
        self._height = height
        self._validator_set = validator_set
        self._own_key = own_key if own_key in validator_set else None
        self._timeouts = timeouts
        self._guard = guard
        self._evidence = evidence
        self._stats = stats
        self._keeper = VoteKeeper(validator_set)
        self._window = RoundWindow()
        self._proposals: dict[int, dict[ValueId, Proposal]] = {}
        self._verdicts: dict[ValueId, bool] = {}
        self._commit_quorums: dict[int, ValueId] = {}
        self._skip_round = -1
        self._state = rm.RoundState(height=height)

    # --- read-only views -----------------------------------------------------------------------

    @property
    def height(self) -> int:
        """The height being decided."""
        return self._height

    @property
    def state(self) -> rm.RoundState:
        """The round machine's state."""
        return self._state

    @property
    def validator_set(self) -> ValidatorSet:
        """The height's validator set."""
        return self._validator_set

    @property
    def keeper(self) -> VoteKeeper:
        """The height's vote keeper (read it, do not add to it)."""
        return self._keeper

    @property
    def is_validator(self) -> bool:
        """True iff this node signs at this height."""
        return self._own_key is not None

    @property
    def tracked_rounds(self) -> int:
        """Rounds whose messages are currently kept (bounded by the round window)."""
        return len(self._window)

    # --- inputs --------------------------------------------------------------------------------

    def start(self) -> list[Effect]:
        """Enter round 0 (paper: StartRound(0))."""
        effects: list[Effect] = []
        self._enter_round(0, effects)
        effects.extend(self._run_rules())
        return effects

    def on_vote(self, vote: Vote) -> list[Effect]:
        """A well-formed vote of this height."""
        if vote.validator not in self._validator_set:
            raise UnknownValidatorError(f"{vote.validator.hex()} is not a validator")
        if not self._window.admit(vote.round, vote.validator):
            self._count_unadmitted(vote.round)
            return []
        result = self._keeper.add_vote(vote)
        if result.status is VoteStatus.DUPLICATE:
            self._stats.duplicate_votes += 1
            return []
        effects: list[Effect] = []
        if result.evidence is not None:
            self._stats.equivocations += 1
            if self._evidence.add(result.evidence):
                effects.append(ReportEvidence(result.evidence))
        if not result.events:
            return effects
        for event in result.events:
            if event.kind is ThresholdKind.PRECOMMIT_VALUE:
                assert event.value_id is not None
                self._commit_quorums[event.round] = event.value_id
            elif event.kind is ThresholdKind.SKIP_ROUND:
                self._skip_round = max(self._skip_round, event.round)
        effects.extend(self._run_rules())
        return effects

    def on_proposal(self, proposal: Proposal, value_valid: bool | None) -> list[Effect]:
        """A well-formed proposal of this height, with the value's verdict if known."""
        round_ = proposal.round
        if proposal.proposer not in self._validator_set:
            raise UnknownValidatorError(f"{proposal.proposer.hex()} is not a validator")
        if round_ > self._state.round + PROPOSAL_LOOKAHEAD_ROUNDS:
            self._stats.dropped_inputs += 1
            return []
        if self._validator_set.proposer(round_) != proposal.proposer:
            raise NotProposerError(
                f"{proposal.proposer.hex()} is not the proposer of round {round_}"
            )
        if value_valid is not None:
            self._check_verdict(proposal.value_id, value_valid)
            self._record_verdict(proposal.value_id, value_valid)
        if not self._window.admit(round_, proposal.proposer):
            self._count_unadmitted(round_)
            return []
        by_value = self._proposals.setdefault(round_, {})
        if proposal.value_id not in by_value:
            if by_value:
                self._stats.conflicting_proposals += 1
            if len(by_value) >= MAX_PROPOSALS_PER_ROUND:
                self._stats.dropped_inputs += 1
                return []
            by_value[proposal.value_id] = proposal
            self._track_cited_round(proposal)
        return self._run_rules()

    def on_validity(self, value_id: ValueId, valid: bool) -> list[Effect]:
        """The application's verdict on ``value_id``; raises UsageError if it changes."""
        self._check_verdict(value_id, valid)
        if value_id in self._verdicts:
            return []
        self._record_verdict(value_id, valid)
        return self._run_rules()

    def on_propose_value(self, round_: int, value_id: ValueId) -> list[Effect]:
        """The application's value for ``round_`` (L18); ignored if no longer awaited."""
        if self._verdicts.get(value_id) is False:
            raise UsageError("the application proposes a value it judged invalid")
        transition = rm.apply(self._state, rm.ValueReady(round_, value_id))
        if transition is None:
            self._stats.stale_inputs += 1
            return []
        self._record_verdict(value_id, True)
        return self._apply(transition)

    def on_timeout(self, kind: TimeoutKind, round_: int) -> list[Effect]:
        """A timeout of this height fired (L57, L61, L65); stale ones are ignored."""
        transition = rm.apply(self._state, rm.TimeoutFired(kind, round_))
        if transition is None:
            self._stats.stale_inputs += 1
            return []
        return self._apply(transition)

    def on_certificate(self, certificate: CommitCertificate) -> list[Effect]:
        """A certificate of this height (signatures verified by the shell): decide its value.

        Raises InvalidCertificateError if its signers are not a quorum of the set.
        """
        check_certificate_quorum(certificate, self._validator_set, self._chain_id)
        event = rm.ProposalWithCommitQuorum(certificate.round, certificate.value_id)
        transition = rm.apply(self._state, event)
        if transition is None:  # already decided
            return []
        self._state = transition.state
        return [Decide(self._height, certificate.round, certificate.value_id, certificate)]

    # --- rules ---------------------------------------------------------------------------------

    def _run_rules(self) -> list[Effect]:
        effects: list[Effect] = []
        for _ in range(MAX_RULE_FIRINGS_PER_INPUT):
            if self._state.step is rm.Step.COMMIT:
                return effects
            transition = self._first_transition()
            if transition is None:
                return effects
            effects.extend(self._apply(transition, run_rules=False))
        raise AssertionError("round rules did not settle; each firing must advance the state")

    def _first_transition(self) -> rm.Transition | None:
        state = self._state
        for event in self._enabled_events(state.round):
            transition = rm.apply(state, event)
            if transition is not None:
                return transition
        return None

    def _enabled_events(self, round_: int) -> Iterator[rm.RoundEvent]:
        """Facts established by the message log, most decisive first (the machine checks
        the step guards)."""
        keeper, verdicts = self._keeper, self._verdicts
        for quorum_round, value_id in self._commit_quorums.items():
            if verdicts.get(value_id) and value_id in self._proposals.get(quorum_round, ()):
                yield rm.ProposalWithCommitQuorum(quorum_round, value_id)  # L49
        if self._skip_round > round_:
            yield rm.RoundSkip(self._skip_round)  # L55
        for value_id, proposal in self._proposals.get(round_, {}).items():
            verdict = verdicts.get(value_id)
            if verdict is None:
                continue
            valid_round = proposal.valid_round
            if valid_round == -1:
                yield rm.ProposalFresh(round_, value_id, verdict)  # L22
            elif keeper.has_polka_for(valid_round, value_id):
                yield rm.ProposalWithPriorPolka(round_, value_id, valid_round, verdict)  # L28
            if verdict and keeper.has_polka_for(round_, value_id):
                yield rm.ProposalWithPolka(round_, value_id)  # L36
        if keeper.has_polka_any(round_):
            yield rm.PolkaAny(round_)  # L34
        if keeper.has_polka_nil(round_):
            yield rm.PolkaNil(round_)  # L44
        if keeper.has_precommit_any(round_):
            yield rm.PrecommitAny(round_)  # L47

    def _apply(self, transition: rm.Transition, run_rules: bool = True) -> list[Effect]:
        self._state = transition.state
        effects: list[Effect] = []
        for output in transition.outputs:
            self._execute(output, effects)
        if run_rules:
            effects.extend(self._run_rules())
        return effects

    def _execute(self, output: rm.RoundOutput, effects: list[Effect]) -> None:
        height = self._height
        if isinstance(output, rm.VoteOut):
            self._sign_vote(output, effects)
        elif isinstance(output, rm.TimeoutOut):
            duration_ms = self._timeouts.duration_ms(output.kind, output.round)
            effects.append(ScheduleTimeout(output.kind, height, output.round, duration_ms))
        elif isinstance(output, rm.ProposeOut):
            self._sign_proposal(output, effects)
        elif isinstance(output, rm.RequestValueOut):
            effects.append(RequestValue(height, output.round))
        elif isinstance(output, rm.DecideOut):
            precommits = self._keeper.votes_for(output.round, VoteType.PRECOMMIT, output.value_id)
            certificate = build_commit_certificate(
                self._chain_id, height, output.round, output.value_id, precommits
            )
            effects.append(Decide(height, output.round, output.value_id, certificate))
        else:
            self._enter_round(output.round, effects)

    def _enter_round(self, round_: int, effects: list[Effect]) -> None:
        state = self._state
        self._drop_rounds(
            self._window.advance(round_, self._protected_rounds(), self._cited(round_))
        )
        is_proposer = (
            self._own_key is not None and self._validator_set.proposer(round_) == self._own_key
        )
        transition = rm.apply(state, rm.StartRound(round_, is_proposer))
        assert transition is not None, "a new round always starts"
        self._state = transition.state
        for output in transition.outputs:
            self._execute(output, effects)

    # --- rounds kept ---------------------------------------------------------------------------

    def _protected_rounds(self) -> set[int]:
        """Rounds kept however old: the locked and valid rounds, the latest commit quorums."""
        state = self._state
        quorum_rounds = sorted(self._commit_quorums)[-MAX_PROTECTED_QUORUM_ROUNDS:]
        return {state.locked_round, state.valid_round, *quorum_rounds}

    def _cited(self, from_round: int) -> list[int]:
        """The valid rounds named by the kept proposals of ``from_round`` and later, nearest
        citing round first: L28 needs their polka (see ``consensus.round_window``)."""
        cited: list[int] = []
        for round_ in sorted(r for r in self._proposals if r >= from_round):
            cited.extend(p.valid_round for p in self._proposals[round_].values())
        return [r for r in cited if r >= 0]

    def _track_cited_round(self, proposal: Proposal) -> None:
        """A proposal of the current or a later round just kept names a valid round that
        the window no longer tracks: let its votes in (within MAX_CITED_ROUNDS)."""
        current = self._state.round
        if proposal.valid_round < 0 or proposal.round < current:
            return
        if self._window.is_tracked(proposal.valid_round):
            return
        self._drop_rounds(self._window.cite(self._cited(current), self._protected_rounds()))

    def _drop_rounds(self, dropped: list[int]) -> None:
        for dropped_round in dropped:
            self._proposals.pop(dropped_round, None)
            self._commit_quorums.pop(dropped_round, None)
        self._keeper.drop_rounds(dropped)

    # --- signing -------------------------------------------------------------------------------

    def _sign_vote(self, output: rm.VoteOut, effects: list[Effect]) -> None:
        if self._own_key is None:
            return  # an observer follows the rules but never signs
        vote = Vote(
            self._chain_id,
            self._height,
            output.round,
            output.vote_type,
            output.value_id,
            self._own_key,
            b"",
        )
        sign_bytes = vote_sign_bytes(
            self._chain_id, self._height, output.round, output.vote_type, output.value_id
        )
        record = SigningRecord(
            self._height, output.round, _SIGNING_STEP[output.vote_type], sign_bytes
        )
        if not self._guard.permit(record):
            self._stats.refused_signatures += 1
            return
        effects.append(Persist(record))
        effects.append(SignAndBroadcastVote(vote, sign_bytes))

    def _sign_proposal(self, output: rm.ProposeOut, effects: list[Effect]) -> None:
        assert self._own_key is not None, "only a validator is ever the proposer"
        self._record_verdict(output.value_id, True)  # our own value, valid by construction
        proposal = Proposal(
            self._chain_id,
            self._height,
            output.round,
            output.value_id,
            output.valid_round,
            self._own_key,
            b"",
        )
        sign_bytes = proposal_sign_bytes(
            self._chain_id, self._height, output.round, output.value_id, output.valid_round
        )
        record = SigningRecord(self._height, output.round, SigningStep.PROPOSAL, sign_bytes)
        if not self._guard.permit(record):
            self._stats.refused_signatures += 1
            return
        effects.append(Persist(record))
        effects.append(SignAndBroadcastProposal(proposal, sign_bytes))

    # --- bookkeeping ---------------------------------------------------------------------------

    def _count_unadmitted(self, round_: int) -> None:
        if round_ < self._state.round:
            self._stats.stale_inputs += 1
        else:
            self._stats.dropped_inputs += 1

    def _check_verdict(self, value_id: ValueId, valid: bool) -> None:
        known = self._verdicts.get(value_id)
        if known is not None and known != valid:
            raise UsageError(f"conflicting validity verdicts for value {value_id.hex()}")

    def _record_verdict(self, value_id: ValueId, valid: bool) -> None:
        if value_id in self._verdicts:
            return
        if len(self._verdicts) >= MAX_VALUE_VERDICTS:
            pinned = (self._state.locked_value, self._state.valid_value)
            oldest = next(v for v in self._verdicts if v not in pinned)
            del self._verdicts[oldest]
        self._verdicts[value_id] = valid
