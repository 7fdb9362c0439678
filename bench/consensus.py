"""Consensus benchmark: inputs handled per second by ConsensusCore, for 4, 16 and 64 validators.

    python -m bench.consensus [--json PATH] [--repeat N] [--smoke]

Two scenarios, both deciding one height after another in round 0 with every message signed
(signing and signature checks are set-up, outside the timed part, as in a node where the edge
verifies before the core):

* ``validator`` — one validator's core receives a height's traffic: the proposal, every
  prevote, every precommit (its own included, as its shell feeds them back).
* ``network``  — every validator's core receives that traffic, as in a simulated network;
  the figure is all cores' inputs over the total time.

Each scenario runs ``--repeat`` times: the table's ``best`` columns are the fastest run (the
figures the target is checked against), beside the least, median and greatest inputs/s of all
the runs. Every height must be decided by
every core, or the benchmark fails: a fast core that decides nothing measures nothing.
Target: thousands of inputs per second at 64 validators. ``--smoke`` runs tiny sizes once.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from bench.common import (
    Column,
    Stats,
    bench_parser,
    machine_facts,
    machine_line,
    mode_of,
    render_table,
    sizes_for,
    write_json,
)
from consensus import (
    ConsensusCore,
    Decide,
    Input,
    ProposalReceived,
    StartHeight,
    Validator,
    ValidatorSet,
    VoteReceived,
    VoteType,
    proposal_sign_bytes,
    vote_sign_bytes,
)
from consensus.types import Proposal, Vote
from crypto_core.signatures import Ed25519KeyPair, sha256

CHAIN_ID = "bench-consensus"
TARGET_INPUTS_PER_SECOND_AT_64 = 5_000
FULL_HEIGHTS = {4: 1_000, 16: 250, 64: 60}
SMOKE_HEIGHTS = {4: 2, 16: 1}


@dataclass(frozen=True)
class Row:
    """One measured case: the fastest run's seconds, and the spread of all the runs'."""

    scenario: str
    validators: int
    heights: int
    inputs: int
    seconds: float
    seconds_spread: Stats

    @property
    def rates(self) -> Stats:
        """Inputs per second: least, median and greatest over the runs."""
        return self.seconds_spread.per(self.inputs)

    @property
    def inputs_per_second(self) -> float:
        """Throughput of the best run."""
        return self.inputs / self.seconds if self.seconds > 0 else float("inf")

    @property
    def microseconds_per_input(self) -> float:
        """Mean cost of one input in the best run."""
        return 1e6 * self.seconds / self.inputs


@dataclass(frozen=True)
class Workload:
    """Signed traffic of consecutive heights, prepared before timing."""

    keys: list[Ed25519KeyPair]
    heights: list[list[Input]]


def prepare(validators: int, heights: int) -> Workload:
    """Keys, validator sets and every signed message of ``heights`` heights."""
    keys = [Ed25519KeyPair.from_seed(sha256(b"bench-key-%d" % i)) for i in range(validators)]
    validator_set = ValidatorSet(Validator(key.public_key, 1) for key in keys)
    by_public_key = {key.public_key: key for key in keys}
    traffic: list[list[Input]] = []
    for height in range(1, heights + 1):
        value = sha256(b"bench-block-%d" % height)
        proposer = by_public_key[validator_set.proposer(0)]
        sign_bytes = proposal_sign_bytes(CHAIN_ID, height, 0, value, -1)
        proposal = Proposal(
            CHAIN_ID, height, 0, value, -1, proposer.public_key, proposer.sign(sign_bytes)
        )
        inputs: list[Input] = [StartHeight(height, validator_set), ProposalReceived(proposal, True)]
        for vote_type in (VoteType.PREVOTE, VoteType.PRECOMMIT):
            vote_bytes = vote_sign_bytes(CHAIN_ID, height, 0, vote_type, value)
            inputs.extend(
                VoteReceived(
                    Vote(CHAIN_ID, height, 0, vote_type, value, k.public_key, k.sign(vote_bytes))
                )
                for k in keys
            )
        traffic.append(inputs)
        validator_set = validator_set.for_next_height()
    return Workload(keys, traffic)


def run_cores(workload: Workload, core_count: int) -> tuple[int, float]:
    """Feed every height to ``core_count`` cores; returns (inputs handled, seconds)."""
    cores = [ConsensusCore(CHAIN_ID, key.public_key) for key in workload.keys[:core_count]]
    handled = decided = 0
    started = time.perf_counter()
    for inputs in workload.heights:
        for core in cores:
            handle = core.handle
            for event in inputs:
                for effect in handle(event):
                    decided += isinstance(effect, Decide)
            handled += len(inputs)
    seconds = time.perf_counter() - started
    expected = len(workload.heights) * core_count
    if decided != expected:
        raise AssertionError(f"decided {decided} heights, expected {expected}")
    return handled, seconds


def measure(heights_by_size: dict[int, int], repeat: int) -> list[Row]:
    """Rows of ``repeat`` runs for both scenarios and every size (fastest run and spread)."""
    rows: list[Row] = []
    for validators, heights in heights_by_size.items():
        workload = prepare(validators, heights)
        for scenario, core_count in (("validator", 1), ("network", validators)):
            runs = [run_cores(workload, core_count) for _ in range(max(1, repeat))]
            handled, seconds = min(runs, key=lambda run: run[1])
            spread = Stats.of(run[1] for run in runs)
            rows.append(Row(scenario, validators, heights, handled, seconds, spread))
    return rows


COLUMNS = (
    Column("scenario", 10),
    Column("validators", 10, ">"),
    Column("heights", 8, ">"),
    Column("inputs", 9, ">"),
    Column("seconds", 9, ">", ".3f"),
    Column("inputs/s", 11, ">", ",.0f"),
    Column("us/input", 9, ">", ".1f"),
    Column("min in/s", 11, ">", ",.0f"),
    Column("median in/s", 11, ">", ",.0f"),
    Column("max in/s", 11, ">", ",.0f"),
)


def render(rows: Sequence[Row], info: dict[str, object] | None = None, repeat: int = 1) -> str:
    """The results as a fixed-width table, under the machine's facts when given."""
    heading = [machine_line(info)] if info is not None else []
    heading.append(
        f"seconds, inputs/s, us/input: the fastest of {repeat} run(s); "
        "min / median / max inputs/s: over all of them"
    )
    table = render_table(
        COLUMNS,
        (
            (
                row.scenario,
                row.validators,
                row.heights,
                row.inputs,
                row.seconds,
                row.inputs_per_second,
                row.microseconds_per_input,
                row.rates.min,
                row.rates.median,
                row.rates.max,
            )
            for row in rows
        ),
    )
    return "\n".join([*heading, table])


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; 0 on success, 1 if a full run misses the 64-validator target."""
    args = bench_parser("consensus", __doc__).parse_args(argv)
    sizes, repeat = sizes_for(args.smoke, SMOKE_HEIGHTS, FULL_HEIGHTS, args.repeat)
    rows = measure(sizes, repeat)
    info = machine_facts()
    print(render(rows, info, repeat))
    if args.json:
        results = [
            {
                **asdict(row),
                "inputs_per_second": row.inputs_per_second,
                "microseconds_per_input": row.microseconds_per_input,
                "inputs_per_second_spread": asdict(row.rates),
            }
            for row in rows
        ]
        write_json(
            args.json,
            "consensus",
            info,
            results,
            mode=mode_of(args.smoke),
            repeat=repeat,
            rows=results,
        )
    slow = [
        row
        for row in rows
        if row.validators == 64 and row.inputs_per_second < TARGET_INPUTS_PER_SECOND_AT_64
    ]
    if slow and not args.smoke:
        print(f"below {TARGET_INPUTS_PER_SECOND_AT_64} inputs/s at 64 validators", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
