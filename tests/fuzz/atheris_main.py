"""Coverage-guided fuzzing of one decoder with atheris (libFuzzer), beside the hypothesis runs.

    pip install -e '.[fuzz]'                       # atheris (a manylinux wheel on x86_64)
    python -m tests.fuzz.atheris_main --list         # the targets (tests/fuzz/targets.py)
    python -m tests.fuzz.atheris_main codec.message -runs=100000
    python -m tests.fuzz.atheris_main chain.wal_record -max_total_time=600 NEW_CORPUS_DIR

Arguments after the target go to libFuzzer unchanged (``-runs``, ``-max_total_time``,
``-max_len``, corpus directories: the first one named gets the new inputs, by default
``out/fuzz-corpus/<target>``). The target's seeds in ``tests/fuzz/corpus/<target>`` are
read too, never written. A crash is any exception that is not
one of the target's typed errors: libFuzzer stops and writes the input as
``crash-<sha1>``; copy it into the corpus as ``crash-<what>.bin`` with its fix.

Not a pytest module (no ``test_`` prefix): ``test_atheris.py`` runs it briefly.
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris  # type: ignore[import-untyped,import-not-found,unused-ignore]

from tests.fuzz.corpus import CORPUS_DIR

# The project's modules, first imported here, are instrumented for coverage feedback.
with atheris.instrument_imports(include=["node", "health", "consensus", "crypto_core"]):
    from tests.fuzz.targets import Target, all_targets, check


def _one_input(target: Target) -> object:
    def fuzz(data: bytes) -> None:
        check(target, data)

    return fuzz


def main(argv: list[str]) -> None:
    """Fuzz the target named by ``argv[1]`` (``--list``: print the targets)."""
    targets = all_targets()
    if len(argv) < 2 or argv[1] in ("--list", "-h", "--help"):
        print("\n".join(targets) if len(argv) >= 2 and argv[1] == "--list" else __doc__)
        return
    name = argv[1]
    if name not in targets:
        raise SystemExit(f"no target {name!r}; --list shows them")
    extra = argv[2:]
    if not any(not arg.startswith("-") for arg in extra):  # libFuzzer writes to the first
        work = Path("out") / "fuzz-corpus" / name
        work.mkdir(parents=True, exist_ok=True)
        extra.append(str(work))
    libfuzzer_args = [argv[0], *extra, str(CORPUS_DIR / name)]
    atheris.Setup(libfuzzer_args, _one_input(targets[name]))
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
