"""``docs/RELIABILITY.md`` from ``bighealth chaos`` results, the fuzz targets and the access
attacks, in one command:

    python -m bench.reliability --json short.json --json long.json [--notes notes.md] \
        > docs/RELIABILITY.md

Each ``--json`` is a campaign's result (``bighealth chaos --json FILE``), one column of the
table. The fuzzing figures are counted from ``tests/fuzz`` (targets, corpus, inputs a run
tries) and the attack figures come from running ``tests.health.access_attacks`` (a second
or so); either is left out, and the report says so, when its module is not there.
``--notes`` adds a Markdown file's text under "Notes" (what a campaign found).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from node.cli.chaos.report import Figures, ReportError, render_reliability


def fuzz_figures() -> list[Figures]:
    """What ``tests/fuzz`` tries (none when it is absent)."""
    try:
        decoders = importlib.import_module("tests.fuzz.test_decoders")
    except ImportError:
        return []
    targets, corpus = len(decoders.TARGETS), len(decoders.CORPUS)
    source = "tests/fuzz"
    return [
        Figures("decoders and entry points fuzzed", targets, source),
        Figures("corpus inputs replayed every run", corpus, "tests/fuzz/corpus"),
        Figures(
            "inputs fuzzed by a default run (corpus and generated)",
            corpus + targets * int(decoders.DEFAULT_EXAMPLES),
            source,
        ),
        Figures(
            "inputs fuzzed by a deep run (`-m slow`)",
            corpus + targets * int(decoders.DEEP_EXAMPLES),
            source,
        ),
    ]


def attack_figures() -> list[Figures]:
    """The access attacks run now (none when their module is absent)."""
    try:
        attacks = importlib.import_module("tests.health.access_attacks")
    except ImportError:
        return []
    report = attacks.run_access_attacks()
    source = "tests/health/access_attacks.py"
    return [
        Figures("access attacks tried", int(report.tried), source),
        Figures("… refused", int(report.refused), source),
        Figures("… recorded as designed (audit)", int(report.audited), source),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reliability", description=__doc__)
    parser.add_argument(
        "--json", type=Path, action="append", required=True, metavar="FILE",
        help="a campaign's result (bighealth chaos --json FILE); repeatable",
    )  # fmt: skip
    parser.add_argument(
        "--notes", type=Path, metavar="FILE", help="Markdown added under Notes (findings)"
    )
    args = parser.parse_args(argv)
    try:
        campaigns = [json.loads(path.read_text()) for path in args.json]
        notes = args.notes.read_text() if args.notes is not None else ""
        text = render_reliability(campaigns, [*fuzz_figures(), *attack_figures()], notes)
    except (OSError, ValueError, ReportError) as exc:
        print(f"bench.reliability: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
