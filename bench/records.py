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
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Final, TypeVar

import nacl.utils
from nacl.public import PrivateKey

from health import fhir
from health.client import KDF_MIN, HealthClient, Keystore, NodeClient, RecordError
from health.client.node_client import RecordUpload
from health.contracts.common import GLUCOSE_RESOURCE_TYPE, ID_BYTES, HealthRole, Identity
from health.contracts.records import commit_payload
from health.envelopes import (
    DATA_KEY_BYTES,
    NONCE_BYTES,
    commitment_of,
    commitment_statement,
    rewrap_key,
    seal,
    wrap_key,
)
from health.records_wire import FETCH_REQUEST_CODEC, sign_fetch_request
from health.records_wire import NONCE_BYTES as FETCH_NONCE_BYTES
from node.api.client import ApiError

ROOT: Final = Path(__file__).resolve().parent.parent
PASSPHRASE: Final = "bench-records"
CGM_CODE: Final = fhir.record_code("cgm")
POLL_S: Final = 0.02
RECEIPT_POLL_S: Final = 0.05
START_TIMEOUT_S: Final = 60.0
WAIT_TIMEOUT_S: Final = 60.0
STOP_TIMEOUT_S: Final = 15.0
LOG_TAIL_LINES: Final = 20
PR_SET_PDEATHSIG: Final = 1
STEPS: Final = ("seal", "wrap", "sign", "put", "submit", "receipt")
CLIENT_STEPS: Final = frozenset({"seal", "wrap", "sign"})

T = TypeVar("T")


@dataclass(frozen=True)
class Sizes:
    """How much each part does."""

    single_uploads: int
    uploads: int
    upload_threads: int
    upload_window: int
    fetches: int
    rewraps: int
    seals: int
    commit_wait_ms: int | None
    """The nodes' pause after a commit; None: the testnet's default (500 ms)."""


FULL = Sizes(
    single_uploads=20,
    uploads=1_500,
    upload_threads=4,
    upload_window=56,
    fetches=400,
    rewraps=1_000,
    seals=2_000,
    commit_wait_ms=None,
)
SMOKE = Sizes(
    single_uploads=1,
    uploads=6,
    upload_threads=2,
    upload_window=4,
    fetches=3,
    rewraps=20,
    seals=20,
    commit_wait_ms=100,
)


@dataclass
class Row:
    """One figure."""

    case: str
    what: str
    value: float
    unit: str


# -- node processes -------------------------------------------------------------------------


def die_with_parent() -> None:
    """In a child, before exec: SIGTERM when the benchmark dies (Linux), so no node outlives
    it."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Testnet:
    """A ``bighealth testnet --health`` directory and its running node processes."""

    directory: Path
    manifest: dict[str, Any]
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def chain_id(self) -> str:
        return str(self.manifest["chain_id"])

    def node(self, index: int) -> dict[str, Any]:
        node: dict[str, Any] = self.manifest["nodes"][index]
        return node

    def url(self, index: int) -> str:
        return f"http://{self.node(index)['api']}"

    def log_path(self, index: int) -> Path:
        return self.directory / str(self.node(index)["home"]) / "node.log"

    def hospital(self, index: int) -> HealthClient:
        """The client of hospital ``index`` (its keystore from the testnet) on its node."""
        keystore = Keystore.open(
            self.directory / "clients" / f"hospital-{index}.keystore", PASSPHRASE
        )
        return client(self.url(index), keystore, self.chain_id)

    def start(self) -> None:
        for index, node in enumerate(self.manifest["nodes"]):
            home = self.directory / str(node["home"])
            with self.log_path(index).open("ab") as log:
                self.processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "node", "run", "--home", str(home)],
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        cwd=ROOT,
                        env={**os.environ, "PYTHONPATH": str(ROOT)},
                        preexec_fn=die_with_parent,  # noqa: PLW1509 (prctl only)
                    )
                )

    def wait_committing(self) -> None:
        """Until every node has committed a block (with two validators: both are up and
        connected)."""
        nodes = [NodeClient(self.url(i), timeout_s=5.0) for i in range(len(self.processes))]
        self.wait_until(lambda: all(_height(node) >= 1 for node in nodes), "the first block")

    def wait_until(self, condition: Callable[[], T], what: str) -> T:
        """Poll ``condition`` until it is true; fail (with the logs) when a node stopped or
        after ``START_TIMEOUT_S``."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            for process in self.processes:
                if process.poll() is not None:
                    raise RuntimeError(f"a node stopped ({process.returncode})\n{self.logs()}")
            result = condition()
            if result:
                return result
            time.sleep(POLL_S)
        raise RuntimeError(f"timed out waiting for {what}\n{self.logs()}")

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for process in self.processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()

    def logs(self) -> str:
        parts = []
        for index in range(len(self.manifest["nodes"])):
            path = self.log_path(index)
            if path.exists():
                lines = path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
                parts.append(f"--- node {index} ---\n" + "\n".join(line[:300] for line in lines))
        return "\n".join(parts)


@contextmanager
def health_testnet(directory: Path, validators: int, sizes: Sizes) -> Iterator[Testnet]:
    """A health testnet of ``validators`` hospitals, every node running and committing."""
    command = [
        sys.executable,
        "-m",
        "node",
        "testnet",
        "--validators",
        str(validators),
        "--observers",
        "0",
        "--clinics",
        "0",
        "--health",
        "--passphrase",
        PASSPHRASE,
        "--output",
        str(directory),
    ]
    if sizes.commit_wait_ms is not None:
        command += ["--commit-wait-ms", str(sizes.commit_wait_ms)]
    made = subprocess.run(
        command,
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    if made.returncode != 0:
        raise RuntimeError(f"bighealth testnet failed: {made.stderr.strip()}")
    net = Testnet(directory, json.loads(made.stdout))
    try:
        net.start()
        net.wait_committing()
        yield net
    finally:
        net.stop()


def _height(node: NodeClient) -> int:
    try:
        return int(node.status()["height"])
    except ApiError:
        return -1


def client(url: str, keystore: Keystore, chain_id: str) -> HealthClient:
    """A client of the node at ``url`` polling receipts every ``POLL_S``."""
    return HealthClient(
        url, keystore, chain_id, poll_interval_s=POLL_S, receipt_timeout_s=WAIT_TIMEOUT_S
    )


def new_party(
    directory: Path, name: str, role: HealthRole, url: str, chain_id: str
) -> HealthClient:
    """A new party's client (a fresh keystore, cheap KDF: a benchmark's)."""
    keystore = Keystore.create(
        directory / f"{name}.keystore", PASSPHRASE, name=name, role=role, kdf=KDF_MIN
    )
    return client(url, keystore, chain_id)


def reading(index: int, time_ms: int) -> dict[str, Any]:
    """A CGM reading as a FHIR Observation."""
    return fhir.glucose_observation(
        observation_id=f"cgm-{index}",
        patient_ref="Patient/bench",
        mg_dl=70 + index % 180,
        time_ms=time_ms,
        device="cgm",
    )


def now_ms() -> int:
    return int(time.time() * 1000)


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
        heights = (_height(device.node), 0)
        started = time.perf_counter()
        errors = _run_threads([run.thread] * sizes.upload_threads)
        committed_s = time.perf_counter() - started
        heights = (heights[0], _height(device.node))
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


def _run_threads(targets: Sequence[Callable[[], None]]) -> list[str]:
    """Run each target in a thread of its own to the end; the errors they raised."""
    errors: list[str] = []

    def guarded(target: Callable[[], None]) -> None:
        try:
            target()
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=guarded, args=(target,)) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


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


# -- 2. fetches between two nodes -----------------------------------------------------------


def fetch_rows(directory: Path, sizes: Sizes) -> list[Row]:
    """Part 2 (see the module docstring)."""
    with health_testnet(directory / "two-nodes", validators=2, sizes=sizes) as net:
        hospitals = [net.hospital(0), net.hospital(1)]
        patient = new_party(directory, "patient2", HealthRole.PATIENT, net.url(0), net.chain_id)
        doctor = new_party(directory, "doctor", HealthRole.PRACTITIONER, net.url(1), net.chain_id)
        setups = [
            partial(_announce_and_register, hospitals[i], str(net.node(i)["peer_id"]), party, role)
            for i, party, role in (
                (0, patient, HealthRole.PATIENT),
                (1, doctor, HealthRole.PRACTITIONER),
            )
        ]
        if errors := _run_threads(setups):
            raise RuntimeError(f"set-up failed: {errors}\n{net.logs()}")
        net.wait_until(lambda: patient.identity(doctor.identity_id), "the practitioner on node 0")
        time_ms = now_ms() - 1_000
        record = patient.upload_record(
            reading(0, time_ms),
            resource_type=GLUCOSE_RESOURCE_TYPE,
            code=CGM_CODE,
            data_time_ms=time_ms,
            custodians=[(hospitals[0].identity_id, net.url(0))],
            readers=[doctor.identity_id],
        )
        patient.grant_only(
            doctor.identity_id,
            expires_ms=now_ms() + 3_600_000,
            resource_types=[GLUCOSE_RESOURCE_TYPE],
        )
        net.wait_until(lambda: _readable(doctor, record), "the record readable on node 1")
        custodian = hospitals[0].identity_id
        remote = timed_fetches(doctor, doctor.node, record, custodian, sizes.fetches)
        local = timed_fetches(doctor, hospitals[0].node, record, custodian, sizes.fetches)
    n = sizes.fetches
    return [
        Row(
            "fetch_p50",
            f"{n} fetches via hospital-1's node (libp2p hop): p50",
            statistics.median(remote),
            "ms",
        ),
        Row(
            "fetch_p99",
            f"{n} fetches via hospital-1's node (libp2p hop): p99",
            _percentile(remote, 0.99),
            "ms",
        ),
        Row(
            "fetch_local_p50",
            f"{n} fetches at hospital-0's node (the custodian): p50",
            statistics.median(local),
            "ms",
        ),
        Row(
            "fetch_local_p99",
            f"{n} fetches at hospital-0's node (the custodian): p99",
            _percentile(local, 0.99),
            "ms",
        ),
    ]


def _announce_and_register(
    hospital: HealthClient, peer_id: str, party: HealthClient, role: HealthRole
) -> None:
    """A hospital names its node on chain and registers ``party``."""
    hospital.announce_node(peer_id)
    kind = "endocrinology" if role is HealthRole.PRACTITIONER else ""
    label = "Dr Bench" if role is HealthRole.PRACTITIONER else ""
    hospital.register(*party.keystore.admission_keys(), role=role, kind=kind, label=label)


def _readable(doctor: HealthClient, record: bytes) -> bool:
    """True once the practitioner reads the record through its node (the record, the grant
    and the custodian's node known there), decrypted and checked. A refusal while node 1 is
    a block behind is waited out."""
    try:
        resource = doctor.read_record(record)
    except RecordError as exc:
        if exc.reason in {"not_found", "forbidden", "no_custodian"}:
            return False
        raise
    except ApiError:
        return False
    if resource.get("id") != "cgm-0":
        raise RuntimeError(f"the record read back is not the reading uploaded: {resource}")
    return True


def timed_fetches(
    doctor: HealthClient, node: NodeClient, record: bytes, custodian: bytes, count: int
) -> list[float]:
    """``count`` fetches of ``record`` at ``node``, each a freshly signed request: the
    milliseconds of each API call."""
    latencies = []
    for _ in range(count):
        request = sign_fetch_request(
            doctor.keystore.signer,
            chain_id=doctor.chain_id,
            requester=doctor.identity_id,
            record=record,
            custodian=custodian,
            nonce=nacl.utils.random(FETCH_NONCE_BYTES),
            time_ms=now_ms(),
        )
        encoded = FETCH_REQUEST_CODEC.encode(request)
        started = time.perf_counter()
        fetched = node.fetch_record(encoded)
        latencies.append((time.perf_counter() - started) * 1e3)
        if fetched.record != record or fetched.custodian != custodian:
            raise RuntimeError("a fetch answered another record or custodian")
    return latencies


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


# -- 3. re-wrapping and sealing in this process ---------------------------------------------


def best_seconds(repeat: int, run: Callable[[], object]) -> float:
    """The least wall time of ``repeat`` runs."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


def crypto_rows(sizes: Sizes, repeat: int) -> list[Row]:
    """Part 3 (see the module docstring)."""
    owner, grantee = PrivateKey.generate(), PrivateKey.generate()
    owner_private, grantee_public = bytes(owner), bytes(grantee.public_key)
    records = []
    for _ in range(sizes.rewraps):
        record_id = nacl.utils.random(ID_BYTES)
        key = nacl.utils.random(DATA_KEY_BYTES)
        records.append((record_id, wrap_key(key, record_id, bytes(owner.public_key))))

    def rewrap_all() -> None:
        for record_id, wrapped in records:
            rewrap_key(wrapped, record_id, owner_private, grantee_public)

    content = nacl.utils.random(1024)
    record_id, data_key = nacl.utils.random(ID_BYTES), nacl.utils.random(DATA_KEY_BYTES)
    nonces = [nacl.utils.random(NONCE_BYTES) for _ in range(sizes.seals)]

    def seal_all() -> None:
        for nonce in nonces:
            seal(
                content,
                record_id=record_id,
                owner=record_id,
                key_epoch=0,
                data_key=data_key,
                nonce=nonce,
            )

    def wrap_all() -> None:
        for _ in range(sizes.seals):
            wrap_key(data_key, record_id, grantee_public)

    rewrap_s = best_seconds(repeat, rewrap_all)
    seal_s = best_seconds(repeat, seal_all)
    wrap_s = best_seconds(repeat, wrap_all)
    n = sizes.rewraps
    return [
        Row("rewrap_total", f"re-wrap the keys of {n} records for a grantee", rewrap_s * 1e3, "ms"),
        Row(
            "rewrap_per_record",
            "re-wrap one record's key (unwrap + wrap)",
            rewrap_s / n * 1e6,
            "µs",
        ),
        Row(
            "seal_1k", "seal a 1 KiB record (XChaCha20-Poly1305)", seal_s / sizes.seals * 1e6, "µs"
        ),
        Row("wrap_key", "wrap one data key (sealed box)", wrap_s / sizes.seals * 1e6, "µs"),
    ]


# -- running and reporting ------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """Where the figures were measured."""
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
                break
    return {
        "cpu": model or platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "load_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }


def render(rows: Sequence[Row], info: dict[str, Any], sizes: Sizes, mode: str) -> str:
    """The figures as a table, under the machine's facts."""
    wait = "500 (default)" if sizes.commit_wait_ms is None else str(sizes.commit_wait_ms)
    lines = [
        f"records benchmark ({mode}); machine: {info['cpu']} ({info['cores']} cores), "
        f"python {info['python']}, load {info['load_1m']}; nodes' commit_wait_ms {wait}",
        f"{'case':<20} {'what':<58} {'value':>10} {'unit':<5}",
    ]
    lines += [f"{r.case:<20} {r.what:<58} {r.value:>10,.2f} {r.unit:<5}" for r in rows]
    return "\n".join(lines)


def run_bench(sizes: Sizes, repeat: int, counts: dict[str, int]) -> list[Row]:
    """Every part, in order; ``counts`` gets part 1's counts."""
    with tempfile.TemporaryDirectory(prefix="bench-records-") as home:
        rows = upload_rows(Path(home), sizes, counts)
        rows += fetch_rows(Path(home), sizes)
    return rows + crypto_rows(sizes, repeat)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; see the module docstring for the options."""
    parser = argparse.ArgumentParser(prog="python -m bench.records", description=__doc__)
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    parser.add_argument("--smoke", action="store_true", help="tiny counts (for tests)")
    args = parser.parse_args(argv)
    sizes, repeat = (SMOKE, 1) if args.smoke else (FULL, 3)
    info = machine()
    counts: dict[str, int] = {}
    rows = run_bench(sizes, repeat, counts)
    mode = "smoke" if args.smoke else "full"
    print(render(rows, info, sizes, mode))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        report = {
            "mode": mode,
            "machine": info,
            "sizes": asdict(sizes),
            "counts": counts,
            "rows": [asdict(r) for r in rows],
            "figures": {r.case: r.value for r in rows},
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
