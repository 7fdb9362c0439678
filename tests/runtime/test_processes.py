"""Four validator processes on 127.0.0.1, over libp2p and LevelDB, driven through their API.

One network serves every test of this module, in order: it commits blocks with
transactions, reports itself through ``bighealth status`` and ``/metrics``, shrugs off a
peer of another chain and a peer sending garbage, lets a plain libp2p host identify, ping
and read its gossip, and stops gracefully on SIGTERM.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from node.adapters.config import Libp2pNetworkConfig
from node.adapters.libp2p import Libp2pNetwork
from node.testing import SeededRng
from tests.runtime.libp2p_client import PlainHost
from tests.runtime.localnet import ROOT, LocalNet

VALIDATORS = ["validator-0", "validator-1", "validator-2", "validator-3"]
TARGET_HEIGHT = 20
TXS = 40
START_TIMEOUT_S = 40.0
COMMIT_TIMEOUT_S = 60.0
REACTION_TIMEOUT_S = 20.0
POLL_S = 0.05


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNet]:
    local = LocalNet.create(tmp_path_factory.mktemp("fournet") / "testnet", validators=4)
    for name in VALIDATORS:
        local.start(name)
    try:
        local.wait_for_heights(VALIDATORS, 1, START_TIMEOUT_S)
        yield local
    finally:
        local.stop_all()


def test_four_validators_commit_20_blocks_with_transactions(net: LocalNet) -> None:
    clients = [net.client(i) for i in range(len(net.manifest.clients))]
    for index in range(TXS):
        verdict = net.submit_kv(
            VALIDATORS[index % 4], clients[index % len(clients)], b"k%d" % index
        )
        assert verdict["accepted"], verdict
    net.wait_for_heights(VALIDATORS, TARGET_HEIGHT, COMMIT_TIMEOUT_S)
    net.wait_until(
        lambda: all(_status(net, n)["stats"]["txs_committed"] == TXS for n in VALIDATORS),
        COMMIT_TIMEOUT_S,
        "every transaction committed on every validator",
    )
    for height in range(1, TARGET_HEIGHT + 1):
        ids = {net.block_id(name, height) for name in VALIDATORS}
        assert len(ids) == 1, f"validators disagree at height {height}: {ids}"
    blocks = [net.api("validator-0").get(f"/blocks/{h}") for h in range(1, TARGET_HEIGHT + 1)]
    assert sum(block["num_txs"] for block in blocks) >= 1
    assert all(block["commit"]["signatures"] >= 3 for block in blocks)


def test_the_status_command_reports_height_round_peers_and_last_block(net: LocalNet) -> None:
    home = net.home("validator-1")
    out = subprocess.run(
        [sys.executable, "-m", "node", "status", "--home", str(home)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    status = json.loads(out.stdout)
    assert status["height"] >= 1
    assert status["round"] >= 0
    assert status["peers"] == 3
    block = net.api("validator-1").get(f"/blocks/{status['height']}")
    assert status["last_block_id"] == block["block_id"]
    assert status["moniker"] == "validator-1"
    assert status["is_validator"] is True


def test_metrics_expose_progress_and_traffic(net: LocalNet) -> None:
    text = net.api("validator-0").get_text("/metrics")
    values = _metric_values(text)
    assert values["bighealth_height"] >= 1
    assert values["bighealth_peers"] == 3
    assert "bighealth_consensus_round" in values
    assert "bighealth_mempool_txs" in values
    assert values['bighealth_p2p_messages_in_total{topic="consensus"}'] > 0
    assert values['bighealth_p2p_messages_out_total{topic="consensus"}'] > 0
    assert values["bighealth_commit_latency_seconds_count"] >= 1  # txs were submitted here
    assert values["bighealth_block_interval_seconds_count"] >= 1


async def test_a_peer_of_another_chain_is_refused_and_the_node_keeps_running(
    net: LocalNet, tmp_path: Path
) -> None:
    target = net.node("validator-0")
    before = _status(net, target.name)
    config = Libp2pNetworkConfig(chain_id="another-chain", home=tmp_path, bootstrap=(target.p2p,))
    stranger = Libp2pNetwork(config, rng=SeededRng("stranger"))
    async with trio.open_nursery() as nursery:
        await nursery.start(stranger.serve)
        await _poll(
            lambda: _status(net, target.name)["network"]["bans"] > before["network"]["bans"]
        )
        assert target.peer_id not in stranger.peers()
        nursery.cancel_scope.cancel()
    height = _status(net, target.name)["height"]
    await _poll(lambda: _status(net, target.name)["height"] > height)
    assert stranger.local_peer not in _status(net, target.name)["peer_ids"]


async def test_a_peer_sending_garbage_is_banned_and_the_node_keeps_running(
    net: LocalNet, tmp_path: Path
) -> None:
    target = net.node("validator-1")
    before = _status(net, target.name)
    config = Libp2pNetworkConfig(
        chain_id=net.manifest.chain_id, home=tmp_path, bootstrap=(target.p2p,)
    )
    vandal = Libp2pNetwork(config, rng=SeededRng("vandal"))
    async with trio.open_nursery() as nursery:
        await nursery.start(vandal.serve)
        with trio.fail_after(REACTION_TIMEOUT_S):
            await vandal.wait_for_peers([target.peer_id])
        vandal.subscribe("txs")

        def banned() -> bool:
            return bool(_status(net, target.name)["network"]["bans"] > before["network"]["bans"])

        with trio.fail_after(REACTION_TIMEOUT_S):
            while not await trio.to_thread.run_sync(banned):
                if target.peer_id in vandal.peers():
                    vandal.send(target.peer_id, "consensus", b"\xc1 not a message")
                    vandal.broadcast("txs", b"\x92\x00 garbage")
                await trio.sleep(POLL_S)
        nursery.cancel_scope.cancel()
    after = _status(net, target.name)
    assert after["network"]["dropped"]["invalid"] > before["network"]["dropped"]["invalid"]
    await _poll(lambda: _status(net, target.name)["height"] > after["height"])


async def test_a_plain_libp2p_host_can_identify_ping_and_read_gossip(
    net: LocalNet,
) -> None:
    target = net.node("validator-2")
    async with PlainHost.running(topics=["consensus"]) as plain:
        peer = await plain.connect(target.p2p)
        identify = await plain.identify(peer)
        assert "/ipfs/ping/1.0.0" in identify.protocols
        assert "/meshsub/1.1.0" in identify.protocols
        assert "/bighealth/sync/1" in identify.protocols
        assert await plain.ping(peer) >= 0
        with trio.fail_after(REACTION_TIMEOUT_S):
            origin, data = await plain.next_gossip("consensus")
        assert origin in {node.peer_id for node in net.manifest.nodes}
        assert data


def test_sigterm_stops_every_node_gracefully(net: LocalNet) -> None:
    codes = net.stop_all()
    assert codes == dict.fromkeys(VALIDATORS, 0), net.logs()
    for name in VALIDATORS:
        log = (net.home(name) / "node.log").read_text()
        assert '"msg": "stopping"' in log and '"signal": "SIGTERM"' in log
        assert '"msg": "stopped"' in log


def _status(net: LocalNet, name: str) -> dict[str, Any]:
    status = net.status(name)
    assert status is not None, f"{name} does not answer\n{net.logs()}"
    return status


async def _poll(condition: Any, timeout_s: float = REACTION_TIMEOUT_S) -> None:
    """Poll ``condition`` (blocking HTTP: run in a thread; it must not touch trio objects)."""
    with trio.fail_after(timeout_s):
        while not await trio.to_thread.run_sync(condition):
            await trio.sleep(POLL_S)


def _metric_values(text: str) -> dict[str, float]:
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values
