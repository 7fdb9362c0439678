"""The health workload of a campaign: a patient's glucose readings, uploaded as encrypted
records while the faults go on, and every acknowledged one read back at the end.

``HealthWorkload.prepare`` makes the patient of the testnet's first observer a patient of
hospital 0 (hospital 0 registers her once both nodes announced themselves on chain), with
two custodians: her own node and hospital 0's. ``start`` runs one thread that uploads a
FHIR glucose Observation every ``interval_s`` through ``HealthClient.upload_record``
(sealed on this side, handed to the custodians, committed on chain) via a third node's API,
the submitting node, so that killing a custodian does not also take the client's node.
An upload that returned the record id is *acknowledged* and kept (with its plaintext);
any that raised is counted by error type and forgotten (it may or may not have been
committed: nothing was promised). ``stop`` ends the thread. ``verify`` reads every
acknowledged record back through the patient's client (fetched from a custodian,
checked against its commitment, decrypted) and returns those that could not be read or
read differently: lost records.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from health import fhir
from health.client import HealthClient, Keystore
from health.client.errors import ClientError
from health.contracts.common import GLUCOSE_RESOURCE_TYPE, HealthRole
from health.contracts.identity import NODE_ANNOUNCEMENT_CODEC
from node.api.client import ApiError
from node.cli.localnet import LocalNetError
from node.errors import BigHealthError

logger = logging.getLogger("node.cli.chaos")

REQUEST_TIMEOUT_S: Final = 10.0
RECEIPT_TIMEOUT_S: Final = 20.0
POLL_S: Final = 0.2
MAX_ACKNOWLEDGED: Final = 100_000
"""Most acknowledged records kept (the thread stops uploading beyond)."""
READ_ATTEMPTS: Final = 5
READ_RETRY_S: Final = 2.0
VERIFY_BUDGET_S: Final = 300.0
"""How long reading every acknowledged record back may take in all; those not read by
then count as lost."""


@dataclass(frozen=True, slots=True)
class Acknowledged:
    """An upload the network acknowledged: its record id and the Observation sealed."""

    record: bytes
    observation: dict[str, Any]

    @property
    def plaintext(self) -> bytes:
        """The bytes that were encrypted (canonical FHIR JSON)."""
        return fhir.dumps(self.observation)


@dataclass(frozen=True, slots=True)
class WorkloadNodes:
    """Which node does what: hospital 0's (a custodian), the patient's (a custodian), and
    the one the uploads are submitted through; each an API URL."""

    hospital_url: str
    patient_url: str
    submit_url: str
    hospital_peer: str
    patient_peer: str


class HealthWorkload:
    """See the module docstring."""

    def __init__(
        self,
        clients_dir: Path,
        chain_id: str,
        passphrase: str,
        nodes: WorkloadNodes,
        *,
        interval_s: float = 0.5,
    ) -> None:
        def client(url: str, party: str) -> HealthClient:
            keystore = Keystore.open(clients_dir / f"{party}.keystore", passphrase)
            return HealthClient(
                url,
                keystore,
                chain_id,
                timeout_s=REQUEST_TIMEOUT_S,
                receipt_timeout_s=RECEIPT_TIMEOUT_S,
                poll_interval_s=POLL_S,
            )

        self.nodes = nodes
        self.interval_s = interval_s
        self.hospital = client(nodes.hospital_url, "hospital-0")
        self.patient = client(nodes.submit_url, "patient-0")
        self.reader = client(nodes.patient_url, "patient-0")
        self.acknowledged: list[Acknowledged] = []
        self.failures: Counter[str] = Counter()
        self.crashed: str | None = None
        """What stopped the thread early (a bug), if anything did."""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def custodians(self) -> list[tuple[bytes, str]]:
        """The patient's node, then hospital 0's: (identity id, API URL)."""
        return [
            (self.patient.identity_id, self.nodes.patient_url),
            (self.hospital.identity_id, self.nodes.hospital_url),
        ]

    def prepare(self, timeout_s: float) -> None:
        """Register the patient and wait until both custodians announced their nodes."""
        deadline = time.monotonic() + timeout_s
        self._wait_announced(self.hospital, self.nodes.hospital_peer, deadline)
        if self.hospital.identity(self.patient.identity_id) is None:
            keys = self.patient.keystore.admission_keys()
            self.hospital.register(*keys, role=HealthRole.PATIENT)
        self._wait_announced(self.patient, self.nodes.patient_peer, deadline)
        for client in (self.patient, self.reader):
            for custodian, url in self.custodians:
                client.add_custodian(custodian, url)

    def _wait_announced(self, client: HealthClient, peer: str, deadline: float) -> None:
        path = f"n/{client.identity_id.hex()}"
        while True:
            try:
                value = self.hospital.node.state("identity", path).value
            except (ApiError, ClientError):
                value = None
            if value is not None and NODE_ANNOUNCEMENT_CODEC.decode(value).peer_id == peer:
                return
            if time.monotonic() > deadline:
                raise LocalNetError(f"{client.keystore.name}'s node did not announce itself")
            time.sleep(POLL_S)

    # -- the uploads ----------------------------------------------------------------------------

    def start(self) -> None:
        """Upload readings in a thread until ``stop``."""
        self._thread = threading.Thread(target=self._run, name="chaos-workload", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop uploading, waiting up to ``timeout_s`` for the upload under way (one still
        going on after that is left to finish or fail: it is not verified)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _run(self) -> None:
        sequence = 0
        try:
            while not self._stop.is_set() and len(self.acknowledged) < MAX_ACKNOWLEDGED:
                sequence += 1
                self.upload_one(sequence)
                self._stop.wait(self.interval_s)
        except Exception as exc:  # a bug: kept for the campaign to report, not lost in a thread
            logger.exception("the workload stopped")
            self.crashed = f"{type(exc).__name__}: {exc}"

    def upload_one(self, sequence: int) -> Acknowledged | None:
        """Upload reading ``sequence``; the acknowledgement, or None (counted a failure)."""
        time_ms = int(time.time() * 1000) - 60_000
        observation = fhir.glucose_observation(
            observation_id=f"chaos-{sequence}",
            patient_ref="Patient/patient-0",
            mg_dl=70 + sequence % 150,
            time_ms=time_ms,
            device="glucose_meter",
            device_ref="Device/chaos-meter",
        )
        try:
            record = self.patient.upload_record(
                observation,
                resource_type=GLUCOSE_RESOURCE_TYPE,
                code=fhir.record_code("glucose_meter"),
                data_time_ms=time_ms,
                custodians=self.custodians,
            )
        except (BigHealthError, ApiError, OSError) as exc:
            self.failures[type(exc).__name__] += 1
            return None
        acknowledged = Acknowledged(record, observation)
        self.acknowledged.append(acknowledged)
        return acknowledged

    # -- the end --------------------------------------------------------------------------------

    def verify(
        self,
        acknowledged: list[Acknowledged],
        *,
        budget_s: float = VERIFY_BUDGET_S,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> list[bytes]:
        """The records of ``acknowledged`` that cannot be read back as they were sealed
        (within ``budget_s`` for them all)."""
        deadline = monotonic() + budget_s
        lost = []
        for item in acknowledged:
            if monotonic() > deadline or not self._read_back(item, sleep):
                lost.append(item.record)
        return lost

    def _read_back(self, item: Acknowledged, sleep: Callable[[float], None]) -> bool:
        for attempt in range(READ_ATTEMPTS):
            try:
                return self.reader.read_record(item.record) == item.observation
            except (BigHealthError, ApiError, OSError) as exc:
                logger.warning("reading %s back: %s", item.record.hex()[:16], exc)
                if attempt + 1 < READ_ATTEMPTS:
                    sleep(READ_RETRY_S)
        return False
