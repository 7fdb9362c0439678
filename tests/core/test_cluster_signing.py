"""The cluster driver's double-sign check judges only what a node signs with its own key:
relaying another validator's conflicting votes is no double sign of the relayer's, while a
conflicting vote signed with the node's own key is one, broadcast or sent to one peer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from consensus.sign_bytes import vote_sign_bytes_of
from node.chain import Action, Broadcast, SendTo
from node.chain.messages import TOPIC_CONSENSUS
from node.codec import decode_message, encode_message
from node.ports import Signer
from node.testing.cluster import Cluster
from node.types import Vote

MADE_UP_VALUE = b"\x42" * 32


def conflicting(vote: Vote, signer: Signer) -> bytes:
    """A vote of ``signer`` for ``vote``'s step whose value differs from ``vote``'s."""
    value = MADE_UP_VALUE if vote.value_id is None else None
    other = replace(vote, value_id=value, validator=signer.public_key, signature=b"")
    return encode_message(other.with_signature(signer.sign(vote_sign_bytes_of(other))))


def same_step(vote: Vote, signer: Signer) -> bytes:
    """``signer``'s vote for ``vote``'s step and value."""
    own = replace(vote, validator=signer.public_key, signature=b"")
    return encode_message(own.with_signature(signer.sign(vote_sign_bytes_of(own))))


def relaying_hook(
    cluster: Cluster, relayer: str, signer: Signer, *, to_one_peer: bool
) -> Callable[[Action], list[Action]]:
    """A hook for ``relayer``: after each vote it broadcasts, two conflicting votes of
    ``signer`` for that step, broadcast or sent to one peer."""
    peer = next(name for name in cluster.names if name != relayer)

    def hook(action: Action) -> list[Action]:
        if not isinstance(action, Broadcast) or action.topic != TOPIC_CONSENSUS:
            return [action]
        vote = decode_message(action.data)
        if not isinstance(vote, Vote):
            return [action]
        extra = [same_step(vote, signer), conflicting(vote, signer)]
        if to_one_peer:
            return [action, *(SendTo(peer, TOPIC_CONSENSUS, data) for data in extra)]
        return [action, *(Broadcast(TOPIC_CONSENSUS, data) for data in extra)]

    return hook


def signer_of(cluster: Cluster, name: str) -> Signer:
    signer = cluster.nodes[name].signer
    assert signer is not None
    return signer


def test_relaying_another_validators_conflicting_votes_is_not_the_relayers_double_sign() -> None:
    cluster = Cluster(validators=4, seed=3, txs_per_second=10)
    cluster.byzantine.add("v0")  # v0's key signs the conflicting votes: v0 equivocates
    v0 = signer_of(cluster, "v0")
    cluster.outbound_hooks["v1"] = relaying_hook(cluster, "v1", v0, to_one_peer=False)
    cluster.outbound_hooks["v2"] = relaying_hook(cluster, "v2", v0, to_one_peer=True)
    cluster.run_until(height=3)
    assert cluster.violations == []


def test_a_conflicting_vote_with_the_nodes_own_key_is_caught_even_sent_to_one_peer() -> None:
    cluster = Cluster(validators=4, seed=3, txs_per_second=10)
    v1 = signer_of(cluster, "v1")
    cluster.outbound_hooks["v1"] = relaying_hook(cluster, "v1", v1, to_one_peer=True)
    cluster.run_for(2_000)
    assert cluster.violations and all("v1 double-signed" in v for v in cluster.violations)
