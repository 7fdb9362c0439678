"""``bighealth chaos``'s pure parts: the schedule replays from its seed, the invariants judge
fabricated inputs, the report renders, the at-rest scan finds what it must, a store is read
back; and the command's options are checked."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from consensus.types import CommitCertificate, CommitSignature, Proposal, Vote, VoteType
from node.adapters.leveldb_store import LevelDBStorage
from node.cli import main
from node.cli.chaos.at_rest import AtRestError, leveldbs, scan_at_rest
from node.cli.chaos.checks import (
    HeightRecord,
    VoteScan,
    double_signs,
    fork_violations,
    recovery_violation,
    root_violations,
)
from node.cli.chaos.command import first_signal_stops
from node.cli.chaos.report import (
    REQUIRED_KEYS,
    CampaignResult,
    Figures,
    ReportError,
    render_reliability,
    table,
)
from node.cli.chaos.schedule import (
    MAX_SKEW_MS,
    ROUND_KILLS,
    FaultKind,
    Nodes,
    counts,
    plan,
)
from node.cli.chaos.stores import certificate_votes

NODES = Nodes(("v0", "v1", "v2", "v3"), ("o0",))
CHAIN = "chaos-test"


# -- the schedule ------------------------------------------------------------------------------


def test_a_seed_replays_its_schedule_and_another_seed_differs() -> None:
    assert plan(42, NODES, 60) == plan(42, NODES, 60)
    assert plan(42, NODES, 60) != plan(43, NODES, 60)
    assert plan(42, NODES, 60)[:13] == plan(42, NODES, 13)  # a prefix is the same prefix


def test_each_round_of_the_schedule_has_every_kind_in_its_share() -> None:
    size = ROUND_KILLS + 3
    schedule = plan(5, NODES, size * 4)
    for start in range(0, len(schedule), size):
        assert counts(schedule[start : start + size]) == {
            "kill": ROUND_KILLS - 1,
            "skewed_restart": 1,
            "pause": 1,
            "partition": 1,
            "one_way": 1,
        }
    assert [episode.index for episode in schedule] == list(range(len(schedule)))


def test_episodes_keep_the_validators_safe_and_name_real_nodes() -> None:
    for episode in plan(9, NODES, 13 * 20):
        assert episode.target in NODES.all
        assert episode.hold_s >= 0
        if episode.kind is FaultKind.SKEWED_RESTART:
            assert episode.target in NODES.validators
            assert 500 <= abs(episode.skew_ms) <= MAX_SKEW_MS
        if episode.kind is FaultKind.PARTITION:
            cut = [name for name in episode.side if name in NODES.validators]
            assert 1 <= len(cut) <= 2 and len(episode.side) < len(NODES.all)
        if episode.kind is FaultKind.ONE_WAY:
            assert episode.side[0] != episode.target
        assert str(episode.index) in episode.describe()


def test_nodes_must_be_named_once() -> None:
    with pytest.raises(ValueError, match="distinct"):
        Nodes(("a", "a"))
    with pytest.raises(ValueError, match="at least one"):
        Nodes(())


# -- the invariants ----------------------------------------------------------------------------


def test_a_fork_is_found_and_a_shorter_chain_is_a_prefix() -> None:
    same = {"a": {1: b"x", 2: b"y"}, "b": {1: b"x"}}
    assert fork_violations(same) == []
    forked = {"a": {1: b"x", 2: b"y"}, "b": {1: b"x", 2: b"z"}}
    (line,) = fork_violations(forked)
    assert "height 2" in line and "a" in line and "b" in line


def test_state_roots_must_agree_at_one_height() -> None:
    assert root_violations({"a": (3, b"r"), "b": (3, b"r"), "c": (4, b"s")}) == []
    assert "height 3" in root_violations({"a": (3, b"r"), "b": (3, b"q")})[0]


def test_a_height_going_back_counts_the_blocks_lost() -> None:
    record = HeightRecord()
    for height in (3, 7, -1, 7, 9):
        record.observe("a", height)
    assert (record.lost, record.violations) == (0, [])
    record.observe("a", 5)
    assert record.lost == 4 and "a reported height 5 after 9" in record.violations[0]


def _vote(validator: bytes, value: bytes | None, *, round_: int = 0, height: int = 5) -> Vote:
    return Vote(CHAIN, height, round_, VoteType.PREVOTE, value, validator, b"s" * 64)


def test_two_different_votes_for_one_step_are_a_double_sign() -> None:
    v1 = b"\x01" * 32
    honest = [_vote(v1, b"a" * 32), _vote(v1, b"a" * 32), _vote(v1, b"b" * 32, round_=1)]
    assert double_signs(honest) == []
    (found,) = double_signs([*honest, _vote(v1, None)])
    assert (found.signer, found.height, found.round) == (v1, 5, 0)
    scan = VoteScan()
    proposal = Proposal(CHAIN, 5, 0, b"a" * 32, -1, v1, b"s" * 64)
    scan.add([proposal, proposal])
    scan.add([Proposal(CHAIN, 5, 0, b"c" * 32, -1, v1, b"s" * 64)])
    assert scan.seen == 3 and len(scan.found) == 1


def test_a_commit_certificate_is_read_as_its_precommits() -> None:
    signatures = (
        CommitSignature(b"\x01" * 32, b"s" * 64),
        CommitSignature(b"\x02" * 32, b"t" * 64),
    )
    certificate = CommitCertificate(CHAIN, 4, 1, b"v" * 32, signatures)
    votes = list(certificate_votes(certificate))
    assert [(v.vote_type, v.height, v.round, v.value_id) for v in votes] == [
        (VoteType.PRECOMMIT, 4, 1, b"v" * 32)
    ] * 2
    assert [v.validator for v in votes] == [b"\x01" * 32, b"\x02" * 32]


def test_recovery_past_the_bound_or_never_is_a_violation() -> None:
    assert recovery_violation("#1", 3.0, 60.0) is None
    assert "60 s" in str(recovery_violation("#1", 61.0, 60.0))
    assert recovery_violation("#2", None, 60.0) is not None


# -- the report --------------------------------------------------------------------------------


def _result(**changes: object) -> CampaignResult:
    result = CampaignResult(seed=7, validators=4, nodes=5, liveness_bound_s=60.0, kills=50)
    for name, value in changes.items():
        setattr(result, name, value)
    return result


def test_the_document_has_the_required_keys_and_a_table() -> None:
    result = _result()
    result.add_recovery(2.0)
    result.add_recovery(4.5)
    document = result.document()
    assert set(REQUIRED_KEYS) <= set(document)
    assert (document["max_recovery_s"], document["mean_recovery_s"]) == (4.5, 3.25)
    assert json.loads(json.dumps(document)) == document
    lines = table(document)
    assert any("blocks lost" in line and line.endswith(" 0") for line in lines)
    assert result.ok and not _result(violations=["x"]).ok


def test_the_reliability_report_has_a_column_per_campaign_and_the_extras() -> None:
    short, long = _result().document(), _result(kills=200, violations=["fork at 3"]).document()
    text = render_reliability([short, long], [Figures("inputs fuzzed", 1234, "tests/fuzz")])
    assert "| faults: kill -9 | 50 | 200 |" in text
    assert "| inputs fuzzed | 1234 | tests/fuzz |" in text
    assert "- fork at 3" in text and "FUZZING.md" in text
    assert "not given" in render_reliability([short])
    assert "## Notes\n\nA stall." in render_reliability([short], notes="A stall.\n")
    with pytest.raises(ReportError, match="lacks"):
        render_reliability([{"seed": 1}])


def test_chaos_report_prints_the_markdown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "a.json"
    path.write_text(json.dumps(_result().document()))
    assert main(["chaos", "report", "--json", str(path)]) == 0
    assert capsys.readouterr().out.startswith("# Reliability")
    path.write_text("{}")
    assert main(["chaos", "report", "--json", str(path)]) == 1
    assert main(["chaos", "report"]) == 2


@pytest.mark.parametrize(
    "options",
    [["--validators", "0"], ["--kills", "-1"], ["--duration", "-1"], ["--liveness-bound", "0"]],
)
def test_chaos_refuses_bad_options(options: list[str]) -> None:
    assert main(["chaos", *options]) == 2


# -- at rest -----------------------------------------------------------------------------------


def test_the_at_rest_scan_finds_a_needle_only_where_it_is(tmp_path: Path) -> None:
    homes = {"n1": tmp_path / "n1", "n2": tmp_path / "n2"}
    for name, home in homes.items():
        home.mkdir()
        with LevelDBStorage(home / "data", CHAIN) as storage:
            storage.put(b"k", b"ciphertext only")
            if name == "n2":
                storage.put(b"leak", b'{"resourceType":"Observation","value":187}')
    databases = leveldbs(homes)
    needles = {"plain": b'"resourceType":"Observation","value":187'}
    assert scan_at_rest(databases, CHAIN, needles) == {"plain": ["n2:data"]}
    assert scan_at_rest(databases, CHAIN, needles, [b"resourceType"]) == {"plain": ["n2:data"]}
    with pytest.raises(AtRestError, match="none of the markers"):
        scan_at_rest(databases, CHAIN, needles, [b"absent"])
    (tmp_path / "n3").mkdir()
    with LevelDBStorage(tmp_path / "n3" / "data", CHAIN):
        pass
    with pytest.raises(AtRestError, match="n3"):
        scan_at_rest(leveldbs({"n3": tmp_path / "n3"}), CHAIN, needles)


def test_a_first_signal_ends_the_schedule_and_a_second_interrupts() -> None:
    with first_signal_stops() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.is_set()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
