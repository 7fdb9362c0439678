"""Write the fuzz corpus: ``python -m tests.fuzz.make_corpus [--per-target N] [--out DIR]``.

For every target of ``tests.fuzz.targets``: ``N`` inputs (default 3) drawn from the target's
own strategy with hypothesis derandomized (valid encodings, their mutations and random
bytes, small ones first), named by their SHA-256, plus the crash inputs of
``tests/fuzz/test_regressions.py`` as ``crash-<name>.bin``. The same code writes the same
files (but for wrapped keys: a sealed box is random), and a target that already has ``N``
seeds is left alone, so running it again only fills in new targets. Nothing is ever deleted
(a crash input stays for good).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings

from tests.fuzz.corpus import CORPUS_DIR, MAX_CORPUS_INPUT_BYTES, write_input
from tests.fuzz.targets import Target, all_targets
from tests.fuzz.test_regressions import CRASHES

CRASH_TARGETS = {"genesis-zero-params": "chain.genesis", "genesis-no-validators": "chain.genesis"}
"""The target each regression input belongs to."""


def sample(target: Target, count: int) -> list[bytes]:
    """Up to ``count`` distinct small inputs of ``target`` (deterministic)."""
    found: list[bytes] = []

    @settings(
        max_examples=count * 20,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(target.inputs)
    def collect(data: bytes) -> None:
        if len(found) < count and data not in found and len(data) <= MAX_CORPUS_INPUT_BYTES:
            found.append(data)

    collect()
    return found


def write_corpus(root: Path, per_target: int) -> int:
    """Write the corpus under ``root``; the number of files written."""
    written = 0
    for name, target in all_targets().items():
        kept = [p for p in (root / name).glob("*.bin") if not p.name.startswith("crash-")]
        if len(kept) >= per_target:
            continue  # its seeds are kept: sealed boxes differ on every run
        for data in sample(target, per_target - len(kept)):
            write_input(name, data, root)
            written += 1
    for crash, data in CRASHES.items():
        write_input(CRASH_TARGETS[crash], data, root, name=f"crash-{crash}")
        written += 1
    return written


def main(argv: list[str] | None = None) -> None:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-target", type=int, default=3)
    parser.add_argument("--out", type=Path, default=CORPUS_DIR)
    args = parser.parse_args(argv)
    print(f"wrote {write_corpus(args.out, args.per_target)} inputs under {args.out}")


if __name__ == "__main__":
    main()
