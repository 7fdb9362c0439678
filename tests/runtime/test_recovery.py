"""Crash and late start, with real processes: a validator killed with SIGKILL mid-run comes
back from its LevelDB and catches up; an observer started late syncs the chain from
genesis, verifying every block's certificate, and agrees with the validators."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest

from tests.runtime.localnet import LocalNet

VALIDATORS = ["validator-0", "validator-1", "validator-2", "validator-3"]
SURVIVORS = VALIDATORS[:3]
START_TIMEOUT_S = 40.0
PROGRESS_TIMEOUT_S = 60.0


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNet]:
    local = LocalNet.create(
        tmp_path_factory.mktemp("recovery") / "testnet", validators=4, observers=1
    )
    for name in VALIDATORS:
        local.start(name)
    try:
        local.wait_for_heights(VALIDATORS, 1, START_TIMEOUT_S)
        yield local
    finally:
        local.stop_all()


def agreed_ids(net: LocalNet, names: list[str], up_to: int) -> list[str]:
    """The block ids of heights 1..up_to, asserting every node in ``names`` has the same."""
    ids = []
    for height in range(1, up_to + 1):
        at_height = {net.block_id(name, height) for name in names}
        assert len(at_height) == 1, f"disagreement at height {height}: {at_height}"
        ids.append(at_height.pop())
    return ids


def test_a_validator_killed_with_sigkill_restarts_catches_up_and_agrees(net: LocalNet) -> None:
    client = net.client(0)
    for index in range(10):
        assert net.submit_kv("validator-3", client, b"before-%d" % index)["accepted"]
    net.wait_for_heights(VALIDATORS, 5, PROGRESS_TIMEOUT_S)
    assert net.kill("validator-3", signal.SIGKILL) == -signal.SIGKILL
    killed_at = max(net.height(name) for name in SURVIVORS)
    net.wait_for_heights(SURVIVORS, killed_at + 5, PROGRESS_TIMEOUT_S)  # 3 of 4 go on
    net.start("validator-3")
    target = max(net.height(name) for name in SURVIVORS) + 3
    net.wait_for_heights(VALIDATORS, target, PROGRESS_TIMEOUT_S)
    agreed_ids(net, VALIDATORS, target)
    status = net.status("validator-3")
    assert status is not None and status["is_validator"]
    assert status["stats"]["misbehaviours"] == 0


def test_an_observer_started_late_syncs_from_genesis_verifying_every_block(
    net: LocalNet,
) -> None:
    net.wait_for_heights(["validator-0"], 12, PROGRESS_TIMEOUT_S)
    behind = net.height("validator-0")
    net.start("observer-0")
    net.wait_for_heights(["observer-0"], behind, PROGRESS_TIMEOUT_S)
    status = net.status("observer-0")
    assert status is not None
    assert status["is_validator"] is False
    # Blocks it did not see decided came by block sync, each applied only after its
    # certificate verified against the validator set (a bad one is a misbehaviour).
    assert status["stats"]["blocks_synced"] >= behind - 1
    assert status["stats"]["misbehaviours"] == 0
    agreed_ids(net, ["validator-0", "observer-0"], behind)
    first = net.api("observer-0").get("/blocks/1")
    assert first["commit"]["signatures"] >= 3
