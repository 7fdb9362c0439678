"""The invariants a campaign checks, as pure judgements on what was observed.

- ``fork_violations``: every node's chain is a prefix of the others': at each height, the
  nodes that committed it hold the same block id;
- ``root_violations``: nodes at the same height agree on the application state root;
- ``lost_blocks``: a node never reports a committed height below one it reported before
  (a restart must find every block it had committed);
- ``double_signs``: no validator signed two different votes (or proposals) for one height,
  round and step, judged with ``node.testing.signing.SigningLedger`` over every vote seen;
- ``recovery``: after a heal, every node commits a new height within the liveness bound.

Inputs are plain values (names, heights, ids, votes), so every judgement is tested on
fabricated inputs; ``node.cli.chaos.watch`` and ``node.cli.chaos.stores`` gather them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from node.testing.signing import DoubleSign, SigningLedger
from node.types import Proposal, Vote


def fork_violations(chains: Mapping[str, Mapping[int, bytes]]) -> list[str]:
    """One line per height where two nodes hold different block ids (``chains``: node ->
    height -> block id)."""
    by_height: dict[int, dict[bytes, list[str]]] = {}
    for node, blocks in chains.items():
        for height, block_id in blocks.items():
            by_height.setdefault(height, {}).setdefault(block_id, []).append(node)
    found = []
    for height in sorted(by_height):
        ids = by_height[height]
        if len(ids) > 1:
            sides = "; ".join(
                f"{block_id.hex()[:16]} at {', '.join(sorted(nodes))}"
                for block_id, nodes in sorted(ids.items())
            )
            found.append(f"fork at height {height}: {sides}")
    return found


def root_violations(roots: Mapping[str, tuple[int, bytes]]) -> list[str]:
    """One line per height at which nodes report different state roots (``roots``: node ->
    (height, app state root) seen at about the same moment)."""
    by_height: dict[int, dict[bytes, list[str]]] = {}
    for node, (height, root) in roots.items():
        by_height.setdefault(height, {}).setdefault(root, []).append(node)
    return [
        f"state roots differ at height {height}: "
        + "; ".join(
            f"{root.hex()[:16]} at {', '.join(sorted(nodes))}" for root, nodes in seen.items()
        )
        for height, seen in sorted(by_height.items())
        if len(seen) > 1
    ]


@dataclass
class HeightRecord:
    """The highest committed height each node reported, and the blocks lost on restarts."""

    highest: dict[str, int] = field(default_factory=dict)
    lost: int = 0
    violations: list[str] = field(default_factory=list)

    def observe(self, node: str, height: int) -> None:
        """``node`` reports ``height`` now (-1: it did not answer, nothing learnt)."""
        if height < 0:
            return
        before = self.highest.get(node, 0)
        if height < before:
            self.lost += before - height
            self.violations.append(
                f"{node} reported height {height} after {before}: {before - height} "
                "committed blocks lost"
            )
        else:
            self.highest[node] = height


@dataclass
class VoteScan:
    """Every vote and proposal seen, judged with a ``SigningLedger`` as they come."""

    ledger: SigningLedger = field(default_factory=SigningLedger)
    seen: int = 0
    found: list[DoubleSign] = field(default_factory=list)

    def add(self, messages: Iterable[Vote | Proposal]) -> None:
        """Judge ``messages`` (each signed by its own validator or proposer: votes in
        commit certificates and logs are verified before they are kept)."""
        for message in messages:
            self.seen += 1
            signer = message.validator if isinstance(message, Vote) else message.proposer
            double = self.ledger.record(signer, message)
            if double is not None and double not in self.found:
                self.found.append(double)


def double_signs(messages: Iterable[Vote | Proposal]) -> list[DoubleSign]:
    """The double signs among ``messages`` (see ``VoteScan``)."""
    scan = VoteScan()
    scan.add(messages)
    return scan.found


def recovery_violation(episode: str, recovery_s: float | None, bound_s: float) -> str | None:
    """The violation of a heal after which the nodes took ``recovery_s`` (None: they never
    did, within ``bound_s``) to commit a new height."""
    if recovery_s is None or recovery_s > bound_s:
        return f"{episode}: no new height on every node within {bound_s:g} s of the heal"
    return None
