"""Our peer scoring: penalties drain over time, a stream of offenses bans, tables are bounded."""

from __future__ import annotations

from node.adapters.peer_scoring import Offense, Scoreboard, ScoringPolicy, StreamGate

POLICY = ScoringPolicy(ban_threshold_points=10, forgive_ms_per_point=1_000, ban_duration_ms=60_000)


def test_repeated_invalid_messages_ban_the_peer_at_the_threshold() -> None:
    board = Scoreboard(POLICY)
    banned = [board.penalize("p", Offense.INVALID_MESSAGE, now_ms=0) for _ in range(10)]
    assert banned == [False] * 9 + [True]
    assert board.is_banned("p", 0)
    assert board.ban_of("p") is not None
    assert board.ban_of("p").reason == "invalid_message"  # type: ignore[union-attr]
    assert not board.penalize("p", Offense.INVALID_MESSAGE, now_ms=1)  # already banned


def test_points_drain_so_an_occasional_offense_is_forgiven() -> None:
    board = Scoreboard(POLICY)
    for second in range(100):  # one bad message every 2 s drains faster than it adds up
        assert not board.penalize("p", Offense.INVALID_MESSAGE, now_ms=second * 2_000)
    assert board.points("p", 200_000) == 0.0
    board.penalize("q", Offense.MALFORMED_FRAME, now_ms=0)
    assert board.points("q", 2_000) == 3.0


def test_another_chain_bans_at_once_and_bans_lapse() -> None:
    board = Scoreboard(POLICY)
    assert board.penalize("p", Offense.WRONG_CHAIN, now_ms=1_000, detail="chain b")
    assert board.bans(1_000)[0].reason == "wrong_chain: chain b"
    assert board.next_expiry_ms() == 61_000
    assert board.expire(60_999) == []
    assert board.is_banned("p", 60_999)
    assert board.expire(61_000) == ["p"]
    assert not board.is_banned("p", 61_000)
    assert board.points("p", 61_000) == 0.0  # the ban started it over


def test_manual_bans_and_unbans() -> None:
    board = Scoreboard(POLICY)
    board.ban("p", now_ms=0, reason="operator", duration_ms=5)
    assert board.is_banned("p", 4) and not board.is_banned("p", 5)
    assert board.unban("p") and not board.unban("p")


def test_both_tables_are_bounded() -> None:
    policy = ScoringPolicy(max_tracked_peers=3, max_banned_peers=2, ban_duration_ms=100)
    board = Scoreboard(policy)
    for i, peer in enumerate(["a", "b", "c", "d"]):
        for _ in range(i + 1):  # d ends up with the most points
            board.penalize(peer, Offense.INVALID_MESSAGE, now_ms=0)
    assert board.points("a", 0) == 0.0  # the lightest was forgotten to make room
    assert board.points("d", 0) == 4.0
    board.ban("x", now_ms=0, reason="r", duration_ms=10)
    board.ban("y", now_ms=0, reason="r", duration_ms=20)
    board.ban("z", now_ms=0, reason="r", duration_ms=30)
    assert [b.peer for b in board.bans(0)] == ["y", "z"]  # the soonest to lapse gave way


def test_the_stream_gate_allows_a_burst_then_the_rate() -> None:
    gate = StreamGate(ScoringPolicy(new_stream_burst=4, new_streams_per_s=2))
    assert [gate.admit("p", 0, 1) for _ in range(4)] == [None] * 4
    refused = gate.admit("p", 0, 1)
    assert refused is not None and "new streams" in refused
    assert gate.admit("p", 499, 1) is not None  # half a second: not yet one stream's worth
    assert gate.admit("p", 500, 1) is None
    assert gate.admit("other", 500, 1) is None  # each peer has its own allowance
    assert [gate.admit("p", 10_000, 1) for _ in range(5)] == [None] * 4 + [refused]


def test_the_stream_gate_caps_open_streams_and_its_table() -> None:
    gate = StreamGate(ScoringPolicy(max_open_inbound_streams=3, max_tracked_peers=2))
    assert gate.admit("p", 0, 3) is None
    refused = gate.admit("p", 0, 4)
    assert refused is not None and "at most 3" in refused
    for index, peer in enumerate(("a", "b", "c")):
        gate.admit(peer, index + 1, 1)
    assert gate.tracked() == 2
