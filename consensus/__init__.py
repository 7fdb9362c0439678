"""consensus: Tendermint BFT ("The latest gossip on BFT consensus", arXiv:1807.04938) as a
pure, sans-I/O state machine. No clock, no randomness, no network, no storage, no threads.

The contract in one place
=========================

A node owns one :class:`ConsensusCore` and feeds it inputs; ``core.handle(input)`` returns a
list of effects that the shell executes in order. That is the only entry point.

Inputs (:mod:`consensus.inputs`) — signatures of network messages are verified by the shell
first, with :mod:`consensus.verification`:

* ``StartHeight(height, validator_set)`` — first input, and after each ``Decide``.
* ``ProposalReceived(proposal, value_valid=None)`` — the validity of the proposed value may be
  unknown yet (block still missing) and come later as ``ValueValidity(height, value_id, ok)``.
* ``VoteReceived(vote)`` — votes of peers and this node's own signed votes.
* ``ProposeValue(height, round, value_id)`` — the answer to ``RequestValue``.
* ``TimeoutElapsed(kind, height, round)`` — the answer to ``ScheduleTimeout``.
* ``CommitCertificateReceived(certificate)`` — catch-up: decide from +2/3 precommits.

Effects (:mod:`consensus.effects`):

* ``Persist(record)`` — fsync the input log (and the record) *before* any later effect. It
  always precedes the sign effect it protects.
* ``SignAndBroadcastProposal(proposal, sign_bytes)`` / ``SignAndBroadcastVote(vote,
  sign_bytes)`` — sign with the node's key, broadcast, and feed the signed message back as
  ``ProposalReceived`` / ``VoteReceived`` (own votes count only once back, signed, so commit
  certificates always carry real signatures and the key never enters the core).
* ``ScheduleTimeout(kind, height, round, duration_ms)`` — feed back ``TimeoutElapsed``.
* ``RequestValue(height, round)`` — feed back ``ProposeValue`` (or nothing).
* ``Decide(height, round, value_id, certificate)`` — commit, then ``StartHeight(height + 1)``.
* ``ReportEvidence(evidence)`` — an equivocation, also kept in ``core.evidence``.

Bad inputs raise typed errors (:mod:`consensus.errors`) before any state changes:
``InvalidMessageError`` subclasses when a peer broke the protocol (non-validator, wrong chain,
malformed, not the proposer), ``UsageError`` when the caller broke this contract. Messages of
earlier heights or of rounds no longer tracked are ignored; messages of the next height wait in
a bounded buffer; every other collection has an explicit limit (:mod:`consensus.limits`).

Crash safety: the core is deterministic, so ``ConsensusCore.replay(chain_id, key, log)``
rebuilds it from the logged inputs since the previous height's ``StartHeight`` (the next
height's messages are buffered while the previous one runs); a :class:`SignGuard` additionally
refuses to sign anything conflicting with the last ``Persist`` record (``last_signed=``).
Observers (``own_key=None`` or a key outside the set) track votes and decide but never sign.

A shell's loop, in outline (``log`` is its write-ahead log, ``key`` its Ed25519 key)::

    for effect in core.handle(event):          # after appending ``event`` to ``log``
        match effect:
            case Persist():                     log.fsync()
            case SignAndBroadcastVote(vote, sign_bytes):
                signed = vote.with_signature(key.sign(sign_bytes))
                network.broadcast(signed); inbox.put(VoteReceived(signed))
            case ScheduleTimeout(kind, height, round_, duration_ms):
                timers.start(duration_ms, TimeoutElapsed(kind, height, round_))
            case Decide(height, _, value_id, certificate):
                store.commit(height, value_id, certificate)
                inbox.put(StartHeight(height + 1, next_validator_set))
            ...

Structure, as the paper suggests: :mod:`~consensus.votekeeper` (tallies and threshold events),
:mod:`~consensus.round_machine` (one branch per pseudo-code rule), :mod:`~consensus.driver`
(rounds of one height), :mod:`~consensus.core` (heights, routing, buffering). Signed messages
use the canonical layout of :mod:`~consensus.sign_bytes`.
"""

from consensus.commit import build_commit_certificate, check_certificate_quorum
from consensus.core import ConsensusCore
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
from consensus.errors import (
    ConsensusError,
    InvalidCertificateError,
    InvalidConfigError,
    InvalidEvidenceError,
    InvalidMessageError,
    InvalidSignatureError,
    InvalidValidatorSetError,
    MalformedMessageError,
    NotProposerError,
    UnknownValidatorError,
    UsageError,
    WrongChainError,
)
from consensus.evidence import DuplicateVoteEvidence, EvidenceStore
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
from consensus.round_machine import RoundState, Step
from consensus.sign_bytes import (
    parse_sign_bytes,
    proposal_sign_bytes,
    proposal_sign_bytes_of,
    vote_sign_bytes,
    vote_sign_bytes_of,
)
from consensus.sign_guard import SignGuard, SigningRecord, SigningStep
from consensus.stats import CoreStats
from consensus.timeouts import TimeoutConfig, TimeoutKind
from consensus.types import (
    CommitCertificate,
    CommitSignature,
    Proposal,
    PublicKey,
    Validator,
    ValueId,
    Vote,
    VoteType,
)
from consensus.validator_schedule import ValidatorSetSchedule
from consensus.validator_set import ValidatorSet, ValidatorUpdate
from consensus.verification import (
    verify_commit_certificate,
    verify_duplicate_vote_evidence,
    verify_proposal,
    verify_vote,
)

__all__ = [
    "CommitCertificate",
    "CommitCertificateReceived",
    "CommitSignature",
    "ConsensusCore",
    "ConsensusError",
    "CoreStats",
    "Decide",
    "DuplicateVoteEvidence",
    "Effect",
    "EvidenceStore",
    "Input",
    "InvalidCertificateError",
    "InvalidConfigError",
    "InvalidEvidenceError",
    "InvalidMessageError",
    "InvalidSignatureError",
    "InvalidValidatorSetError",
    "MalformedMessageError",
    "NotProposerError",
    "Persist",
    "Proposal",
    "ProposalReceived",
    "ProposeValue",
    "PublicKey",
    "ReportEvidence",
    "RequestValue",
    "RoundState",
    "ScheduleTimeout",
    "SignAndBroadcastProposal",
    "SignAndBroadcastVote",
    "SignGuard",
    "SigningRecord",
    "SigningStep",
    "StartHeight",
    "Step",
    "TimeoutConfig",
    "TimeoutElapsed",
    "TimeoutKind",
    "UnknownValidatorError",
    "UsageError",
    "Validator",
    "ValidatorSet",
    "ValidatorSetSchedule",
    "ValidatorUpdate",
    "ValueId",
    "ValueValidity",
    "Vote",
    "VoteReceived",
    "VoteType",
    "WrongChainError",
    "build_commit_certificate",
    "check_certificate_quorum",
    "parse_sign_bytes",
    "proposal_sign_bytes",
    "proposal_sign_bytes_of",
    "verify_commit_certificate",
    "verify_duplicate_vote_evidence",
    "verify_proposal",
    "verify_vote",
    "vote_sign_bytes",
    "vote_sign_bytes_of",
]
