"""Records benchmark: encrypted readings through real health nodes, fetches between two nodes,
and the client's key re-wrapping, side by side in one run.

    python -m bench.records [--json PATH] [--smoke]

1. ``upload_*`` — a one-validator health testnet (``bighealth testnet --validators 1
   --observers 0 --health``, its node a process of its own running ``bighealth run`` with the
   health extension). The hospital's client registers a patient, the patient's client pairs a
   CGM, and the CGM's client uploads FHIR glucose Observations owned by the patient with the
   hospital as custodian. First ``single_uploads`` readings one at a time through
   ``HealthClient.upload_record`` (seal + PUT + commit, waiting for the block): the latency of
   one reading. Then ``uploads`` readings from ``upload_threads`` threads as fast as they go:
   each thread seals a reading (FHIR JSON, XChaCha20-Poly1305, SHA-256), wraps its data key for
   the patient (sealed box), signs the author statement, PUTs the blob to the node, submits
   ``records.commit`` and goes on, waiting for the oldest receipt when it has ``upload_window /
   upload_threads`` commitments in flight (the mempool keeps 64 per account). Figures: readings
   committed per second (until the last receipt) and stored per second (until the vault moved
   the last one from pending to stored: ``GET /records/<id>`` says ``held_here``; every reading
   is checked stored), and the mean time per reading of each step: the client's own work (seal,
   wrap, sign) against waiting on the node (PUT, submit, receipt).
2. ``fetch_*`` — a two-validator health testnet (hospital-0 and hospital-1, each announcing
   its node on chain). A patient of hospital-0 uploads a reading kept by hospital-0 alone and
   grants a practitioner of hospital-1 access; the practitioner's client asks hospital-1's node
   (``POST /records/fetch``), which fetches the blob over libp2p ``/bighealth/records/1`` from
   hospital-0's node: ``fetches`` fetches, each a fresh signed request, latency p50/p99 of the
   API call. The same requests sent straight to hospital-0's node (the custodian's own, no
   libp2p hop) are measured beside them.
3. ``rewrap_*``, ``seal_1k``, ``wrap_key`` — in this process: re-wrapping the data keys of
   ``rewraps`` records for a new grantee (``envelopes.rewrap_key``: unwrap with the owner's
   key, wrap for the grantee), and for comparison sealing a 1 KiB record and wrapping one key.

The nodes keep the testnet's defaults (a block about every ``commit_wait_ms`` = 500 ms); their
logs are in a temporary directory, shown when a node fails. ``--smoke`` runs tiny counts, still
with real node processes (blocks every 100 ms, to be quick), so a test keeps the benchmark
from rotting. No targets are enforced: the figures depend on the machine, whose cores the
nodes and the clients share (its load average at the start is reported with its facts).

The parts live in ``bench.records_upload``, ``bench.records_fetch`` and
``bench.records_crypto`` (the testnet they share in ``bench.records_testnet``); this module
runs them and reports, and re-exports their names.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.common import (
    Column,
    bench_parser,
    machine_facts,
    machine_line,
    mode_of,
    render_table,
    sizes_for,
    write_case_rows,
)
from bench.records_crypto import (
    best_seconds,
    crypto_rows,
)
from bench.records_fetch import (
    fetch_rows,
    percentile,
    timed_fetches,
)
from bench.records_testnet import (
    CGM_CODE,
    FULL,
    LOG_TAIL_LINES,
    PASSPHRASE,
    POLL_S,
    PR_SET_PDEATHSIG,
    ROOT,
    SMOKE,
    START_TIMEOUT_S,
    STOP_TIMEOUT_S,
    WAIT_TIMEOUT_S,
    Row,
    Sizes,
    Testnet,
    chain_height,
    client,
    die_with_parent,
    health_testnet,
    new_party,
    now_ms,
    reading,
    run_threads,
)
from bench.records_upload import (
    CLIENT_STEPS,
    RECEIPT_POLL_S,
    STEPS,
    Sealed,
    UploadRun,
    seal_reading,
    upload_rows,
)

__all__ = [
    "CGM_CODE",
    "CLIENT_STEPS",
    "FULL",
    "LOG_TAIL_LINES",
    "PASSPHRASE",
    "POLL_S",
    "PR_SET_PDEATHSIG",
    "RECEIPT_POLL_S",
    "ROOT",
    "SMOKE",
    "START_TIMEOUT_S",
    "STEPS",
    "STOP_TIMEOUT_S",
    "WAIT_TIMEOUT_S",
    "Row",
    "Sealed",
    "Sizes",
    "Testnet",
    "UploadRun",
    "best_seconds",
    "chain_height",
    "client",
    "crypto_rows",
    "die_with_parent",
    "fetch_rows",
    "health_testnet",
    "machine",
    "main",
    "new_party",
    "now_ms",
    "percentile",
    "reading",
    "render",
    "run_bench",
    "run_threads",
    "seal_reading",
    "timed_fetches",
    "upload_rows",
]

_percentile = percentile  # the name the benchmark's tests use


# -- running and reporting ------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """Where the figures were measured."""
    return machine_facts()


COLUMNS = (
    Column("case", 20),
    Column("what", 58),
    Column("value", 10, ">", ",.2f"),
    Column("unit", 5),
)


def render(rows: Sequence[Row], info: dict[str, Any], sizes: Sizes, mode: str) -> str:
    """The figures as a table, under the machine's facts."""
    wait = "500 (default)" if sizes.commit_wait_ms is None else str(sizes.commit_wait_ms)
    heading = f"records benchmark ({mode}); {machine_line(info)}; nodes' commit_wait_ms {wait}"
    table = render_table(COLUMNS, ((r.case, r.what, r.value, r.unit) for r in rows))
    return f"{heading}\n{table}"


def run_bench(sizes: Sizes, repeat: int, counts: dict[str, int]) -> list[Row]:
    """Every part, in order; ``counts`` gets part 1's counts."""
    with tempfile.TemporaryDirectory(prefix="bench-records-") as home:
        rows = upload_rows(Path(home), sizes, counts)
        rows += fetch_rows(Path(home), sizes)
    return rows + crypto_rows(sizes, repeat)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; see the module docstring for the options."""
    parser = bench_parser(
        "records",
        __doc__,
        repeat=None,
        json_help="write the figures to this file",
        smoke_help="tiny counts (for tests)",
    )
    args = parser.parse_args(argv)
    sizes, repeat = sizes_for(args.smoke, SMOKE, FULL, 3)
    info = machine()
    counts: dict[str, int] = {}
    rows = run_bench(sizes, repeat, counts)
    print(render(rows, info, sizes, mode_of(args.smoke)))
    if args.json:
        write_case_rows(
            args.json,
            "records",
            info,
            rows,
            smoke=args.smoke,
            figures="figures",
            sizes=asdict(sizes),
            counts=counts,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
