"""Throughput of a live local network: ``bighealth bench network``, run as a bench module.

    python -m bench.throughput [--validators 4] [--duration 60] [--rate max|N] [--sweep]
                               [--smoke] [--json FILE] [--plot FILE] [...]

The same command and options as ``bighealth bench network`` (``node/cli/bench/``, described
in docs/BENCHMARKS.md); it lives in the node's command line because the packages may not
import ``bench/``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from node.cli import main as bighealth


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    return bighealth(["bench", "network", *args])


if __name__ == "__main__":
    sys.exit(main())
