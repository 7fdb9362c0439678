"""Committed equivocation evidence: its record in the application state and its event.

A block carries ``DuplicateVoteEvidence`` (two conflicting signed votes of one validator for
one height, round and vote type). The node verifies each object before it accepts the block
(``node.chain.validation``: signatures against the validator set of the evidence's height, age
within ``ConsensusParams.evidence_max_age_heights``); the application keeps what only its
state can tell and what must follow from the block alone:

- it refuses (``InvalidBlockError``) a block whose evidence is for another chain, for a height
  not below the block's, repeats a step within the block, or was committed before;
- when finalizing the block, before due work and transactions, it records each object under
  ``_evidence/<validator (32 bytes)><height (u64 BE)><round (u32 BE)><vote type (u8)>`` as an
  ``EvidenceRecord`` and emits ``validator.equivocated`` with the attributes ``validator``
  (hex key), ``height``, ``round``, ``vote_type`` (``prevote``/``precommit``) and
  ``committed_height``.

One record per step, so an equivocation is committed once, however many nodes saw it and
whichever pair of its votes they kept. The prefix is the framework's own (module namespaces
start with a letter), so no module can write or delete a record, and ``validator`` is a
reserved module name, so no module can emit the event. Records are kept, not pruned: they are
the chain's memory of who equivocated, for governance to act on; they grow by at most
``max_evidence_per_block`` per block.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from consensus.evidence import DuplicateVoteEvidence
from node.app.module import KeyReader
from node.app.view import WriteBuffer
from node.codec import EVIDENCE_CODEC, MAX_EVIDENCE_BYTES, Nested, StructCodec, UInt
from node.errors import DecodeError, InvalidBlockError
from node.types import Block, Event, EventAttribute

EVIDENCE_PREFIX: Final = b"_evidence/"
EQUIVOCATED_EVENT: Final = "validator.equivocated"
_U64: Final = 8
_U32: Final = 4


@dataclass(frozen=True, slots=True)
class EvidenceRecord:
    """Evidence as committed: the object and the height of the block that carried it."""

    committed_height: int
    evidence: DuplicateVoteEvidence


EVIDENCE_RECORD_CODEC: Final = StructCodec(
    EvidenceRecord,
    [("committed_height", UInt()), ("evidence", Nested(EVIDENCE_CODEC))],
    MAX_EVIDENCE_BYTES + 16,
)


def evidence_key(evidence: DuplicateVoteEvidence) -> bytes:
    """The state key of the step ``evidence`` is about (validator, height, round, type)."""
    vote = evidence.vote_a
    return (
        validator_evidence_prefix(vote.validator)
        + vote.height.to_bytes(_U64, "big")
        + vote.round.to_bytes(_U32, "big")
        + bytes([int(vote.vote_type)])
    )


def validator_evidence_prefix(validator: bytes) -> bytes:
    """The prefix of every record about ``validator`` (iterate it to list them)."""
    return EVIDENCE_PREFIX + validator


def read_record(reader: KeyReader, evidence: DuplicateVoteEvidence) -> EvidenceRecord | None:
    """The committed record of ``evidence``'s step, if any (whichever pair of votes it
    holds)."""
    stored = reader.get(evidence_key(evidence))
    if stored is None:
        return None
    try:
        return EVIDENCE_RECORD_CODEC.decode(stored)
    except DecodeError as exc:  # the framework's own writes are canonical: a bug
        raise AssertionError(f"corrupt evidence record: {exc}") from exc


def check_block_evidence(block: Block, chain_id: str, reader: KeyReader) -> None:
    """What the application requires of a block's evidence (``InvalidBlockError``)."""
    height = block.header.height
    seen: set[bytes] = set()
    for index, evidence in enumerate(block.evidence):
        vote = evidence.vote_a
        if vote.chain_id != chain_id:
            raise InvalidBlockError(f"evidence {index} is for chain {vote.chain_id!r}")
        if vote.height >= height:
            raise InvalidBlockError(f"evidence {index} is for height {vote.height} >= {height}")
        key = evidence_key(evidence)
        if key in seen:
            raise InvalidBlockError(f"evidence {index} repeats a step of the block's evidence")
        if reader.get(key) is not None:
            raise InvalidBlockError(f"evidence {index} was committed before")
        seen.add(key)


def record_block_evidence(buffer: WriteBuffer, block: Block) -> tuple[Event, ...]:
    """Write the records of ``block``'s (checked) evidence; returns their events in order."""
    events: list[Event] = []
    for evidence in block.evidence:
        record = EvidenceRecord(block.header.height, evidence)
        buffer.set(evidence_key(evidence), EVIDENCE_RECORD_CODEC.encode(record))
        events.append(equivocation_event(record))
    return tuple(events)


def equivocation_event(record: EvidenceRecord) -> Event:
    """The ``validator.equivocated`` event of a committed record."""
    vote = record.evidence.vote_a
    attributes = {
        "committed_height": str(record.committed_height),
        "height": str(vote.height),
        "round": str(vote.round),
        "validator": vote.validator.hex(),
        "vote_type": vote.vote_type.name.lower(),
    }
    pairs = tuple(EventAttribute(key, value) for key, value in sorted(attributes.items()))
    return Event(EQUIVOCATED_EVENT, pairs)
