"""The Byzantine scenario on live node processes, for tests and the attack campaign.

``run_byzantine_check(directory)`` makes a health testnet of ``validators`` hospitals in
``directory`` (an absent or empty directory), starts every node as a ``bighealth run``
process (``node.cli.localnet.LocalNetwork``), the last validator with
``--byzantine KINDS`` (and ``BIGHEALTH_ALLOW_BYZANTINE=1`` in its environment alone), and
checks what an honest majority must achieve:

- the honest validators keep committing (each at least ``progress_blocks`` past the height
  at which the equivocation evidence was committed) and agree on every block id;
- the equivocation evidence lands in a block (a ``validator.equivocated`` event naming the
  Byzantine validator);
- with ``penalize``, the DAO acts on it: hospital 0 proposes ``PENALIZE`` for that height,
  hospitals 0..2 vote yes, the proposal passes and the member is penalized;
- the honest nodes scored the Byzantine peer down and disconnected it (their ``/status``
  network counters show bans, and none of them lists its peer id).

It returns a ``ByzantineReport`` (``violations`` empty when all held); the nodes are stopped
whatever happens. A failure to start or a timeout is a violation, not an exception.

``python -m node.cli.byzantine_check DIRECTORY [KIND,...]`` runs it and prints the report as
JSON (exit status 1 when a violation was found).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final, TextIO

from node.api.client import ApiClient, ApiError
from node.errors import BigHealthError
from node.home.config import parse_host_port

CHAIN_ID: Final = "bighealth-byzantine-test"
ALL_KINDS: Final = (
    "equivocate",
    "invalid-block",
    "oversized",
    "malformed",
    "tx-flood",
    "stale-replay",
)
START_TIMEOUT_S: Final = 60.0
POLL_S: Final = 0.25
PROBE_TIMEOUT_S: Final = 2.0


@dataclass
class ByzantineReport:
    """What the scenario found (``to_json`` for a campaign's report)."""

    kinds: list[str]
    byzantine_node: str = ""
    byzantine_peer: str = ""
    equivocation_height: int | None = None
    evidence_committed_height: int | None = None
    penalized: bool | None = None
    """``None`` when not asked for."""
    honest_heights: dict[str, int] = field(default_factory=dict)
    chains_agree: bool = False
    banned_by: list[str] = field(default_factory=list)
    """Honest nodes whose network counted a ban."""
    disconnected_from: list[str] = field(default_factory=list)
    """Honest nodes not connected to the Byzantine peer at the end."""
    violations: list[str] = field(default_factory=list)
    duration_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """The report as JSON values."""
        return asdict(self)


def make_byzantine_testnet(directory: Path, validators: int) -> Any:
    """A health testnet of ``validators`` hospitals in ``directory``; its manifest."""
    from health.client import KDF_MIN  # noqa: PLC0415
    from node.chain.config import NodeConfig  # noqa: PLC0415
    from node.cli.health_net import HealthTestnet  # noqa: PLC0415
    from node.cli.home_commands import node_params  # noqa: PLC0415
    from node.cli.testnet import TestnetSpec, create_testnet  # noqa: PLC0415
    from node.runtime.system import SystemClock, SystemRng  # noqa: PLC0415

    spec = TestnetSpec(
        validators=validators,
        chain_id=CHAIN_ID,
        genesis_time_ms=SystemClock().now_ms(),
        params=node_params(
            timeout_propose_ms=1_000, timeout_prevote_ms=500, timeout_precommit_ms=500
        ),
        chain=NodeConfig(commit_wait_ms=200, tx_gossip_interval_ms=100),
    )
    app = HealthTestnet(SystemRng(), clinics=0, kdf=KDF_MIN)
    return create_testnet(directory, spec, SystemRng(), app)


def run_byzantine_check(
    directory: Path,
    kinds: Iterable[str] = ALL_KINDS,
    *,
    validators: int = 4,
    timeout_s: float = 120.0,
    progress_blocks: int = 3,
    penalize: bool = True,
    out: TextIO | None = None,
) -> ByzantineReport:
    """Run the scenario (see the module docstring) and report on it."""
    from node.cli.localnet import LocalNetError, LocalNetwork  # noqa: PLC0415

    report = ByzantineReport(sorted(kinds))
    started = time.monotonic()
    manifest = make_byzantine_testnet(Path(directory), validators)
    names = [node.name for node in manifest.nodes if node.role == "validator"]
    liar, honest = names[-1], names[:-1]
    liar_node = next(n for n in manifest.nodes if n.name == liar)
    report.byzantine_node, report.byzantine_peer = liar, liar_node.peer_id
    say = _printer(out)
    command = _command(Path(directory) / liar_node.home, report.kinds)
    net = LocalNetwork(Path(directory), manifest, command=command)
    try:
        with net:
            net.start()
            net.wait_answering(START_TIMEOUT_S)
            say(f"{len(names)} validators up; {liar} runs --byzantine {','.join(report.kinds)}")
            _check(
                net, report, honest, timeout_s=timeout_s, progress_blocks=progress_blocks,
                penalize=penalize, say=say,
            )  # fmt: skip
    except (LocalNetError, BigHealthError, TimeoutError) as exc:
        report.violations.append(f"{type(exc).__name__}: {exc}")
    report.duration_s = round(time.monotonic() - started, 1)
    return report


def _check(
    net: Any,
    report: ByzantineReport,
    honest: list[str],
    *,
    timeout_s: float,
    progress_blocks: int,
    penalize: bool,
    say: Callable[[str], None],
) -> None:
    deadline = time.monotonic() + timeout_s
    event = _wait(deadline, lambda: _equivocation_event(net, honest[0], report.byzantine_node))
    if event is None:
        report.violations.append("no validator.equivocated event within the time limit")
        return
    report.equivocation_height = int(event["attributes"]["height"])
    report.evidence_committed_height = int(event["height"])
    say(
        f"evidence committed at height {report.evidence_committed_height} "
        f"(equivocation at height {report.equivocation_height})"
    )
    if penalize:
        report.penalized = _penalize(net, report)
        say(f"the DAO penalized {report.byzantine_node}: {report.penalized}")
        if not report.penalized:
            report.violations.append("the penalize proposal did not pass")
    target = report.evidence_committed_height + progress_blocks
    try:
        net.wait_height(target, max(1.0, deadline - time.monotonic()), honest)
    except BigHealthError as exc:
        report.violations.append(f"the honest validators stopped committing: {exc}")
    _judge_peers(net, report, honest, deadline)
    say(f"banned by {report.banned_by}; disconnected from {report.disconnected_from}")


def _judge_peers(net: Any, report: ByzantineReport, honest: list[str], deadline: float) -> None:
    statuses = {name: _status(net, name) for name in honest}
    report.honest_heights = {n: int((s or {}).get("height", -1)) for n, s in statuses.items()}
    common = min(report.honest_heights.values())
    ids = [_block_ids(net, name, common) for name in honest]
    report.chains_agree = common > 0 and all(each == ids[0] for each in ids)
    if not report.chains_agree:
        report.violations.append(f"the honest chains differ below height {common}")

    def cut_off() -> bool | None:
        current = {name: _status(net, name) or {} for name in honest}
        report.banned_by = [
            n for n, s in current.items() if s.get("network", {}).get("bans", 0) > 0
        ]
        report.disconnected_from = [
            n for n, s in current.items() if report.byzantine_peer not in s.get("peer_ids", [])
        ]
        done = len(report.banned_by) == len(report.disconnected_from) == len(honest)
        return True if done else None

    if _wait(deadline, cut_off) is None:
        report.violations.append(
            f"the Byzantine peer was not banned and disconnected by every honest node "
            f"(banned by {report.banned_by}, disconnected from {report.disconnected_from})"
        )


def _penalize(net: Any, report: ByzantineReport) -> bool:
    """Hospital 0 proposes penalizing the Byzantine validator; hospitals 0..2 vote yes."""
    from health.client import HealthClient, Keystore  # noqa: PLC0415
    from health.contracts.governance import Choice  # noqa: PLC0415
    from node.cli.health_net import DEFAULT_TESTNET_PASSPHRASE  # noqa: PLC0415

    assert report.equivocation_height is not None
    validator_key = bytes.fromhex(_validator_key(net, report.byzantine_node))
    voters = []
    for name in net.names:  # validator-<i> is hospital-<i>'s node
        if name == report.byzantine_node:
            continue
        path = net.directory / "clients" / f"hospital-{name.rsplit('-', 1)[1]}.keystore"
        keystore = Keystore.open(path, DEFAULT_TESTNET_PASSPHRASE)
        voters.append(HealthClient(net.api_url(name), keystore, CHAIN_ID))
    number = voters[0].propose_penalize(
        validator_key, report.equivocation_height, "equivocated (Byzantine check)"
    )
    time.sleep(1.0)  # every member's node knows the proposal before it votes
    for voter in voters:  # the honest members vote yes until it passes
        receipt = voter.vote(number, Choice.YES)
        if any(event.name == "governance.passed" for event in receipt.events):
            return True
    return False


def _equivocation_event(net: Any, name: str, liar: str) -> dict[str, Any] | None:
    key = _validator_key(net, liar)
    try:
        page = _api(net, name).get("/events?kind=validator.equivocated&limit=100")
    except ApiError:
        return None
    for event in page.get("events", []):
        if event.get("attributes", {}).get("validator") == key:
            return dict(event)
    return None


def _validator_key(net: Any, name: str) -> str:
    status = _status(net, name)
    if status is not None and status.get("validator_public_key"):
        return str(status["validator_public_key"])
    from node.home import load_home  # noqa: PLC0415

    key = load_home(net.home(name)).validator_key
    assert key is not None
    return key.public_key.hex()


def _block_ids(net: Any, name: str, up_to: int) -> list[str]:
    client = _api(net, name)
    return [str(client.get(f"/blocks/{h}").get("block_id")) for h in range(1, up_to + 1)]


def _status(net: Any, name: str) -> dict[str, Any] | None:
    try:
        return _api(net, name).get("/status")
    except ApiError:
        return None


def _api(net: Any, name: str) -> ApiClient:
    host, port = parse_host_port(net.node(name).api)
    return ApiClient(host, port, timeout_s=PROBE_TIMEOUT_S)


def _wait(deadline: float, probe: Callable[[], Any]) -> Any:
    """``probe()``'s first value that is not ``None``, or ``None`` at ``deadline``."""
    while True:
        value = probe()
        if value is not None or time.monotonic() >= deadline:
            return value
        time.sleep(POLL_S)


def _command(liar_home: Path, kinds: Iterable[str]) -> Callable[[Path], list[str]]:
    flag = ",".join(sorted(kinds))

    def command(home: Path) -> list[str]:
        base = [sys.executable, "-m", "node", "run", "--home", str(home)]
        if home != liar_home:
            return base
        # env(1) execs the node in place: the child's pid is the node's (signals reach it).
        return ["env", "BIGHEALTH_ALLOW_BYZANTINE=1", *base, "--byzantine", flag]

    return command


def _printer(out: TextIO | None) -> Callable[[str], None]:
    def say(line: str) -> None:
        if out is not None:
            print(line, file=out, flush=True)

    return say


def main(argv: list[str]) -> int:
    """``python -m node.cli.byzantine_check DIRECTORY [KIND,...]``."""
    import json  # noqa: PLC0415

    if not 1 <= len(argv) <= 2:
        print("usage: python -m node.cli.byzantine_check DIRECTORY [KIND,...]", file=sys.stderr)
        return 2
    kinds = argv[1].split(",") if len(argv) == 2 else ALL_KINDS
    report = run_byzantine_check(Path(argv[0]), kinds, out=sys.stderr)
    print(json.dumps(report.to_json(), indent=2))
    return 1 if report.violations else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
