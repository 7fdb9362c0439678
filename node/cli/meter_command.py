"""``bighealth meter simulate``: a glucose meter or CGM as a process.

It opens the device's keystore, asks the node (``--node``) for its chain, checks that the
keystore's identity may write the patient's readings (the patient itself, or an active
device paired to the patient, of the kind simulated), then sends the readings of
``health.meter.GlucoseTrace`` one by one through ``HealthClient.upload_record``: sealed
for the patient and each ``--reader``, stored by each ``--custodian``, committed on chain,
signed with the device's key. One line per reading (time, mg/dL, band, record id), a
summary at the end, after ``--count`` readings or at Ctrl-C / SIGTERM.

``--speed 60`` plays one simulated hour a real minute. Readings never come from the
future: by default an accelerated run with ``--count`` replays the readings that end now
(``health.meter.backfill_start``); otherwise the trace starts now (or at ``--start-ms``)
and an accelerated run catches up with the present, then goes on in real time.

Exit status: 0 after the readings (or a stop by Ctrl-C / SIGTERM), 1 when it cannot go on
(no node answers, a keystore that does not open, a device the chain does not let write,
an upload refused or unreachable after the retries: one line on stderr), 2 for bad options.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, Protocol

from node.cli.common import EXIT_OK, Subparsers
from node.cli.options import (
    IDENTITY_ID_BYTES,
    METER_RETRIES,
    METER_RETRY_DELAY_S,
    TRACE_KINDS,
)

if TYPE_CHECKING:
    from health.client import HealthClient
    from health.contracts.common import Identity
    from health.meter import GlucoseTrace, TraceKind
    from health.meter.runner import MeterSummary, MeterTarget, Pacing, RecordUploader

# The functions import what they use when they run: building the parser (``--help``) loads
# neither the health stack nor the node's (tests/cli/test_cli_startup.py).

PASSPHRASE_ENV: Final = "BIGHEALTH_PASSPHRASE"
"""Where the keystore's passphrase is read when ``--passphrase`` is not given (an argument
is visible to every user of the machine in the process list)."""
MAX_PARTIES: Final = 8
"""Custodians and readers a reading names at most (the chain's ``max_custodians``)."""


def add_meter(sub: Subparsers) -> None:
    """``bighealth meter simulate``."""
    parser = sub.add_parser("meter", help="a simulated glucose meter or CGM")
    actions = parser.add_subparsers(dest="meter_command", metavar="ACTION", required=True)
    simulate = actions.add_parser(
        "simulate", help="send a simulated patient's readings through the client library"
    )
    simulate.add_argument(
        "--keystore", type=Path, required=True, metavar="FILE", help="the device's keystore"
    )
    simulate.add_argument(
        "--passphrase", metavar="P", help=f"the keystore's passphrase (default: ${PASSPHRASE_ENV})"
    )
    simulate.add_argument(
        "--node", required=True, metavar="URL", help="the API URL of the device's node"
    )
    simulate.add_argument(
        "--patient",
        type=identity_hex,
        required=True,
        metavar="HEX",
        help="the patient's identity id (hex)",
    )
    simulate.add_argument(
        "--custodian",
        type=custodian_entry,
        action="append",
        required=True,
        metavar="HEX=URL",
        help="a custodian's identity id and its node's API URL (repeat for each)",
    )
    simulate.add_argument(
        "--reader",
        type=identity_hex,
        action="append",
        default=[],
        metavar="HEX",
        help="an identity the readings are also sealed for (repeatable)",
    )
    _add_trace_options(simulate)
    simulate.set_defaults(handler=cmd_meter_simulate)


def _add_trace_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--kind",
        choices=TRACE_KINDS,
        help="a CGM every 5 minutes or a meter 4 times a day (default: the device's kind)",
    )
    parser.add_argument(
        "--speed",
        type=positive_number,
        metavar="X",
        default=1.0,
        help="simulated time per real time (60: 1 h a minute)",
    )
    parser.add_argument(
        "--count", type=positive_int, metavar="N", help="stop after this many readings"
    )
    parser.add_argument(
        "--start-ms",
        type=int,
        metavar="MS",
        help="the first reading's time, epoch ms (default: now, or the readings that end "
        "now for an accelerated run with --count)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        metavar="N",
        help="the simulated patient (default: from the device's id)",
    )
    parser.add_argument(
        "--tz-offset-minutes",
        type=int,
        metavar="MIN",
        help="the patient's zone for meal times (default: this machine's)",
    )
    parser.add_argument(
        "--retries",
        type=int,
        default=METER_RETRIES,
        metavar="N",
        help="attempts after a failed upload, if the failure may pass",
    )
    parser.add_argument(
        "--retry-delay-s",
        type=float,
        metavar="S",
        default=METER_RETRY_DELAY_S,
        help="the first retry's wait, doubled at each retry",
    )


def positive_number(text: str) -> float:
    """A finite number > 0 (argparse type)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"a finite number > 0, not {text!r}")
    return value


def positive_int(text: str) -> int:
    """An integer > 0 (argparse type)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"an integer > 0, not {text!r}")
    return value


def identity_hex(text: str) -> bytes:
    """An identity id given in hex (argparse type)."""
    try:
        value = bytes.fromhex(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not hexadecimal: {text!r}") from None
    if len(value) != IDENTITY_ID_BYTES:
        raise argparse.ArgumentTypeError(f"an identity id is {IDENTITY_ID_BYTES} bytes in hex")
    return value


def custodian_entry(text: str) -> tuple[bytes, str]:
    """``HEX=URL``: a custodian's identity id and its node's API URL (argparse type)."""
    identity, separator, url = text.partition("=")
    if not separator or not url.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(f"a custodian is HEX=http(s)://host:port, not {text!r}")
    return identity_hex(identity), url


if TYPE_CHECKING:

    class MeterClient(RecordUploader, Protocol):
        """What the command needs of a ``HealthClient``: uploads, identities, our identity."""

        @property
        def identity_id(self) -> bytes: ...

        def identity(self, identity_id: bytes) -> Identity | None: ...


def _wall_clock_ms() -> int:
    return int(time.time() * 1000)


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr)


@dataclass(frozen=True, slots=True)
class Console:
    """Where the command's time and lines come from and go (the real ones by default)."""

    clock_ms: Callable[[], int] = _wall_clock_ms
    sleep: Callable[[float], None] = time.sleep
    emit: Callable[[str], None] = print
    warn: Callable[[str], None] = _to_stderr


def cmd_meter_simulate(args: argparse.Namespace) -> int:
    """Open the keystore, connect, check, send (see the module docstring)."""
    client = open_client(args)
    with sigterm_as_interrupt():
        simulate(args, client, Console())
    return EXIT_OK


def open_client(args: argparse.Namespace) -> HealthClient:
    """The device's ``HealthClient`` on ``--node``'s chain, custodians known."""
    from health.client import HealthClient, Keystore, NodeClient  # noqa: PLC0415
    from health.meter.runner import MeterError  # noqa: PLC0415

    passphrase = args.passphrase if args.passphrase is not None else os.environ.get(PASSPHRASE_ENV)
    if passphrase is None:
        raise MeterError(f"the keystore's passphrase: give --passphrase or set ${PASSPHRASE_ENV}")
    keystore = Keystore.open(args.keystore, passphrase)
    try:
        node = NodeClient(args.node)
    except ValueError as exc:
        raise MeterError(str(exc)) from None
    chain_id = node.status().get("chain_id")
    if not isinstance(chain_id, str) or not chain_id:
        raise MeterError(f"{args.node} answered a status without a chain id: is it a node?")
    return HealthClient(args.node, keystore, chain_id, custodians=dict(args.custodian))


def simulate(args: argparse.Namespace, client: MeterClient, console: Console) -> MeterSummary:
    """Check the target, then send the trace's readings as ``args`` say; the summary (also
    printed, after Ctrl-C / SIGTERM too)."""
    from health.fhir import iso_datetime  # noqa: PLC0415
    from health.meter.runner import MeterSummary, run_meter  # noqa: PLC0415
    from health.meter.trace import DEVICE_KINDS  # noqa: PLC0415

    target, pacing, trace = plan(args, client, console.clock_ms())
    console.emit(
        f"meter simulate: {DEVICE_KINDS[target.kind]} {target.device.hex()[:16]}… for patient "
        f"{target.patient.hex()[:16]}…, seed {trace.seed}, from {iso_datetime(trace.start_ms)}, "
        f"speed {pacing.speed:g}, {pacing.count or 'endless'} readings, "
        f"{len(target.custodians)} custodian(s)"
    )
    summary = MeterSummary()
    try:
        run_meter(
            trace,
            client,
            target,
            pacing,
            start_ms=trace.start_ms,
            clock_ms=console.clock_ms,
            sleep=console.sleep,
            emit=console.emit,
            warn=console.warn,
            summary=summary,
        )
    except KeyboardInterrupt:
        console.emit("stopped")
    finally:  # also before the error that stopped the run
        for line in summary.lines():
            console.emit(line)
    return summary


def plan(
    args: argparse.Namespace, client: MeterClient, now_ms: int
) -> tuple[MeterTarget, Pacing, GlucoseTrace]:
    """Where the readings go (checked against the chain), how they are paced, and the trace
    (its start: ``--start-ms``, else the readings that end at ``now_ms`` for an accelerated
    run with a count, else ``now_ms``)."""
    from health.meter import GlucoseTrace, TraceError, TraceKind, backfill_start  # noqa: PLC0415
    from health.meter.runner import MeterError, MeterTarget, Pacing, check_target  # noqa: PLC0415

    custodians = tuple(dict(args.custodian).items())
    readers = tuple(dict.fromkeys(args.reader))
    if len(custodians) > MAX_PARTIES or len(readers) > MAX_PARTIES:
        raise MeterError(f"at most {MAX_PARTIES} custodians and {MAX_PARTIES} readers")
    device = client.identity_id
    kind = TraceKind(args.kind) if args.kind else _device_kind(client, device, args.patient)
    target = MeterTarget(args.patient, device, kind, custodians, readers)
    pacing = Pacing(args.speed, args.count, args.retries, args.retry_delay_s)
    check_target(client.identity, target)
    seed = args.seed if args.seed is not None else int.from_bytes(device[:8], "big")
    tz = args.tz_offset_minutes
    if tz is None:
        tz = (time.localtime().tm_gmtoff or 0) // 60
    start = args.start_ms
    try:
        if start is None and pacing.speed > 1 and pacing.count is not None:
            start = backfill_start(seed, kind, now_ms, pacing.count, tz_offset_minutes=tz)
        trace = GlucoseTrace(seed, kind, now_ms if start is None else start, tz_offset_minutes=tz)
    except TraceError as exc:
        raise MeterError(str(exc)) from None
    return target, pacing, trace


def _device_kind(client: MeterClient, device: bytes, patient: bytes) -> TraceKind:
    """The kind of the device on chain (a CGM for the patient's own keystore)."""
    from health.meter import TraceKind  # noqa: PLC0415
    from health.meter.runner import MeterError  # noqa: PLC0415
    from health.meter.trace import DEVICE_KINDS  # noqa: PLC0415

    if device == patient:
        return TraceKind.CGM
    found = client.identity(device)
    for kind, device_kind in DEVICE_KINDS.items():
        if found is not None and found.kind == device_kind:
            return kind
    raise MeterError(
        f"the keystore's identity {device.hex()} is not a paired glucose meter or CGM; "
        "pair it first, or give --kind"
    )


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises ``KeyboardInterrupt`` (a graceful stop)."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
