"""Validator-set changes decided by the application take effect two heights later, on every
node alike, and survive restarts (node.chain.schedule)."""

from __future__ import annotations

from consensus import ValidatorUpdate
from node.app.module import ExecContext, Module
from node.chain import default_registry
from node.testing import TxFactory
from node.testing.cluster import Cluster
from node.types import BlockHeader, Transaction


class PowerModule(Module):
    """A toy governance: any account sets a validator's power (``key || power u64``)."""

    name = "power"
    actions = frozenset({"set"})

    def deliver_tx(self, ctx: ExecContext, tx: Transaction) -> None:
        ctx.set_validator_power(tx.payload[:32], int.from_bytes(tx.payload[32:40], "big"))


app_with_governance = default_registry().with_module("power", lambda genesis: PowerModule()).build


def key_of_node(cluster: Cluster, name: str) -> bytes:
    signer = cluster.nodes[name].signer
    assert signer is not None
    return signer.public_key


def header_of(cluster: Cluster, name: str, height: int) -> BlockHeader:
    committed = cluster.core(name).committed_block(height)
    assert committed is not None
    return committed.block.header


def submit_power(cluster: Cluster, validator: str, power: int) -> None:
    client = cluster.client_keys[0]
    raw = TxFactory(cluster.genesis.chain_id).encoded(
        client,
        "power.set",
        key_of_node(cluster, validator) + power.to_bytes(8, "big"),
        nonce=cluster.core("v0").next_nonce(client.public_key),
    )
    result = cluster.submit("v0", raw)
    assert result is not None and result.accepted


def height_of_tx_kind(cluster: Cluster, kind_marker: bytes) -> int:
    core = cluster.core("v1")
    for height in range(1, core.height + 1):
        committed = core.committed_block(height)
        assert committed is not None
        if any(kind_marker in raw for raw in committed.block.txs):
            return height
    raise AssertionError("not committed")


def test_updates_rule_from_two_heights_later_everywhere_and_after_restarts() -> None:
    cluster = Cluster(validators=4, seed=31, app_factory=app_with_governance, record_votes=True)
    cluster.run_until(height=3)
    submit_power(cluster, "v0", 40)
    submit_power(cluster, "v3", 0)
    cluster.run_until(height=cluster.height("v0") + 3)
    decided = height_of_tx_kind(cluster, b"power.set")

    genesis_set = cluster.genesis.validator_set()
    updates = [
        ValidatorUpdate(key_of_node(cluster, "v0"), 40),
        ValidatorUpdate(key_of_node(cluster, "v3"), 0),
    ]
    updated = genesis_set.updated(updates)
    hashes = [header_of(cluster, "v2", h).validator_set_hash for h in range(1, decided + 3)]
    assert set(hashes[: decided + 1]) == {genesis_set.hash()}  # heights 1 .. decided + 1
    assert hashes[decided + 1] == updated.hash() != genesis_set.hash()  # from decided + 2

    cluster.crash("v1")  # the schedule comes back from storage with the updates applied
    cluster.restart("v1")
    cluster.run_until(height=decided + 10)
    assert cluster.violations == []
    assert len({tuple(cluster.block_ids(n)[: decided + 10]) for n in cluster.names}) == 1
    v3 = key_of_node(cluster, "v3")
    assert all(vote.height < decided + 2 for vote in cluster.votes if vote.validator == v3)
    assert not cluster.core("v3").status().is_validator  # it follows as an observer now
