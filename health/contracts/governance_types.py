"""Governance's records, codecs, state keys and reads, and the payloads clients build.

The state layout (``governance/m``, ``p``, ``q``, ``v``, ``o``, ``n``) and what each record
means are described in ``health.contracts.governance``; this module holds their data types,
their canonical encodings, the keys they live under and the readers of them, and the
transaction payload builders of ``governance.propose`` and ``governance.vote``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Final

from consensus.limits import MAX_TOTAL_VOTING_POWER
from health.contracts.common import ID_BYTES, read_struct, u64
from health.contracts.identity import ADMISSION_CODEC, Admission
from node.app.module import KeyReader
from node.app.view import MeteredReader
from node.codec import Bytes, EnumOf, Nested, StructCodec, Text, UInt
from node.errors import DecodeError
from node.types import PUBLIC_KEY_BYTES

GOVERNANCE: Final = "governance"
MEMBER_PREFIX: Final = b"governance/m/"
PROPOSAL_PREFIX: Final = b"governance/q/"
VOTE_PREFIX: Final = b"governance/v/"
OPEN_PREFIX: Final = b"governance/o/"
NEXT_ID_KEY: Final = b"governance/n"
FIRST_PROPOSAL_ID: Final = 1

MAX_MEMBERS: Final = 256
"""Member records ever (removed members stay, as history): bounds every roster scan."""
MAX_OPEN_PROPOSALS: Final = 16
"""Open proposals per member at a time (a member cannot flood the due-work queue)."""
MIN_WEIGHT: Final = 1
MAX_WEIGHT: Final = 1000
MAX_VALIDATOR_POWER: Final = MAX_TOTAL_VOTING_POWER
MAX_REASON_CHARS: Final = 140
MAX_BODY_BYTES: Final = 1024
MAX_OUTCOME_CHARS: Final = 256
DEADLINE_TASK: Final = "deadline"


class MemberStatus(IntEnum):
    """Where a member stands: only ACTIVE members propose, vote and count in the total."""

    ACTIVE = 1
    SUSPENDED = 2
    REMOVED = 3


class ProposalKind(IntEnum):
    """What a proposal does when it passes (its body's codec follows from it)."""

    ADMIT_INSTITUTION = 1
    ADMIT_AUDITOR = 2
    SUSPEND = 3
    REINSTATE = 4
    REMOVE = 5
    SET_POWER = 6
    SET_PARAM = 7
    PENALIZE = 8


class ProposalStatus(IntEnum):
    """OPEN until decided; FAILED: it passed but its execution was refused."""

    OPEN = 1
    PASSED = 2
    REJECTED = 3
    FAILED = 4


class Choice(IntEnum):
    """A member's vote."""

    YES = 1
    NO = 2
    ABSTAIN = 3


# -- records ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Member:
    """A member institution (``governance/m/<institution>``)."""

    validator_key: bytes
    power: int
    weight: int
    status: MemberStatus
    admitted_height: int

    @property
    def effective_power(self) -> int:
        """The validator power this member has in consensus: ``power`` only while ACTIVE."""
        return self.power if self.status is MemberStatus.ACTIVE else 0


@dataclass(frozen=True, slots=True)
class Proposal:
    """A proposal (``governance/q/<id>``). ``deadline_task``: the id of its deadline task;
    ``outcome``: why it was rejected or failed ("" while open and when it passed)."""

    id: int
    proposer: bytes
    kind: ProposalKind
    body: bytes
    reason: str
    created_ms: int
    deadline_ms: int
    status: ProposalStatus
    yes_weight: int
    no_weight: int
    abstain_weight: int
    deadline_task: bytes
    outcome: str


@dataclass(frozen=True, slots=True)
class Ballot:
    """A member's vote on a proposal (``governance/v/<id><member>``) and its weight then."""

    choice: Choice
    weight: int


@dataclass(frozen=True, slots=True)
class GenesisMember:
    """A member from genesis (its institution must be a genesis identity of ``identity``)."""

    institution: bytes
    validator_key: bytes
    power: int
    weight: int


# -- payloads and proposal bodies ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProposePayload:
    """``governance.propose``: a proposal of ``kind`` with its encoded ``body``."""

    kind: ProposalKind
    body: bytes
    reason: str


@dataclass(frozen=True, slots=True)
class VotePayload:
    """``governance.vote``: ``choice`` on proposal ``proposal``."""

    proposal: int
    choice: Choice


@dataclass(frozen=True, slots=True)
class InstitutionAdmission:
    """Body of ADMIT_INSTITUTION: the identity admission, and the member it becomes."""

    admission: Admission
    validator_key: bytes
    power: int
    weight: int


@dataclass(frozen=True, slots=True)
class MemberTarget:
    """Body of SUSPEND, REINSTATE and REMOVE."""

    institution: bytes


@dataclass(frozen=True, slots=True)
class PowerChange:
    """Body of SET_POWER: the member's validator power from now on."""

    institution: bytes
    power: int


@dataclass(frozen=True, slots=True)
class ParamChange:
    """Body of SET_PARAM."""

    name: str
    value: int


@dataclass(frozen=True, slots=True)
class Penalty:
    """Body of PENALIZE: the validator that equivocated at ``evidence_height``."""

    validator_key: bytes
    evidence_height: int


_ID = Bytes.exactly(ID_BYTES)
_KEY = Bytes.exactly(PUBLIC_KEY_BYTES)
_WEIGHT = UInt(MAX_WEIGHT)
_POWER = UInt(MAX_VALIDATOR_POWER)
_PARAM_NAME = Text(32)

MEMBER_CODEC: Final = StructCodec(
    Member,
    [
        ("validator_key", _KEY),
        ("power", _POWER),
        ("weight", _WEIGHT),
        ("status", EnumOf(MemberStatus)),
        ("admitted_height", UInt()),
    ],
    128,
)
PROPOSAL_CODEC: Final = StructCodec(
    Proposal,
    [
        ("id", UInt()),
        ("proposer", _ID),
        ("kind", EnumOf(ProposalKind)),
        ("body", Bytes(MAX_BODY_BYTES)),
        ("reason", Text(MAX_REASON_CHARS)),
        ("created_ms", UInt()),
        ("deadline_ms", UInt()),
        ("status", EnumOf(ProposalStatus)),
        ("yes_weight", UInt()),
        ("no_weight", UInt()),
        ("abstain_weight", UInt()),
        ("deadline_task", Bytes(64)),
        ("outcome", Text(MAX_OUTCOME_CHARS)),
    ],
    4096,
)
BALLOT_CODEC: Final = StructCodec(Ballot, [("choice", EnumOf(Choice)), ("weight", _WEIGHT)], 16)
PROPOSE_CODEC: Final = StructCodec(
    ProposePayload,
    [
        ("kind", EnumOf(ProposalKind)),
        ("body", Bytes(MAX_BODY_BYTES)),
        ("reason", Text(MAX_REASON_CHARS)),
    ],
    2048,
)
VOTE_CODEC: Final = StructCodec(VotePayload, [("proposal", UInt()), ("choice", EnumOf(Choice))], 32)
INSTITUTION_ADMISSION_CODEC: Final = StructCodec(
    InstitutionAdmission,
    [
        ("admission", Nested(ADMISSION_CODEC)),
        ("validator_key", _KEY),
        ("power", _POWER),
        ("weight", _WEIGHT),
    ],
    MAX_BODY_BYTES,
)
MEMBER_TARGET_CODEC: Final = StructCodec(MemberTarget, [("institution", _ID)], 64)
POWER_CHANGE_CODEC: Final = StructCodec(PowerChange, [("institution", _ID), ("power", _POWER)], 64)
PARAM_CHANGE_CODEC: Final = StructCodec(ParamChange, [("name", _PARAM_NAME), ("value", UInt())], 64)
PENALTY_CODEC: Final = StructCodec(
    Penalty, [("validator_key", _KEY), ("evidence_height", UInt())], 64
)
BODY_CODECS: Final[Mapping[ProposalKind, StructCodec[Any]]] = {
    ProposalKind.ADMIT_INSTITUTION: INSTITUTION_ADMISSION_CODEC,
    ProposalKind.ADMIT_AUDITOR: ADMISSION_CODEC,
    ProposalKind.SUSPEND: MEMBER_TARGET_CODEC,
    ProposalKind.REINSTATE: MEMBER_TARGET_CODEC,
    ProposalKind.REMOVE: MEMBER_TARGET_CODEC,
    ProposalKind.SET_POWER: POWER_CHANGE_CODEC,
    ProposalKind.SET_PARAM: PARAM_CHANGE_CODEC,
    ProposalKind.PENALIZE: PENALTY_CODEC,
}
"""The codec of each kind's proposal body."""


# -- keys and reads --------------------------------------------------------------------------


def member_key(institution: bytes) -> bytes:
    """The state key of a member."""
    return MEMBER_PREFIX + institution


def proposal_key(proposal_id: int) -> bytes:
    """The state key of a proposal."""
    return PROPOSAL_PREFIX + u64(proposal_id)


def vote_key(proposal_id: int, member: bytes) -> bytes:
    """The state key of ``member``'s ballot on a proposal."""
    return VOTE_PREFIX + u64(proposal_id) + member


def open_key(proposer: bytes, proposal_id: int) -> bytes:
    """The index entry of an open proposal of ``proposer``."""
    return OPEN_PREFIX + proposer + u64(proposal_id)


def get_member(reader: KeyReader, institution: bytes) -> Member | None:
    """The member ``institution``, or None."""
    return read_struct(reader, member_key(institution), MEMBER_CODEC)


def get_proposal(reader: KeyReader, proposal_id: int) -> Proposal | None:
    """The proposal ``proposal_id``, or None."""
    return read_struct(reader, proposal_key(proposal_id), PROPOSAL_CODEC)


def get_ballot(reader: KeyReader, proposal_id: int, member: bytes) -> Ballot | None:
    """``member``'s ballot on a proposal, or None."""
    return read_struct(reader, vote_key(proposal_id, member), BALLOT_CODEC)


def members(reader: MeteredReader) -> list[tuple[bytes, Member]]:
    """Every member record (at most ``MAX_MEMBERS``) in institution-id order."""
    found = []
    for key, value in reader.iterate(MEMBER_PREFIX, MAX_MEMBERS):
        try:
            found.append((key[len(MEMBER_PREFIX) :], MEMBER_CODEC.decode(value)))
        except DecodeError as exc:  # our own writes are canonical: a bug
            raise AssertionError(f"corrupt member record under {key!r}: {exc}") from exc
    return found


# -- client helpers --------------------------------------------------------------------------


def propose_payload(kind: ProposalKind, body: bytes, reason: str = "") -> bytes:
    """The payload of ``governance.propose`` for an already encoded ``body``."""
    return PROPOSE_CODEC.encode(ProposePayload(kind, body, reason))


def admit_institution_payload(
    admission: Admission, *, validator_key: bytes, power: int, weight: int, reason: str = ""
) -> bytes:
    """Propose admitting an institution (``identity.admission(...)`` builds ``admission``)."""
    body = InstitutionAdmission(admission, validator_key, power, weight)
    return propose_payload(
        ProposalKind.ADMIT_INSTITUTION, INSTITUTION_ADMISSION_CODEC.encode(body), reason
    )


def admit_auditor_payload(admission: Admission, reason: str = "") -> bytes:
    """Propose admitting an auditor."""
    return propose_payload(ProposalKind.ADMIT_AUDITOR, ADMISSION_CODEC.encode(admission), reason)


def suspend_payload(institution: bytes, reason: str = "") -> bytes:
    """Propose suspending a member (it can no longer act; its validator power goes to 0)."""
    body = MEMBER_TARGET_CODEC.encode(MemberTarget(institution))
    return propose_payload(ProposalKind.SUSPEND, body, reason)


def reinstate_payload(institution: bytes, reason: str = "") -> bytes:
    """Propose reinstating a suspended member (its power is restored)."""
    body = MEMBER_TARGET_CODEC.encode(MemberTarget(institution))
    return propose_payload(ProposalKind.REINSTATE, body, reason)


def remove_payload(institution: bytes, reason: str = "") -> bytes:
    """Propose removing a member for good."""
    body = MEMBER_TARGET_CODEC.encode(MemberTarget(institution))
    return propose_payload(ProposalKind.REMOVE, body, reason)


def set_power_payload(institution: bytes, power: int, reason: str = "") -> bytes:
    """Propose setting a member's validator power."""
    body = POWER_CHANGE_CODEC.encode(PowerChange(institution, power))
    return propose_payload(ProposalKind.SET_POWER, body, reason)


def set_param_payload(name: str, value: int, reason: str = "") -> bytes:
    """Propose setting a governance parameter."""
    body = PARAM_CHANGE_CODEC.encode(ParamChange(name, value))
    return propose_payload(ProposalKind.SET_PARAM, body, reason)


def penalize_payload(validator_key: bytes, evidence_height: int, reason: str = "") -> bytes:
    """Propose penalizing the validator whose equivocation at ``evidence_height`` the chain
    committed: its member is suspended with power 0."""
    body = PENALTY_CODEC.encode(Penalty(validator_key, evidence_height))
    return propose_payload(ProposalKind.PENALIZE, body, reason)


def vote_payload(proposal_id: int, choice: Choice) -> bytes:
    """The payload of ``governance.vote``."""
    return VOTE_CODEC.encode(VotePayload(proposal_id, choice))
