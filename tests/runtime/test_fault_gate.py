"""The fault gate: its control file, what it drops, and that only a flagged run opens it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from node.errors import PeerUnreachableError, RemoteError
from node.runtime.fault_gate import (
    GATE_FILE,
    MAX_GATE_FILE_BYTES,
    FaultGate,
    FaultGateError,
    FaultOptions,
    GateFile,
    GateRules,
    faults_allowed,
    gate_text,
    gated,
    parse_gate,
)
from node.runtime.system import SystemClock
from tests.runtime.fakes import FakeHub, FakeNetwork


def test_parse_gate_reads_both_lists_and_round_trips() -> None:
    rules = GateRules(frozenset({"b", "c"}), frozenset({"d"}))
    assert parse_gate(gate_text(rules).encode()) == rules
    assert parse_gate(b"{}") == GateRules()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"[1]", "JSON object"),
        (b"{", "not JSON"),
        (b'{"drop": []}', "unknown keys"),
        (b'{"drop_from": "a"}', "list of peer ids"),
        (b'{"drop_to": [1]}', "list of peer ids"),
        (b" " * (MAX_GATE_FILE_BYTES + 1), "at most"),
    ],
)
def test_parse_gate_refuses_what_is_not_a_gate(raw: bytes, message: str) -> None:
    with pytest.raises(FaultGateError, match=message):
        parse_gate(raw)


def test_gate_file_is_reread_when_it_changes_at_most_once_a_poll(tmp_path: Path) -> None:
    now = [0.0]
    path = tmp_path / GATE_FILE
    gate = GateFile(path, poll_interval_s=1.0, monotonic=lambda: now[0])
    assert gate.rules() == GateRules()  # no file: open
    path.write_text(gate_text(GateRules(frozenset({"x"}))))
    assert gate.rules() == GateRules()  # not looked at again before the interval
    now[0] = 1.0
    assert gate.rules().drop_from == {"x"}
    path.write_text("not json, longer")
    now[0] = 2.0
    assert gate.rules().drop_from == {"x"}  # a broken file keeps the last rules
    path.unlink()
    now[0] = 3.0
    assert gate.rules() == GateRules()


def _pair(tmp_path: Path) -> tuple[FakeNetwork, FakeNetwork, FaultGate, Path]:
    hub = FakeHub()
    a, b = hub.join("a"), hub.join("b")
    a.online = b.online = True
    path = tmp_path / GATE_FILE
    gate = FaultGate(a, GateFile(path, poll_interval_s=0.0))
    return a, b, gate, path


def test_the_gate_drops_inbound_from_listed_peers_and_keeps_draining(tmp_path: Path) -> None:
    _a, b, gate, path = _pair(tmp_path)
    path.write_text(gate_text(GateRules(drop_from=frozenset({"b"}))))
    for index in range(5):
        b.send("a", "t", bytes([index]))
    assert gate.receive(2) == []  # all five dropped in one call, none left behind
    path.write_text(gate_text(GateRules()))
    b.send("a", "t", b"ok")
    assert [m.data for m in gate.receive(10)] == [b"ok"]
    assert gate.dropped == 5


def test_the_gate_drops_outbound_and_refuses_requests(tmp_path: Path) -> None:
    a, b, gate, path = _pair(tmp_path)
    path.write_text(gate_text(GateRules(drop_from=frozenset({"b"}), drop_to=frozenset({"b"}))))

    async def echo(peer: str, data: bytes) -> bytes:
        return data

    gate.register_handler("/p", echo)
    b.register_handler("/p", echo)
    gate.send("b", "t", b"x")
    assert b.receive(10) == []

    async def main() -> None:
        with pytest.raises(PeerUnreachableError):
            await gate.request("b", "/p", b"x", 1_000)
        with pytest.raises(RemoteError, match="fault gate"):
            await b.request("a", "/p", b"x", 1_000)
        path.write_text("{}")
        assert await gate.request("b", "/p", b"y", 1_000) == b"y"
        assert await b.request("a", "/p", b"z", 1_000) == b"z"

    trio.run(main)
    assert gate.dropped == 3
    assert gate.peers() == a.peers() == ("b",)


def test_gated_wraps_only_when_asked(tmp_path: Path) -> None:
    hub = FakeHub()
    network = hub.join("a")
    assert gated(network, tmp_path, FaultOptions()) is network
    assert isinstance(gated(network, tmp_path, FaultOptions(gate=True)), FaultGate)


def test_a_skewed_clock_is_ahead_by_its_skew() -> None:
    plain, ahead = SystemClock().now_ms(), SystemClock(skew_ms=3_600_000).now_ms()
    assert 3_500_000 < ahead - plain < 3_700_000


def test_faults_need_the_environment_flag(tmp_path: Path) -> None:
    assert faults_allowed({"BIGHEALTH_ALLOW_FAULTS": "1"})
    assert not faults_allowed({"BIGHEALTH_ALLOW_FAULTS": "yes"})
    assert not faults_allowed({})
    env = {k: v for k, v in os.environ.items() if k != "BIGHEALTH_ALLOW_FAULTS"}
    for flag in (["--fault-gate"], ["--clock-skew-ms", "5"]):
        done = subprocess.run(
            [sys.executable, "-m", "node", "run", "--home", str(tmp_path), *flag],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        assert done.returncode == 2, done.stderr
        assert "BIGHEALTH_ALLOW_FAULTS=1" in done.stderr
