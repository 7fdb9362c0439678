"""Sending a trace's readings as a device does: one FHIR ``Observation`` per reading,
uploaded through ``HealthClient.upload_record`` (sealed for the patient and the readers,
stored by the custodians, committed on chain, signed with the device's key).

``run_meter`` paces the readings: reading ``i`` of a trace starting at ``start_ms`` goes
out ``(time_i - start_ms) / speed`` after the run began (``speed`` 60: one simulated hour a
real minute), and never before its own time has come on the wall clock (the chain refuses
a reading from more than 5 minutes in the future, and no meter measures the future): an
accelerated run of past readings catches up with the present, then goes on in real time.
``count`` stops it after that many readings. Clock, sleep and output are parameters, so
tests run it in virtual time.

An upload that fails for a reason that may pass (no node answers, no custodian took the
blob, the node's mempool is full, the node answers 5xx) is tried again, ``retries`` times
at most, waiting ``retry_delay_s`` doubled each time; then the run stops with
``MeterUnreachable`` or ``MeterRefused``. A refusal that will not pass (the contract refused
the commitment: a device not paired to the patient, say) stops it at once
(``MeterRefused``); so does a commitment not confirmed in time (``MeterError``: sending the
reading again could record it twice).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from health import fhir
from health.client.errors import (
    ClientError,
    ReceiptTimeout,
    RecordError,
    TransactionRejected,
)
from health.contracts.common import GLUCOSE_RESOURCE_TYPE, ID_BYTES, HealthRole, Identity
from health.glucose import AlertLevel, alert_for
from health.meter.trace import DEVICE_KINDS, Reading, TraceKind
from node.api.client import ApiError, ApiResponseError, ApiUnreachableError
from node.errors import BigHealthError, RejectReason

DEFAULT_RETRIES: Final = 3
DEFAULT_RETRY_DELAY_S: Final = 1.0
MAX_RETRIES: Final = 20
MAX_SLEEP_S: Final = 60.0
"""One wait is cut into sleeps of at most this (a clock step is noticed within it)."""
MAX_SPEED: Final = 1_000_000.0
MAX_COUNT: Final = 1_000_000
TRANSIENT_REJECTIONS: Final = frozenset(
    {
        RejectReason.MEMPOOL_FULL.value,
        RejectReason.ACCOUNT_LIMIT.value,
        RejectReason.NONCE_USED.value,
        RejectReason.NONCE_GAP.value,
    }
)
"""Admission refusals that a later attempt may not meet."""
ALERT_LABELS: Final = {
    AlertLevel.HYPO_2: "very low",
    AlertLevel.HYPO_1: "low",
    None: "in range",
    AlertLevel.HYPER_1: "high",
    AlertLevel.HYPER_2: "very high",
}
"""The bands of the consensus on time in range, lowest first (``None``: 70–180 mg/dL)."""


class MeterError(BigHealthError):
    """The simulator cannot go on; the message says why and what to check."""


class MeterUnreachable(MeterError):
    """No node (or no custodian) answered, even after the retries."""


class MeterRefused(MeterError):
    """The node, the custodians or the chain refused a reading."""


class RecordUploader(Protocol):
    """What ``run_meter`` needs of a ``HealthClient``."""

    def upload_record(
        self,
        content: Mapping[str, Any],
        *,
        owner: bytes | None = None,
        resource_type: str,
        code: str,
        data_time_ms: int,
        custodians: Sequence[tuple[bytes, str]],
        readers: Sequence[bytes] = (),
    ) -> bytes: ...


@dataclass(frozen=True, slots=True)
class MeterTarget:
    """Where the readings go: the patient who owns them, the device that writes them, the
    custodians (identity id, API URL) that keep them and the readers they are sealed for."""

    patient: bytes
    device: bytes
    kind: TraceKind
    custodians: tuple[tuple[bytes, str], ...]
    readers: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        if len(self.patient) != ID_BYTES or len(self.device) != ID_BYTES:
            raise MeterError(f"identity ids are {ID_BYTES} bytes")
        if not self.custodians:
            raise MeterError("a reading needs at least one custodian (--custodian ID=URL)")


@dataclass(frozen=True, slots=True)
class Pacing:
    """How fast, how many, how stubborn (see the module docstring)."""

    speed: float = 1.0
    count: int | None = None
    retries: int = DEFAULT_RETRIES
    retry_delay_s: float = DEFAULT_RETRY_DELAY_S

    def __post_init__(self) -> None:
        if not (math.isfinite(self.speed) and 0 < self.speed <= MAX_SPEED):
            raise MeterError(f"a speed is > 0 and at most {MAX_SPEED:g}, got {self.speed}")
        if self.count is not None and not 1 <= self.count <= MAX_COUNT:
            raise MeterError(f"a count is 1..{MAX_COUNT}, got {self.count}")
        if not 0 <= self.retries <= MAX_RETRIES:
            raise MeterError(f"retries are 0..{MAX_RETRIES}, got {self.retries}")
        if not (math.isfinite(self.retry_delay_s) and 0 <= self.retry_delay_s <= MAX_SLEEP_S):
            raise MeterError(f"a retry delay is 0..{MAX_SLEEP_S:g} s, got {self.retry_delay_s}")


@dataclass
class MeterSummary:
    """What a run sent: counts by band (as ``health.glucose``: <54, 54–69, 70–180,
    181–250, >250), the mean, retries, the simulated and real time covered."""

    sent: int = 0
    retries: int = 0
    total_mg_dl: float = 0.0
    bands: dict[AlertLevel | None, int] = field(
        default_factory=lambda: dict.fromkeys(ALERT_LABELS, 0)
    )
    first_ms: int | None = None
    last_ms: int | None = None
    real_s: float = 0.0

    def add(self, reading: Reading, alert: AlertLevel | None) -> None:
        self.sent += 1
        self.total_mg_dl += reading.mg_dl
        self.bands[alert] += 1
        self.first_ms = reading.time_ms if self.first_ms is None else self.first_ms
        self.last_ms = reading.time_ms

    def share_pct(self, alert: AlertLevel | None) -> float:
        """The share of readings in ``alert``'s band (``None``: in range), in %."""
        return 100.0 * self.bands[alert] / self.sent if self.sent else 0.0

    def lines(self) -> list[str]:
        """The summary for people, a line each."""
        if not self.sent or self.first_ms is None or self.last_ms is None:
            return [f"readings sent     0 (retries {self.retries})"]
        span_h = (self.last_ms - self.first_ms) / 3_600_000
        shares = "  ".join(f"{ALERT_LABELS[a]} {self.share_pct(a):.1f} %" for a in ALERT_LABELS)
        return [
            f"readings sent     {self.sent} (retries {self.retries})",
            f"simulated time    {fhir.iso_datetime(self.first_ms)} .. "
            f"{fhir.iso_datetime(self.last_ms)} ({span_h:.1f} h) in {self.real_s:.1f} s",
            f"mean glucose      {self.total_mg_dl / self.sent:.0f} mg/dL",
            f"time in ranges    {shares}",
        ]


def reading_line(reading: Reading, alert: AlertLevel | None, record: bytes) -> str:
    """One reading for people: time, value, band, record id."""
    return (
        f"{fhir.iso_datetime(reading.time_ms)}  {reading.mg_dl:>3} mg/dL  "
        f"{ALERT_LABELS[alert]:<9}  record {record.hex()}"
    )


def check_target(identity_of: Callable[[bytes], Identity | None], target: MeterTarget) -> None:
    """Refuse early (``MeterRefused``, saying what to do) what the chain would refuse at
    every reading: a patient who is not an active patient, an author (``target.device``)
    that is neither the patient nor an active device paired to the patient, or a device
    registered as another kind than ``target.kind``. ``identity_of`` reads the committed
    identities (``HealthClient.identity``)."""
    patient = identity_of(target.patient)
    if patient is None or not patient.active or patient.role is not HealthRole.PATIENT:
        raise MeterRefused(f"{target.patient.hex()} is not an active patient on this chain")
    if target.device == target.patient:
        return  # the patient's own keystore: the owner writes its readings
    device = identity_of(target.device)
    if device is None:
        raise MeterRefused(
            f"the keystore's identity {target.device.hex()} is not on chain: the patient "
            "pairs the device first (identity.register, role device)"
        )
    if device.role is not HealthRole.DEVICE:
        raise MeterRefused(
            f"the keystore's identity is a {device.role.name.lower()}, not a device or the patient"
        )
    if not device.active:
        raise MeterRefused(f"the device {target.device.hex()} was unpaired (deactivated)")
    if device.parent != target.patient:
        raise MeterRefused(
            f"the device is paired to {device.parent.hex()}, not to the patient "
            f"{target.patient.hex()}"
        )
    if device.kind != DEVICE_KINDS[target.kind]:
        raise MeterRefused(
            f"the device is registered as a {device.kind}, not a {DEVICE_KINDS[target.kind]}"
        )


def observation_for(target: MeterTarget, reading: Reading) -> dict[str, Any]:
    """The FHIR ``Observation`` of ``reading`` (``fhir.glucose_observation``): the LOINC
    code of the device's kind, the patient as subject, the device if it is not the patient."""
    device_ref = None if target.device == target.patient else f"Device/{target.device.hex()}"
    return fhir.glucose_observation(
        observation_id=f"glucose-{reading.time_ms}-{target.device.hex()[:16]}",
        patient_ref=f"Patient/{target.patient.hex()}",
        mg_dl=reading.mg_dl,
        time_ms=reading.time_ms,
        device=DEVICE_KINDS[target.kind],
        device_ref=device_ref,
    )


def run_meter(
    readings: Iterable[Reading],
    uploader: RecordUploader,
    target: MeterTarget,
    pacing: Pacing,
    *,
    start_ms: int,
    clock_ms: Callable[[], int],
    sleep: Callable[[float], None],
    emit: Callable[[str], None],
    warn: Callable[[str], None] | None = None,
    summary: MeterSummary | None = None,
) -> MeterSummary:
    """Send ``readings`` (a trace starting at ``start_ms``) paced by ``pacing``; print a line
    per reading with ``emit`` and each retry with ``warn``; count into ``summary`` (a new
    one by default: pass one to keep the counts of a run stopped by Ctrl-C). Returns the
    summary after ``pacing.count`` readings or the end of ``readings``. Raises
    ``MeterError`` (see the module docstring)."""
    summary = MeterSummary() if summary is None else summary
    began_ms = clock_ms()
    code = fhir.record_code(DEVICE_KINDS[target.kind])
    for reading in readings:
        if pacing.count is not None and summary.sent >= pacing.count:
            break
        due_ms = max(began_ms + (reading.time_ms - start_ms) / pacing.speed, reading.time_ms)
        wait_until(due_ms, clock_ms, sleep)
        alert = alert_for(reading.mg_dl)
        record = _upload(
            uploader,
            target,
            reading,
            code=code,
            pacing=pacing,
            sleep=sleep,
            warn=warn or emit,
            summary=summary,
        )
        summary.add(reading, alert)
        summary.real_s = (clock_ms() - began_ms) / 1000
        emit(reading_line(reading, alert, record))
    return summary


def wait_until(due_ms: float, clock_ms: Callable[[], int], sleep: Callable[[float], None]) -> None:
    """Return once ``clock_ms()`` reaches ``due_ms``, sleeping at most ``MAX_SLEEP_S`` at a
    time."""
    while (left_ms := due_ms - clock_ms()) > 0:
        sleep(min(left_ms / 1000, MAX_SLEEP_S))


def _upload(
    uploader: RecordUploader,
    target: MeterTarget,
    reading: Reading,
    *,
    code: str,
    pacing: Pacing,
    sleep: Callable[[float], None],
    warn: Callable[[str], None],
    summary: MeterSummary,
) -> bytes:
    """Upload one reading, retrying what may pass (see the module docstring)."""
    when = fhir.iso_datetime(reading.time_ms)
    delay_s = pacing.retry_delay_s
    for attempt in range(pacing.retries + 1):
        try:
            return uploader.upload_record(
                observation_for(target, reading),
                owner=target.patient,
                resource_type=GLUCOSE_RESOURCE_TYPE,
                code=code,
                data_time_ms=reading.time_ms,
                custodians=target.custodians,
                readers=target.readers,
            )
        except ReceiptTimeout as exc:
            raise MeterError(
                f"the reading of {when} was sent but not confirmed: {exc}; stopping rather "
                "than sending it twice"
            ) from exc
        except (ClientError, ApiError) as exc:
            if not _may_pass(exc):
                raise MeterRefused(f"the reading of {when} was refused: {exc}") from exc
            if attempt == pacing.retries:
                tries = f"{pacing.retries + 1} attempt{'s' if pacing.retries else ''}"
                if isinstance(exc, ApiUnreachableError | ApiResponseError):
                    raise MeterUnreachable(f"the reading of {when}, {tries}: {exc}") from exc
                raise MeterRefused(f"the reading of {when}, {tries}: {exc}") from exc
            summary.retries += 1
            warn(f"retrying the reading of {when} in {delay_s:g} s: {exc}")
            sleep(delay_s)
            delay_s = min(MAX_SLEEP_S, delay_s * 2)
    raise AssertionError("unreachable")


def _may_pass(exc: ClientError | ApiError) -> bool:
    """True for a failure that a later attempt may not meet."""
    if isinstance(exc, ApiUnreachableError):
        return True
    if isinstance(exc, ApiResponseError):
        return exc.status >= 500
    if isinstance(exc, RecordError):
        return exc.reason == "no_custodian"
    if isinstance(exc, TransactionRejected):
        return exc.reason in TRANSIENT_REJECTIONS
    return False  # TransactionFailed (the contract refused), unknown identities...
