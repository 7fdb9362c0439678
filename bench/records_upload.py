"""Part 1 of the records benchmark: uploads on one node — readings one at a time through
``HealthClient.upload_record``, then many from several threads, each step of a reading timed
(the client's seal, wrap and sign against the node's PUT, submit and receipt)."""

from __future__ import annotations

import statistics
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import nacl.utils

from bench.records_testnet import (
    CGM_CODE,
    WAIT_TIMEOUT_S,
    Row,
    Sizes,
    Testnet,
    chain_height,
    health_testnet,
    new_party,
    now_ms,
    reading,
    run_threads,
)
from health import fhir
from health.client import HealthClient, NodeClient
from health.client.node_client import RecordUpload
from health.contracts.common import GLUCOSE_RESOURCE_TYPE, ID_BYTES, HealthRole, Identity
from health.contracts.records import commit_payload
from health.envelopes import (
    DATA_KEY_BYTES,
    NONCE_BYTES,
    commitment_of,
    commitment_statement,
    seal,
    wrap_key,
)

RECEIPT_POLL_S: Final = 0.05
STEPS: Final = ("seal", "wrap", "sign", "put", "submit", "receipt")
CLIENT_STEPS: Final = frozenset({"seal", "wrap", "sign"})


# -- 1. uploads on one node -----------------------------------------------------------------


@dataclass
class Sealed:
    """A reading ready for its custodian and the chain."""

    upload: RecordUpload
    commit: bytes
    """The ``records.commit`` payload."""


def seal_reading(
    device: HealthClient, owner: Identity, custodian: bytes, index: int, steps: dict[str, float]
) -> Sealed:
    """What ``HealthClient.upload_record`` does before the PUT, step by step (times added to
    ``steps``): a fresh id, data key and nonce; the content sealed; the key wrapped for the
    owner; the author statement signed."""
    record_id = nacl.utils.random(ID_BYTES)
    data_key = nacl.utils.random(DATA_KEY_BYTES)
    nonce = nacl.utils.random(NONCE_BYTES)
    data_time_ms = now_ms() - 1_000
    started = time.perf_counter()
    content = fhir.dumps(reading(index, data_time_ms))
    ciphertext = seal(
        content,
        record_id=record_id,
        owner=owner.id,
        key_epoch=owner.key_epoch,
        data_key=data_key,
        nonce=nonce,
    )
    commitment = commitment_of(ciphertext)
    sealed = time.perf_counter()
    wrapped = {owner.id: wrap_key(data_key, record_id, owner.encryption_key)}
    wrapped_at = time.perf_counter()
    statement = commitment_statement(
        chain_id=device.chain_id,
        record_id=record_id,
        owner=owner.id,
        resource_type=GLUCOSE_RESOURCE_TYPE,
        code=CGM_CODE,
        commitment=commitment,
        key_epoch=owner.key_epoch,
        data_time_ms=data_time_ms,
    )
    signature = device.keystore.signer.sign(statement)
    signed = time.perf_counter()
    steps["seal"] += sealed - started
    steps["wrap"] += wrapped_at - sealed
    steps["sign"] += signed - wrapped_at
    upload = RecordUpload(
        record=record_id,
        owner=owner.id,
        author=device.identity_id,
        resource_type=GLUCOSE_RESOURCE_TYPE,
        code=CGM_CODE,
        key_epoch=owner.key_epoch,
        data_time_ms=data_time_ms,
        ciphertext=ciphertext,
        wrapped_keys=wrapped,
        author_signature=signature,
    )
    payload = commit_payload(
        record_id,
        owner.id,
        resource_type=GLUCOSE_RESOURCE_TYPE,
        code=CGM_CODE,
        ciphertext_sha256=commitment.ciphertext_sha256,
        size_bytes=commitment.size_bytes,
        custodians=(custodian,),
        key_epoch=owner.key_epoch,
        data_time_ms=data_time_ms,
    )
    return Sealed(upload, payload)


@dataclass
class UploadRun:
    """Readings uploaded by several threads of one device (see the module docstring)."""

    device: HealthClient
    owner: Identity
    custodian: bytes
    count: int
    window: int
    """Commitments in flight per thread."""
    taken: int = 0
    steps: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STEPS, 0.0))
    committed: list[tuple[int, bytes]] = field(default_factory=list)
    """(height, record) of every committed reading."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self) -> int | None:
        with self.lock:
            if self.taken == self.count:
                return None
            self.taken += 1
            return self.taken

    def thread(self) -> None:
        """Upload readings until the count is reached; settle what is in flight."""
        in_flight: deque[tuple[bytes, bytes]] = deque()
        steps = dict.fromkeys(STEPS, 0.0)
        while (index := self.take()) is not None:
            sealed = seal_reading(self.device, self.owner, self.custodian, index, steps)
            started = time.perf_counter()
            self.device.node.put_record(sealed.upload)
            put = time.perf_counter()
            tx = self.device.tx.submit("records.commit", sealed.commit)
            steps["put"] += put - started
            steps["submit"] += time.perf_counter() - put
            in_flight.append((tx, sealed.upload.record))
            if len(in_flight) >= self.window:
                self.settle(*in_flight.popleft(), steps)
        while in_flight:
            self.settle(*in_flight.popleft(), steps)
        with self.lock:
            for step, seconds in steps.items():
                self.steps[step] += seconds

    def settle(self, tx: bytes, record: bytes, steps: dict[str, float]) -> None:
        """Wait for ``tx``'s receipt; it must have applied."""
        started = time.perf_counter()
        deadline = time.monotonic() + WAIT_TIMEOUT_S
        while (found := self.device.node.tx_receipt(tx)) is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"records.commit {tx.hex()} not committed in time")
            time.sleep(RECEIPT_POLL_S)
        if not found.receipt.ok:
            raise RuntimeError(f"records.commit failed: {found.receipt.log}")
        steps["receipt"] += time.perf_counter() - started
        with self.lock:
            self.committed.append((found.height, record))


def upload_rows(directory: Path, sizes: Sizes, counts: dict[str, int]) -> list[Row]:
    """Part 1 (see the module docstring); ``counts`` gets the readings committed and stored,
    and the blocks they took."""
    with health_testnet(directory / "one-node", validators=1, sizes=sizes) as net:
        url = net.url(0)
        hospital = net.hospital(0)
        patient = new_party(directory, "patient", HealthRole.PATIENT, url, net.chain_id)
        device = new_party(directory, "cgm", HealthRole.DEVICE, url, net.chain_id)
        hospital.register(*patient.keystore.admission_keys(), role=HealthRole.PATIENT)
        patient.register(*device.keystore.admission_keys(), role=HealthRole.DEVICE, kind="cgm")
        custodians = [(hospital.identity_id, url)]
        singles = []
        for index in range(sizes.single_uploads):
            started, time_ms = time.perf_counter(), now_ms() - 1_000
            device.upload_record(
                reading(index, time_ms),
                owner=patient.identity_id,
                resource_type=GLUCOSE_RESOURCE_TYPE,
                code=CGM_CODE,
                data_time_ms=time_ms,
                custodians=custodians,
            )
            singles.append(time.perf_counter() - started)
        owner = device.identity(patient.identity_id)
        assert owner is not None
        run = UploadRun(
            device,
            owner,
            hospital.identity_id,
            sizes.uploads,
            max(1, sizes.upload_window // sizes.upload_threads),
        )
        heights = (chain_height(device.node), 0)
        started = time.perf_counter()
        errors = run_threads([run.thread] * sizes.upload_threads)
        committed_s = time.perf_counter() - started
        heights = (heights[0], chain_height(device.node))
        if errors or len(run.committed) != sizes.uploads:
            raise RuntimeError(f"uploads failed: {errors[:3]}\n{net.logs()}")
        stored_s = _wait_stored(net, device.node, run.committed) - started
        stored = sum(_held(device.node, record) for _, record in run.committed)
    counts.update(committed=len(run.committed), stored=stored, blocks=heights[1] - heights[0])
    return _upload_figures(
        sizes,
        run,
        singles=singles,
        committed_s=committed_s,
        stored_s=stored_s,
        stored=stored,
        heights=heights,
    )


def _held(node: NodeClient, record: bytes) -> bool:
    found = node.record_commitment(record)
    return found is not None and found.get("held_here") is True


def _wait_stored(net: Testnet, node: NodeClient, committed: list[tuple[int, bytes]]) -> float:
    """When the readings of the last committed block were stored (the vault follows the
    blocks in order, so the earlier ones were stored before)."""
    last = max(height for height, _ in committed)
    records = [record for height, record in committed if height == last]
    net.wait_until(lambda: all(_held(node, record) for record in records), "readings stored")
    return time.perf_counter()


def _upload_figures(
    sizes: Sizes,
    run: UploadRun,
    *,
    singles: list[float],
    committed_s: float,
    stored_s: float,
    stored: int,
    heights: tuple[int, int],
) -> list[Row]:
    n = sizes.uploads
    blocks = max(1, heights[1] - heights[0])
    threads = f"{sizes.upload_threads} threads"
    rows = [
        Row(
            "upload_single",
            "one reading: upload_record (seal, PUT, commit), median",
            statistics.median(singles) * 1e3,
            "ms",
        ),
        Row(
            "upload_committed",
            f"{n} readings committed, {threads}, ~{n / blocks:.0f}/block",
            n / committed_s,
            "rd/s",
        ),
        Row(
            "upload_stored",
            f"{stored} of {n} readings stored (pending -> stored)",
            stored / stored_s,
            "rd/s",
        ),
    ]
    whats = {
        "seal": "client: FHIR JSON, XChaCha20-Poly1305, SHA-256",
        "wrap": "client: data key wrapped for the patient",
        "sign": "client: author statement signed (Ed25519)",
        "put": "wait: PUT /records/<id> to the custodian",
        "submit": "wait: records.commit signed and submitted",
        "receipt": "wait: until the receipt (per reading)",
    }
    for step in STEPS:
        rows.append(Row(f"upload_{step}", whats[step], run.steps[step] / n * 1e3, "ms"))
    client_s = sum(run.steps[step] for step in CLIENT_STEPS)
    share = 100 * client_s / sum(run.steps.values())
    rows.append(
        Row("upload_client_share", "client's own work of all the time per reading", share, "%")
    )
    return rows
