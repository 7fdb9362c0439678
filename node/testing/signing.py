"""``SigningLedger``: what each node signed with its own key, to catch a double sign.

Safety's first rule: a node never signs two different votes (or proposals) for one height,
round and step. The cluster driver (``node.testing.cluster``) and the simulator's checkers
(``netsim.checkers``) both hand every signed message a node sends to a ledger. Only messages
signed with the sending node's own key are judged: a node relays others' votes and
proposals, and a relay is not a signature (relaying a Byzantine validator's two conflicting
votes is no fault of the relayer's). Two messages conflict when their sign bytes differ.
"""

from __future__ import annotations

from dataclasses import dataclass

from consensus.sign_bytes import proposal_sign_bytes_of, vote_sign_bytes_of
from node.types import Proposal, Vote

PROPOSAL_STEP = 0
"""The step a proposal is recorded under (votes use their ``VoteType``: 1 and 2)."""


@dataclass(frozen=True, slots=True)
class DoubleSign:
    """``signer`` signed two different messages for one (height, round, step)."""

    signer: bytes
    height: int
    round: int
    step: int

    def describe(self) -> str:
        """One line for a report."""
        return (
            f"{self.signer.hex()[:16]} signed two different messages for height {self.height}, "
            f"round {self.round}, step {self.step}"
        )


class SigningLedger:
    """The sign bytes each key signed per (height, round, step), for the heights kept."""

    __slots__ = ("_signed",)

    def __init__(self) -> None:
        self._signed: dict[int, dict[tuple[bytes, int, int], bytes]] = {}

    def record(self, own_key: bytes | None, message: Vote | Proposal) -> DoubleSign | None:
        """Record ``message`` sent by a node whose key is ``own_key`` (None: it signs
        nothing); the double sign it reveals, if any. Relays are ignored."""
        if isinstance(message, Vote):
            signer, step = message.validator, int(message.vote_type)
            signed = vote_sign_bytes_of(message)
        else:
            signer, step = message.proposer, PROPOSAL_STEP
            signed = proposal_sign_bytes_of(message)
        if own_key is None or signer != own_key:
            return None
        by_height = self._signed.setdefault(message.height, {})
        earlier = by_height.setdefault((signer, message.round, step), signed)
        if earlier == signed:
            return None
        return DoubleSign(signer, message.height, message.round, step)

    def forget_below(self, height: int) -> None:
        """Drop what was signed below ``height`` (bounds the ledger of a long run)."""
        for old in [h for h in self._signed if h < height]:
            del self._signed[old]

    def __len__(self) -> int:
        return sum(len(steps) for steps in self._signed.values())
