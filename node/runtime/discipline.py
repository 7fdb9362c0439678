"""What the runtime does about peers the core reports as misbehaving.

The network adapter already penalises what fails its edge checks (frames, envelopes, our
per-topic form validators). ``NodeCore`` finds the rest — forged signatures, votes of
non-validators, invalid certified blocks — and reports each as ``PeerMisbehaved``. This
module turns those reports into bans: an offence only a forger or a peer of another chain
commits bans at once; the others cost points that drain over time (a peer with a bug is
forgiven, a stream of bad messages is not), on the adapter's ``Scoreboard``.
"""

from __future__ import annotations

from typing import Final

from node.adapters.peer_scoring import Offense, Scoreboard, ScoringPolicy
from node.chain.actions import Offence, PeerMisbehaved
from node.ports import PeerId

BAN_AT_ONCE: Final = frozenset(
    {Offence.WRONG_CHAIN, Offence.INVALID_SIGNATURE, Offence.INVALID_BLOCK}
)
"""Offences no honest peer ever commits: forged signatures, certified blocks that are not,
another chain."""
_POINTS_AS: Final = {
    Offence.MALFORMED: Offense.MALFORMED_MESSAGE,
    Offence.OVERSIZE: Offense.MALFORMED_MESSAGE,
    Offence.NOT_A_VALIDATOR: Offense.INVALID_MESSAGE,
    Offence.NOT_PROPOSER: Offense.INVALID_MESSAGE,
    Offence.UNSOLICITED: Offense.INVALID_MESSAGE,
}
"""The penalty (in the adapter's scale) of each offence that does not ban at once.
Validator-set disagreements (not a validator, not the proposer) cost least: a peer that is
behind on validator-set changes sends them honestly."""


class PeerDiscipline:
    """Penalty points per peer; says when a report should become a ban."""

    def __init__(self, policy: ScoringPolicy | None = None) -> None:
        self._scores = Scoreboard(policy)

    def judge(self, report: PeerMisbehaved, now_ms: int) -> str | None:
        """Charge ``report``; the ban reason if the peer is to be banned now, else None."""
        reason = f"{report.offence.value}: {report.reason}"
        if report.offence in BAN_AT_ONCE:
            if self._scores.is_banned(report.peer, now_ms):
                return None
            self._scores.ban(report.peer, now_ms, reason)
            return reason
        offense = _POINTS_AS.get(report.offence, Offense.INVALID_MESSAGE)
        return reason if self._scores.penalize(report.peer, offense, now_ms, reason) else None

    def is_banned(self, peer: PeerId, now_ms: int) -> bool:
        """True while our record bans ``peer``."""
        return self._scores.is_banned(peer, now_ms)

    def expire(self, now_ms: int) -> None:
        """Forget bans that lapsed."""
        self._scores.expire(now_ms)
