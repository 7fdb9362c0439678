"""The Byzantine mode (``node.runtime.byzantine``): what each kind sends, where it is refused,
and four runtimes on the in-memory hub where one lies and the other three carry on."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from consensus import DuplicateVoteEvidence, ValidatorSet, verify_duplicate_vote_evidence
from consensus.sign_bytes import proposal_sign_bytes_of, vote_sign_bytes_of
from consensus.types import Proposal, Vote, VoteType
from crypto_core.signatures import verify
from node.chain.messages import TOPIC_CONSENSUS, TOPIC_TXS, PeerFault, decode_inbound
from node.cli import main
from node.codec import block_id, decode_message, encode_message
from node.core import NodeCore
from node.runtime.byzantine import (
    ALLOW_BYZANTINE_ENV,
    ByzantineKind,
    ByzantineModeError,
    ByzantineNetwork,
    ByzantineSettings,
    byzantine_kinds,
    byzantine_network,
    parse_kinds,
)
from node.runtime.metrics import NodeMetrics
from node.runtime.node import NodeIdentity, NodeRuntime, RuntimeLimits, TipBoard
from node.testing import make_validators
from node.txs import tx_signature_ok
from node.types import Block, BlockHeader, CompactBlock, TxBatch
from tests.runtime.fakes import FakeHub, FakeNetwork, VirtualClock
from tests.runtime.test_runtime import CONFIG, Net, all_reach, network_of, wait_until

ALLOWED = {ALLOW_BYZANTINE_ENV: "1"}
CHAIN = "bighealth-testnet"
KEYS = make_validators(4).keys


def test_kinds_parse_and_unknown_ones_are_refused() -> None:
    assert parse_kinds("equivocate, tx-flood") == {ByzantineKind.EQUIVOCATE, ByzantineKind.TX_FLOOD}
    with pytest.raises(ByzantineModeError, match="unknown kind"):
        parse_kinds("equivocate,lie")
    with pytest.raises(ByzantineModeError, match="unknown kind"):
        parse_kinds(",")


@pytest.mark.parametrize(
    ("environ", "chain_id", "message"),
    [
        ({}, CHAIN, "BIGHEALTH_ALLOW_BYZANTINE=1"),
        ({ALLOW_BYZANTINE_ENV: "yes"}, CHAIN, "BIGHEALTH_ALLOW_BYZANTINE=1"),
        (ALLOWED, "bighealth-main", "only on a test chain"),
        (ALLOWED, "latest-chain", "only on a test chain"),
    ],
)
def test_the_mode_is_refused_without_the_variable_or_off_test_chains(
    environ: dict[str, str], chain_id: str, message: str
) -> None:
    with pytest.raises(ByzantineModeError, match=message):
        byzantine_kinds("equivocate", chain_id, environ)
    hub = FakeHub()
    with pytest.raises(ByzantineModeError, match=message):
        byzantine_network(
            hub.join("a"), frozenset({ByzantineKind.MALFORMED}), signer=None,
            chain_id=chain_id, environ=environ,
        )  # fmt: skip


def test_no_flag_means_no_wrapper() -> None:
    assert byzantine_kinds(None, "bighealth-main", {}) == frozenset()
    network = FakeHub().join("a")
    assert byzantine_network(network, frozenset(), signer=None, chain_id="x", environ={}) is None
    for chain_id in ("test", "TEST-1", "bighealth-testnet", "a.test"):
        assert byzantine_kinds("malformed", chain_id, ALLOWED) == {ByzantineKind.MALFORMED}


def _liar(kinds: set[ByzantineKind]) -> tuple[ByzantineNetwork, dict[str, FakeNetwork]]:
    hub = FakeHub()
    me = hub.join("me")
    peers = {name: hub.join(name) for name in ("p1", "p2", "p3", "p4")}
    for endpoint in (me, *peers.values()):
        endpoint.online = True
        endpoint.subscribe(TOPIC_CONSENSUS)
        endpoint.subscribe(TOPIC_TXS)
    liar = ByzantineNetwork(
        me, kinds, signer=KEYS[0], chain_id=CHAIN, rng=random.Random(7),
        settings=ByzantineSettings(flood_batch_txs=20),
    )  # fmt: skip
    return liar, peers


def _own_vote(height: int, value: bytes | None) -> Vote:
    vote = Vote(CHAIN, height, 0, VoteType.PREVOTE, value, KEYS[0].public_key, b"")
    return vote.with_signature(KEYS[0].sign(vote_sign_bytes_of(vote)))


def test_equivocate_sends_a_conflicting_signed_vote_to_half_the_peers_once() -> None:
    liar, peers = _liar({ByzantineKind.EQUIVOCATE})
    vote = _own_vote(5, b"\x01" * 32)
    liar.broadcast(TOPIC_CONSENSUS, encode_message(vote))
    for peer in peers:  # the runtime's direct copies: the same vote, no second twin
        liar.send(peer, TOPIC_CONSENSUS, encode_message(vote))
    assert liar.acts["equivocated_votes"] == 1
    twins = {
        name: [m for m in endpoint.inbox if decode_message(m.data) != vote]
        for name, endpoint in peers.items()
    }
    assert [name for name, found in twins.items() if found] == ["p1", "p2"]
    twin = decode_message(twins["p1"][0].data)
    assert isinstance(twin, Vote) and twin.value_id != vote.value_id
    evidence = DuplicateVoteEvidence.from_votes(vote, twin)
    verify_duplicate_vote_evidence(evidence, ValidatorSet(make_validators(4).validators), CHAIN)
    relayed = Vote(  # another validator's vote is relayed untouched
        CHAIN, 6, 0, VoteType.PREVOTE, None, KEYS[1].public_key, b"\x00" * 64
    )
    liar.broadcast(TOPIC_CONSENSUS, encode_message(relayed))
    assert liar.acts["equivocated_votes"] == 1


def test_a_vote_sent_before_any_peer_is_connected_equivocates_with_its_next_copy() -> None:
    liar, peers = _liar({ByzantineKind.EQUIVOCATE})
    for endpoint in peers.values():
        endpoint.online = False
    vote = encode_message(_own_vote(1, None))
    liar.broadcast(TOPIC_CONSENSUS, vote)
    assert liar.acts["equivocated_votes"] == 0
    for endpoint in peers.values():
        endpoint.online = True
    liar.send("p1", TOPIC_CONSENSUS, vote)  # the same vote again: now there is someone to lie to
    assert liar.acts["equivocated_votes"] == 1


async def test_the_periodic_kinds_wait_for_the_first_equivocation(
    autojump_clock: MockClock,
) -> None:
    liar, _ = _liar({ByzantineKind.EQUIVOCATE, ByzantineKind.MALFORMED})
    async with trio.open_nursery() as nursery:
        nursery.start_soon(liar.attack)
        await trio.sleep(10)
        assert liar.acts["malformed"] == 0  # no lie reached a peer yet: nothing to give away
        liar.broadcast(TOPIC_CONSENSUS, encode_message(_own_vote(1, None)))
        await trio.sleep(liar.settings.interval_s * 3.5)
        assert liar.acts["malformed"] == 3
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("compact", [False, True])
def test_invalid_block_renames_the_block_and_re_signs_its_proposal(compact: bool) -> None:
    liar, peers = _liar({ByzantineKind.INVALID_BLOCK})
    header = BlockHeader(CHAIN, 3, 1_000, b"\x00" * 32, b"\x11" * 32, b"\x22" * 32,
                         b"\x33" * 32, KEYS[0].public_key, None)  # fmt: skip
    block: Block | CompactBlock = CompactBlock(header, ()) if compact else Block(header, ())
    proposal = Proposal(CHAIN, 3, 0, block_id(header), -1, KEYS[0].public_key, b"")
    proposal = proposal.with_signature(KEYS[0].sign(proposal_sign_bytes_of(proposal)))
    liar.broadcast(TOPIC_CONSENSUS, encode_message(block))
    liar.broadcast(TOPIC_CONSENSUS, encode_message(proposal))
    sent_block, sent_proposal = (decode_message(m.data) for m in peers["p1"].inbox)
    assert isinstance(sent_block, type(block)) and isinstance(sent_proposal, Proposal)
    assert sent_block.header.app_state_root != header.app_state_root
    assert sent_proposal.value_id == block_id(sent_block.header) != block_id(header)
    assert verify(KEYS[0].public_key, proposal_sign_bytes_of(sent_proposal),
                  sent_proposal.signature)  # fmt: skip
    assert liar.acts["invalid_blocks"] == 1


def test_the_periodic_kinds_send_what_honest_nodes_refuse() -> None:
    kinds = {ByzantineKind.MALFORMED, ByzantineKind.OVERSIZED, ByzantineKind.TX_FLOOD}
    liar, peers = _liar(kinds | {ByzantineKind.STALE_REPLAY})
    for height in range(1, 6):
        liar.broadcast(TOPIC_CONSENSUS, encode_message(_own_vote(height, None)))
    for endpoint in peers.values():
        endpoint.inbox.clear()
    liar.attack_once()
    received = list(peers["p3"].inbox)
    refused = batches = replays = 0
    for message in received:
        try:
            decoded = decode_inbound(message.topic, message.data, 512 * 1024)
        except PeerFault:
            refused += 1
            continue
        if isinstance(decoded, TxBatch):
            batches += 1
            assert not any(tx_signature_ok(_tx(tx)) for tx in decoded.txs)
        elif isinstance(decoded, Vote):
            replays += 1
            assert decoded.height <= 3  # two or more below the newest
    assert refused >= 4  # malformed and oversized: on both topics and the direct stream
    assert batches == 1 and replays == 3
    assert liar.acts["tx_flood_batches"] == 1 and liar.acts["stale_replays"] == 3


def _tx(data: bytes) -> Any:
    from node.codec import TX_CODEC  # noqa: PLC0415

    return TX_CODEC.decode(data)


def _network(net: Net, name: str) -> FakeNetwork:
    network = net.nodes[name].network
    assert network is not None
    return network


async def _start_liar(net: Net, name: str, kinds: set[ByzantineKind]) -> ByzantineNetwork:
    node = net.nodes[name]
    core = NodeCore.open(node.storage, node.signer, net.genesis, CONFIG)
    tip = TipBoard(core.height, core.last_block_id)
    network = net.hub.join(name, tip.encoded)
    liar = ByzantineNetwork(network, kinds, signer=node.signer, chain_id=net.genesis.chain_id,
                            rng=random.Random(1))  # fmt: skip
    node.network = network
    key = None if node.signer is None else node.signer.public_key
    node.runtime = NodeRuntime(
        core, liar, VirtualClock(), identity=NodeIdentity(name, "test", key),
        metrics=NodeMetrics(network.snapshot), max_block_bytes=net.genesis.params.max_block_bytes,
        limits=RuntimeLimits(peer_poll_interval_s=0.05), tip=tip,
    )  # fmt: skip

    async def run(*, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        assert node.runtime is not None
        async with trio.open_nursery() as nursery:
            await nursery.start(network.serve)
            await nursery.start(node.runtime.run)
            nursery.start_soon(liar.attack)
            task_status.started()

    await net.nursery.start(run)
    return liar


async def test_three_honest_runtimes_commit_past_a_lying_one_and_commit_its_evidence(
    autojump_clock: MockClock,
) -> None:
    kinds = set(ByzantineKind)
    async with network_of(4) as net:
        liar = await _start_liar(net, "v3", kinds)
        honest = ["v0", "v1", "v2"]
        for name in honest:
            await net.start(name)
        await all_reach(net, honest, 8)
        found: list[int] = []

        async def evidence_committed() -> bool:
            height = await net.height("v0")
            for at in range(1, height + 1):
                committed = await net.runtime("v0").committed_block(at)
                assert committed is not None
                if any(e.vote_a.validator == KEYS[3].public_key
                       for e in committed.block.evidence):  # fmt: skip
                    found.append(at)
                    return True
            return False

        await wait_until(evidence_committed)
        assert found and liar.acts["equivocated_votes"] > 0
        assert all(liar.acts[act] > 0 for act in ("malformed", "oversized", "tx_flood_batches"))
        top = await net.height("v0")
        ids = [await net.block_ids(name, top) for name in honest]
        assert ids[0] == ids[1] == ids[2]
        rejected = sum(m.sender == "v3" for name in honest for m in _network(net, name).rejected)
        assert rejected > 0  # the garbage stopped at the honest nodes' edge
        for name in honest:  # and each honest node banned the liar
            assert any(peer == "v3" for peer, _ in _network(net, name).bans)


@pytest.mark.parametrize(
    ("chain_id", "environ", "flag", "message"),
    [
        ("care-testnet", {}, "equivocate", "BIGHEALTH_ALLOW_BYZANTINE=1"),
        ("care-net", ALLOWED, "equivocate", "only on a test chain"),
        ("care-testnet", ALLOWED, "equivocate,bribe", "unknown kind"),
    ],
)
def test_bighealth_run_refuses_the_mode_with_a_clear_error(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    chain_id: str,
    environ: dict[str, str],
    flag: str,
    message: str,
) -> None:
    home = str(tmp_path / "home")
    assert main(["init", "--home", home, "--chain-id", chain_id]) == 0
    monkeypatch.delenv(ALLOW_BYZANTINE_ENV, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    capsys.readouterr()
    assert main(["run", "--home", home, "--byzantine", flag]) == 2
    assert message in capsys.readouterr().err
