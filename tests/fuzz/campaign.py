"""A fuzzing campaign with counts, for reports: ``run_fuzz_campaign(examples) -> FuzzReport``
replays the corpus, then feeds every decoder target ``examples`` generated inputs and counts
what it tried and what escaped untyped.

    python -m tests.fuzz.campaign --examples 500 [--json out.json]

(The API, contract and custodian-handler fuzz tests are pytest tests: ``pytest tests/fuzz
-m slow`` runs their deep forms.)
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, given, settings

from tests.fuzz.corpus import corpus_inputs
from tests.fuzz.targets import Target, all_targets, check


@dataclass
class FuzzReport:
    """What a campaign did: targets, inputs tried (corpus and generated), failures (target:
    the exception that escaped), wall time."""

    targets: int = 0
    corpus_inputs: int = 0
    generated_inputs: int = 0
    failures: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def inputs(self) -> int:
        return self.corpus_inputs + self.generated_inputs


def _fuzz(target: Target, examples: int, report: FuzzReport) -> None:
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(target.inputs)
    def fuzz(data: bytes) -> None:
        report.generated_inputs += 1
        check(target, data)

    try:
        fuzz()
    except Exception as exc:  # collected: one report for the whole campaign
        report.failures.append(f"{target.name}: {type(exc).__name__}: {str(exc)[:300]}")


def run_fuzz_campaign(examples: int = 200) -> FuzzReport:
    """Replay the corpus, then ``examples`` inputs per target (see the module docstring)."""
    started = time.monotonic()
    targets = all_targets()
    report = FuzzReport(targets=len(targets))
    for name, path in corpus_inputs():
        report.corpus_inputs += 1
        try:
            check(targets[name], path.read_bytes())
        except Exception as exc:
            report.failures.append(f"{name} (corpus {path.name}): {type(exc).__name__}: {exc}")
    for target in targets.values():
        _fuzz(target, examples, report)
    report.wall_s = round(time.monotonic() - started, 1)
    return report


def main(argv: list[str] | None = None) -> None:
    """The command line (see the module docstring); exit status 1 if anything escaped."""
    parser = argparse.ArgumentParser(description="fuzz every decoder, with counts")
    parser.add_argument("--examples", type=int, default=200)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    report = run_fuzz_campaign(args.examples)
    document = {**asdict(report), "inputs": report.inputs}
    if args.json is not None:
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    print(
        f"targets: {report.targets}, inputs: {report.inputs} ({report.corpus_inputs} corpus), "
        f"failures: {len(report.failures)}, {report.wall_s} s"
    )
    for failure in report.failures:
        print(failure)
    if report.failures:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
