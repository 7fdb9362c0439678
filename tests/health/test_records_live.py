"""Encrypted records across real node processes on 127.0.0.1.

A health testnet made by ``bighealth testnet --health`` (4 hospitals' validators, a clinic's
and a patient's observer), every node a ``bighealth run`` process with the health extension;
every party acts through ``HealthClient`` with the testnet's keystores (new ones for two
practitioners and the patient's CGM):

- a reading uploaded by the device through the patient's node, kept by the patient's node
  and hospital-0's, each found through the node it announced on chain;
- shared with a practitioner of hospital-0 (grant, key re-wrapped), read through hospital-0's
  node and decrypted to the same FHIR JSON;
- refused: a practitioner of hospital-1 without grant, the practitioner after revocation and
  after a grant expired in block time, a replayed request; served and refused reads in the
  audit state on chain;
- one custodian down (the patient's node stopped), the other serving;
- erasure: the vaults and the patient's keystore no longer hold what opens the record;
- at rest: no LevelDB of any node (chain store and vault, read with plyvel) holds the
  reading's plaintext.

The full story is ``slow``; the default suite runs a shorter one (upload, grant, read, one
refusal, the at-rest scan). Nodes are stopped at the end whatever happens. A last, quick
test looks at the vault's files themselves after an erasure: it is an expected failure
until LevelDB's compaction is made to rewrite the table that keeps the erased bytes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import nacl.utils
import pytest

from health import fhir
from health.client import KDF_MIN, HealthClient, Keystore, NodeResponseError, RecordError
from health.client.node_client import FetchedRecord, NodeClient
from health.contracts.common import GLUCOSE_RESOURCE_TYPE, HealthRole
from health.contracts.identity import NODE_ANNOUNCEMENT_CODEC, register_payload
from health.envelopes import (
    DATA_KEY_BYTES,
    WRAPPED_KEY_BYTES,
    EnvelopeError,
    open_sealed,
    unwrap_key,
)
from health.records_wire import FETCH_REQUEST_CODEC, NONCE_BYTES, sign_fetch_request
from health.vault import PendingBlob, Vault
from node.adapters.leveldb_store import LevelDBStorage
from node.cli.chaos.at_rest import scan_at_rest
from node.home.manifest import read_manifest
from tests.runtime.localnet import ROOT, LocalNet

PASSPHRASE: Final = "testnet"
CHAIN_ID: Final = "records-live"
HOSPITAL_0: Final = "validator-0"
HOSPITAL_1: Final = "validator-1"
PATIENT_NODE: Final = "observer-1"
START_TIMEOUT_S: Final = 60.0
WAIT_S: Final = 30.0
"""A transaction, an announcement, a node catching up; an audit batch (custodians flush
every ``CustodianConfig.audit_interval_ms``, 10 s: it is set in code only)."""
POLL_S: Final = 0.1
PRACTITIONER: Final = HealthRole.PRACTITIONER
HOUR_MS: Final = 3_600_000
EXPIRY_MS: Final = 5_000
"""How long the short grant lasts (block time)."""


def _now_ms() -> int:
    return int(time.time() * 1000)


def create_health_testnet(directory: Path) -> LocalNet:
    """``bighealth testnet --health``: 4 hospitals' validators, a clinic and a patient."""
    command = [
        sys.executable, "-m", "node", "testnet", "--health",
        "--validators", "4", "--observers", "2", "--clinics", "1",
        "--output", str(directory), "--chain-id", CHAIN_ID, "--passphrase", PASSPHRASE,
        "--commit-wait-ms", "150", "--timeout-propose-ms", "1000",
        "--timeout-prevote-ms", "400", "--timeout-precommit-ms", "400",
    ]  # fmt: skip
    subprocess.run(
        command,
        check=True,
        capture_output=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    return LocalNet(directory, read_manifest(directory))


@pytest.fixture
def net(tmp_path: Path) -> Iterator[LocalNet]:
    local = create_health_testnet(tmp_path / "testnet")
    try:
        for name in local.names:
            local.start(name)
        local.wait_for_heights(local.names, 1, START_TIMEOUT_S)
        yield local
    finally:
        local.stop_all()


# -- the parties -------------------------------------------------------------------------------


@dataclass
class World:
    """The running testnet and the clients of its parties."""

    net: LocalNet
    hospital: HealthClient  # hospital-0, on its validator
    patient: HealthClient  # patient-0, on its observer (the patient's custodian node)
    device: HealthClient  # the patient's CGM, through the patient's node
    doctor: HealthClient  # practitioner A of hospital-0, on hospital-0's node
    outsider: HealthClient  # practitioner B of hospital-1, on hospital-1's node

    def url(self, name: str) -> str:
        return f"http://{self.net.node(name).api}"

    @property
    def custodians(self) -> list[tuple[bytes, str]]:
        """The patient's node first, then hospital-0's."""
        return [
            (self.patient.identity_id, self.url(PATIENT_NODE)),
            (self.hospital.identity_id, self.url(HOSPITAL_0)),
        ]

    def node_of(self, custodian: bytes) -> str:
        """The node that keeps ``custodian``'s records."""
        return PATIENT_NODE if custodian == self.patient.identity_id else HOSPITAL_0

    def api(self, name: str) -> NodeClient:
        return NodeClient(self.url(name), timeout_s=WAIT_S)


def _client(net: LocalNet, name: str, keystore: Keystore) -> HealthClient:
    return HealthClient(
        f"http://{net.node(name).api}",
        keystore,
        CHAIN_ID,
        timeout_s=WAIT_S,  # longer than a node's wait for a custodian (it answers busy then)
        receipt_timeout_s=WAIT_S,
        poll_interval_s=POLL_S,
    )


def _testnet_keystore(net: LocalNet, party: str) -> Keystore:
    return Keystore.open(net.directory / "clients" / f"{party}.keystore", PASSPHRASE)


def _new_keystore(directory: Path, name: str, role: HealthRole) -> Keystore:
    return Keystore.create(
        directory / f"{name}.keystore", "pass", name=name, role=role, kdf=KDF_MIN
    )


def wait_announced(net: LocalNet, client: HealthClient, identity: bytes, node: str) -> None:
    """Until ``identity/n/<identity>`` names ``node``'s peer (the node announced itself)."""

    def announced() -> bool:
        value = client.node.state("identity", f"n/{identity.hex()}").value
        peer = None if value is None else NODE_ANNOUNCEMENT_CODEC.decode(value).peer_id
        return peer == net.node(node).peer_id

    net.wait_until(announced, WAIT_S, f"{node} announced as the node of {identity.hex()[:16]}")


def _register(
    registrar: HealthClient, new: HealthClient, role: HealthRole, kind: str = "", label: str = ""
) -> bytes:
    """Submit ``registrar``'s ``identity.register`` of ``new``'s keys (not waited for)."""
    payload = register_payload(
        *new.keystore.admission_keys(),
        chain_id=CHAIN_ID,
        registrar=registrar.identity_id,
        role=role,
        kind=kind,
        label=label,
    )
    return registrar.tx.submit("identity.register", payload)


def make_world(net: LocalNet, directory: Path) -> World:
    """Hospital-0 registers practitioner A and the patient (patient-0's keystore: its node's
    custodian key), hospital-1 practitioner B; the patient pairs a CGM."""
    hospital = _client(net, HOSPITAL_0, _testnet_keystore(net, "hospital-0"))
    hospital1 = _client(net, HOSPITAL_1, _testnet_keystore(net, "hospital-1"))
    doctor = _client(net, HOSPITAL_0, _new_keystore(directory, "a", HealthRole.PRACTITIONER))
    outsider = _client(net, HOSPITAL_1, _new_keystore(directory, "b", HealthRole.PRACTITIONER))
    patient = _client(net, PATIENT_NODE, _testnet_keystore(net, "patient-0"))
    device = _client(net, PATIENT_NODE, _new_keystore(directory, "cgm", HealthRole.DEVICE))
    # A node signs its announcement with its custodian's key: the clients of the same key
    # number their transactions once it is committed.
    wait_announced(net, hospital, hospital.identity_id, HOSPITAL_0)
    wait_announced(net, hospital, hospital1.identity_id, HOSPITAL_1)
    submitted = [
        (hospital, _register(hospital, doctor, PRACTITIONER, kind="endocrinology", label="A")),
        (hospital, _register(hospital, patient, HealthRole.PATIENT)),
        (hospital1, _register(hospital1, outsider, PRACTITIONER, kind="general", label="B")),
    ]
    for client, tx_hash in submitted:
        assert client.tx.wait(tx_hash).ok
    wait_announced(net, patient, patient.identity_id, PATIENT_NODE)
    patient.register(*device.keystore.admission_keys(), role=HealthRole.DEVICE, kind="cgm")
    world = World(net, hospital, patient, device, doctor, outsider)
    for custodian, url in world.custodians:  # where the patient's records are kept
        patient.add_custodian(custodian, url)
    # A custodian refuses an upload whose author it does not know yet: every node must have
    # committed the pairing first.
    synced(world)
    return world


# -- records -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reading:
    """An uploaded reading: its record id and the FHIR Observation."""

    record: bytes
    observation: dict[str, Any]

    @property
    def plaintext(self) -> bytes:
        """The bytes that were encrypted (canonical JSON)."""
        return fhir.dumps(self.observation)

    @property
    def value_fragment(self) -> bytes:
        """The exact ``"valueQuantity":{...}`` JSON, with the reading's value."""
        return b'"valueQuantity":' + fhir.dumps(self.observation["valueQuantity"])


def upload_reading(world: World, mg_dl: int) -> Reading:
    """The CGM uploads a reading of the patient through the patient's node; both
    custodians hold it once committed."""
    data_time_ms = _now_ms() - 60_000
    observation = fhir.glucose_observation(
        observation_id=f"cgm-{mg_dl}",
        patient_ref="Patient/patient-0",
        mg_dl=mg_dl,
        time_ms=data_time_ms,
        device="cgm",
        device_ref="Device/cgm-1",
    )
    record = world.device.upload_record(
        observation,
        owner=world.patient.identity_id,
        resource_type=GLUCOSE_RESOURCE_TYPE,
        code=fhir.record_code("cgm"),
        data_time_ms=data_time_ms,
        custodians=world.custodians,
    )
    for node in (PATIENT_NODE, HOSPITAL_0):
        document = wait_commitment(world, node, record, "held_here")
        assert document["erased"] is False
    return Reading(record, observation)


def wait_commitment(world: World, node: str, record: bytes, flag: str) -> dict[str, Any]:
    """``GET /records/<id>`` on ``node`` once ``flag`` (``held_here``, ``erased``) is true."""

    def answer() -> dict[str, Any] | None:
        found = world.api(node).record_commitment(record)
        return found if found is not None and found[flag] is True else None

    return world.net.wait_until(answer, WAIT_S, f"{flag} of {record.hex()[:16]} on {node}")


def signed_fetch(world: World, reader: HealthClient, record: bytes, custodian: bytes) -> bytes:
    """An encoded fetch request of ``reader`` naming ``custodian``, freshly signed."""
    request = sign_fetch_request(
        reader.keystore.signer,
        chain_id=CHAIN_ID,
        requester=reader.identity_id,
        record=record,
        custodian=custodian,
        nonce=nacl.utils.random(NONCE_BYTES),
        time_ms=_now_ms(),
    )
    return FETCH_REQUEST_CODEC.encode(request)


def refusal(call: Any) -> tuple[int, str]:
    """The status and reason of a refused API call."""
    with pytest.raises(NodeResponseError) as caught:
        call()
    return caught.value.status, caught.value.reason


def read_refused(client: HealthClient, record: bytes) -> str:
    """The reason ``client.read_record`` is refused."""
    with pytest.raises(RecordError) as caught:
        client.read_record(record)
    return caught.value.reason


def synced(world: World) -> None:
    """Until every running node has committed the height the patient's node has."""
    net = world.net
    height = net.height(PATIENT_NODE)
    net.wait_for_heights(list(net.processes), height, WAIT_S)


def grant_and_read(world: World, reading: Reading, *, expires_ms: int) -> bytes:
    """The patient grants A (treatment, glucose readings) and re-wraps the key for A at
    both custodians; A reads through hospital-0's node; the grant's id."""
    result = world.patient.grant(
        world.doctor.identity_id,
        expires_ms=expires_ms,
        resource_types=[GLUCOSE_RESOURCE_TYPE],
        records=[reading.record],
    )
    assert result.shared.failed == {}
    custodians = [custodian for custodian, _ in world.custodians]
    assert result.shared.delivered == {reading.record: custodians}
    synced(world)
    assert world.doctor.read_record(reading.record) == reading.observation
    return result.grant_id


# -- audit -------------------------------------------------------------------------------------


def audit_entries(world: World, record: bytes) -> list[dict[str, Any]]:
    """The audit entries on chain of the patient's reads of ``record``."""
    document = world.hospital.node.entries(
        "audit", prefix=f"p/{world.patient.identity_id.hex()}", limit=1_000
    )
    entries = [entry["value"] for entry in document["entries"]]
    return [entry for entry in entries if entry["record"] == record.hex()]


def wait_audited(world: World, record: bytes, expected: Counter[tuple[str, bool]]) -> list[Any]:
    """Until the audit state holds exactly ``expected`` reads of ``record``, counted by
    (reader's hex id, served); the entries."""

    def audited() -> list[Any] | None:
        entries = audit_entries(world, record)
        seen = Counter((entry["reader"], entry["served"]) for entry in entries)
        return entries if seen == expected else None

    return world.net.wait_until(audited, WAIT_S, f"the audit entries {dict(expected)}")


# -- at rest -----------------------------------------------------------------------------------


def leveldbs(net: LocalNet) -> dict[str, list[Path]]:
    """Every LevelDB under every node's home (a directory with a ``CURRENT`` file)."""
    return {
        name: sorted(current.parent for current in net.home(name).rglob("CURRENT"))
        for name in net.names
    }


def scan(databases: dict[str, list[Path]], needles: dict[str, bytes]) -> dict[str, list[str]]:
    """Every key and value of every database, read back: where each needle occurs
    (``node:directory``; ``node.cli.chaos.at_rest``, which ``bighealth chaos`` uses too)."""
    return scan_at_rest(databases, CHAIN_ID, needles)


def files_holding(paths: list[Path], needle: bytes) -> list[str]:
    """The files under ``paths`` whose raw bytes contain ``needle`` (meaningful for random
    bytes such as a ciphertext, which LevelDB's compression leaves as they are)."""
    return sorted(
        f"{path.parent.parent.name}:{path.parent.name}/{path.name}"
        for directory in paths
        for path in directory.iterdir()
        if path.is_file() and needle in path.read_bytes()
    )


def assert_at_rest(
    net: LocalNet, readings: list[Reading], *, held: bytes, gone: dict[str, bytes]
) -> None:
    """With every node stopped: no database holds a reading's plaintext or its value
    fragment, nor any of ``gone``; the ciphertext ``held`` is in exactly the custodians'
    vaults (the scan does see the vaults' blobs)."""
    databases = leveldbs(net)
    for node, paths in databases.items():
        assert {path.name for path in paths} >= {"data", "vault"}, (node, paths)
    needles = {"held ciphertext": held, **gone}
    for index, reading in enumerate(readings):
        needles[f"plaintext {index}"] = reading.plaintext
        needles[f"valueQuantity {index}"] = reading.value_fragment
    found = scan(databases, needles)
    custodians = sorted(f"{node}:vault" for node in (HOSPITAL_0, PATIENT_NODE))
    assert found.pop("held ciphertext") == custodians
    assert found == {name: [] for name in found}


# -- the stories -------------------------------------------------------------------------------


def test_a_reading_shared_with_a_doctor_across_node_processes(
    net: LocalNet, tmp_path: Path
) -> None:
    """Upload, grant, read through hospital-0's node, a refusal, nothing plain at rest."""
    world = make_world(net, tmp_path)
    reading = upload_reading(world, 187)
    grant_and_read(world, reading, expires_ms=_now_ms() + HOUR_MS)
    assert read_refused(world.outsider, reading.record) == "forbidden"
    request = signed_fetch(world, world.doctor, reading.record, world.hospital.identity_id)
    fetched = world.api(HOSPITAL_0).fetch_record(request)
    assert fetched.custodian == world.hospital.identity_id
    net.stop_all()
    assert_at_rest(net, [reading], held=fetched.ciphertext, gone={})


@dataclass(frozen=True)
class Copies:
    """What a reader and the patient fetched before erasure (kept by the test alone)."""

    doctor: FetchedRecord
    patient: FetchedRecord


def refusals_and_copies(world: World, reading: Reading) -> Copies:
    """B without a grant is refused; a request sent twice is refused the second time, at
    the custodian's own node and through the other custodian's; A's and the patient's
    copies of what the custodians serve."""
    record, hospital = reading.record, world.hospital.identity_id
    assert read_refused(world.outsider, record) == "forbidden"
    raw = signed_fetch(world, world.doctor, record, hospital)
    doctor = world.api(HOSPITAL_0).fetch_record(raw)
    assert (doctor.record, doctor.custodian) == (record, hospital)
    for node in (HOSPITAL_0, PATIENT_NODE):
        assert refusal(lambda node=node: world.api(node).fetch_record(raw)) == (409, "replayed")
    patient = world.api(HOSPITAL_0).fetch_record(
        signed_fetch(world, world.patient, record, hospital)
    )
    return Copies(doctor, patient)


def one_custodian_down(world: World, reading: Reading) -> None:
    """The patient's node stops: A still reads through hospital-0; the node restarts and
    keeps the record."""
    net = world.net
    assert net.kill(PATIENT_NODE, signal.SIGTERM) == 0
    assert world.doctor.read_record(reading.record) == reading.observation
    net.start(PATIENT_NODE)
    net.wait_until(lambda: net.status(PATIENT_NODE), START_TIMEOUT_S, "the patient's node up")
    net.wait_for_heights([PATIENT_NODE], net.height(HOSPITAL_0), WAIT_S)
    assert wait_commitment(world, PATIENT_NODE, reading.record, "held_here")["erased"] is False

    def served_by_the_patient_node() -> bool:
        raw = signed_fetch(world, world.doctor, reading.record, world.patient.identity_id)
        try:
            world.api(HOSPITAL_0).fetch_record(raw)  # hospital-0's node asks the patient's
        except NodeResponseError as exc:
            assert exc.reason == "busy", exc  # not reachable again yet
            return False
        return True

    net.wait_until(served_by_the_patient_node, WAIT_S, "the patient's node serving again")


def revoked_then_expired(world: World, reading: Reading, grant_id: bytes) -> bytes:
    """After revocation A is refused; a new short grant serves A until it expires in
    block time, then A is refused again; the short grant's id."""
    patient, doctor = world.patient, world.doctor
    patient.revoke(grant_id)
    synced(world)
    assert read_refused(doctor, reading.record) == "forbidden"
    expires_ms = _now_ms() + EXPIRY_MS
    short = patient.grant_only(
        doctor.identity_id, expires_ms=expires_ms, resource_types=[GLUCOSE_RESOURCE_TYPE]
    )
    synced(world)
    assert doctor.read_record(reading.record) == reading.observation  # its key stayed
    path = f"g/{patient.identity_id.hex()}/{short.hex()}"

    def expired() -> bool:
        return bool(patient.node.state("consent", path).rendered["state"] == "expired")

    world.net.wait_until(expired, EXPIRY_MS / 1000 + WAIT_S, "the grant's expiry")
    synced(world)
    assert int(world.net.api(PATIENT_NODE).get("/blocks/latest")["time_ms"]) >= expires_ms
    assert read_refused(doctor, reading.record) == "forbidden"
    return short


def erased_everywhere(world: World, reading: Reading, copies: Copies) -> None:
    """The patient erases the record: both vaults refuse it (410), its keys are gone from
    the patient's keystore, and what the test kept shows that only the data key was
    needed: the copies open with it, and nothing else opens them."""
    record, patient = reading.record, world.patient
    commitment = patient.record(record)
    data_key = patient.keystore.data_key(record)  # kept when the key was re-wrapped for A
    assert commitment is not None and data_key is not None
    patient.erase([record])
    for node in (PATIENT_NODE, HOSPITAL_0):
        assert wait_commitment(world, node, record, "erased")["held_here"] is False
        custodian = patient.identity_id if node == PATIENT_NODE else world.hospital.identity_id
        raw = signed_fetch(world, patient, record, custodian)
        refused = refusal(lambda node=node, raw=raw: world.api(node).fetch_record(raw))
        assert refused == (410, "erased")
    assert read_refused(world.doctor, record) == "erased"
    assert patient.keystore.data_key(record) is None
    assert Keystore.open(patient.keystore.path, PASSPHRASE).data_key(record) is None
    assert world.doctor.keystore.data_key_count == 0

    # The copies kept before erasure open with the data key alone ...
    def opened(key: bytes) -> bytes:
        return open_sealed(
            copies.doctor.ciphertext,
            record_id=record,
            owner=commitment.owner,
            key_epoch=commitment.key_epoch,
            data_key=key,
        )

    for copy, reader in ((copies.doctor, world.doctor), (copies.patient, patient)):
        private_key = reader.keystore.encryption_private_key
        assert unwrap_key(copy.wrapped_key, record, private_key) == data_key
    assert opened(data_key) == reading.plaintext
    # ... and without it nothing opens the ciphertext.
    with pytest.raises(EnvelopeError):
        opened(nacl.utils.random(DATA_KEY_BYTES))


@pytest.mark.slow
def test_records_across_node_processes_from_upload_to_erasure(
    net: LocalNet, tmp_path: Path
) -> None:
    """The whole story of the module docstring (a kept reading shows the scan sees blobs)."""
    world = make_world(net, tmp_path)
    kept = upload_reading(world, 143)
    reading = upload_reading(world, 187)
    ids = {"patient": world.patient.identity_id.hex(), "a": world.doctor.identity_id.hex()}
    ids["b"] = world.outsider.identity_id.hex()
    grant_id = grant_and_read(world, reading, expires_ms=_now_ms() + HOUR_MS)
    copies = refusals_and_copies(world, reading)
    # The patient's node is about to stop: its audit batch must be on chain first.
    before = Counter({(ids["patient"], True): 2, (ids["a"], True): 2, (ids["b"], False): 1})
    wait_audited(world, reading.record, before)
    one_custodian_down(world, reading)
    short = revoked_then_expired(world, reading, grant_id)
    after = before + Counter({(ids["a"], True): 3, (ids["a"], False): 2})
    entries = wait_audited(world, reading.record, after)
    by_hospital = [e for e in entries if e["custodian"] == world.hospital.identity_id.hex()]
    assert Counter((e["reader"], e["served"]) for e in by_hospital) >= Counter(
        {(ids["a"], True): 2, (ids["patient"], True): 1}  # A's copy, the read while down
    )
    grants = {("grant", grant_id.hex()), ("grant", short.hex())}
    for entry in entries:
        basis = (entry["basis"], entry["basis_id"])
        if entry["reader"] == ids["a"] and entry["served"]:
            assert basis in grants, entry
        elif not entry["served"]:
            assert basis == ("owner", None), entry  # refused: no basis
    erased_everywhere(world, reading, copies)
    held = world.api(HOSPITAL_0).fetch_record(
        signed_fetch(world, world.patient, kept.record, world.hospital.identity_id)
    )
    net.stop_all()
    gone = {
        "erased ciphertext": copies.doctor.ciphertext,
        "A's wrapped key": copies.doctor.wrapped_key,
        "the patient's wrapped key": copies.patient.wrapped_key,
    }
    assert_at_rest(net, [kept, reading], held=held.ciphertext, gone=gone)


def test_an_erased_blob_leaves_no_bytes_in_the_vault_files(tmp_path: Path) -> None:
    """Erasure compacts until no file of even a young vault keeps the erased blob's bytes."""
    storage = LevelDBStorage(tmp_path / "vault", CHAIN_ID)
    vault = Vault(storage, compact_range=storage.compact_range)
    blobs = [_random_blob() for _ in range(2)]
    try:
        for blob in blobs:
            vault.put_pending(blob, _now_ms())
        assert vault.erase(blobs[0].record_id)
    finally:
        storage.close()
    database = [tmp_path / "vault"]
    assert files_holding(database, blobs[1].ciphertext[64:128])  # the check sees a blob
    assert files_holding(database, blobs[0].ciphertext[64:128]) == []


def _random_blob() -> PendingBlob:
    """A blob of random bytes (incompressible: found as is in LevelDB's files)."""
    return PendingBlob(
        record_id=nacl.utils.random(32),
        owner=nacl.utils.random(32),
        author=nacl.utils.random(32),
        resource_type=GLUCOSE_RESOURCE_TYPE,
        code=fhir.record_code("cgm"),
        key_epoch=0,
        data_time_ms=_now_ms(),
        ciphertext=nacl.utils.random(512),
        wrapped_keys={nacl.utils.random(32): nacl.utils.random(WRAPPED_KEY_BYTES)},
        author_signature=nacl.utils.random(64),
    )
