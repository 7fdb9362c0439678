"""The client library against the real API routes of a health chain in virtual time and fake
custodians (``tests/health/fake_node.py``): transactions, nonces and receipts, the record
flows (upload, read, grant with re-wrapped keys, revoke, erase, rotation, export)."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trio

from crypto_core.signatures import sha256
from health import fhir
from health.client import (
    KDF_MIN,
    HealthClient,
    Keystore,
    ReceiptTimeout,
    RecordError,
    TransactionFailed,
    TransactionRejected,
)
from health.client.node_client import HttpReply, NodeClient, NodeResponseError, RecordUpload
from health.client.transactions import event_attribute
from health.contracts.care import AlertLevel, ItemKind, ScheduleItem, get_plan
from health.contracts.common import GLUCOSE_RESOURCE_TYPE, HealthRole, Purpose, param
from health.contracts.consent import get_grant
from health.contracts.governance import Choice
from health.contracts.identity import node_of
from health.contracts.records import get_record
from health.envelopes import open_sealed, unwrap_key
from node.api.client import ApiError, ApiUnreachableError
from node.api.http import Request, Response, json_error, serve_http
from node.types import ResultCode
from tests.health.fake_node import CHAIN, ClientChain, FakeNode, InProcessTransport
from tests.health.helpers import party

PASS = "pass phrase"
METER_CODE = "http://loinc.org|41653-7"
H0, H1 = "h0.test", "h1.test"
PEER = "12D3KooWGzh5sCkqYFzVZ5m4DkM7x8Qh1UuNbDkRdUbbNo5HvE6v"


def reading(value: int, time_ms: int) -> dict[str, Any]:
    """A glucose Observation (what a meter uploads)."""
    return fhir.glucose_observation(
        observation_id=f"r{value}",
        patient_ref="Patient/p",
        mg_dl=value,
        time_ms=time_ms,
        device="glucose_meter",
    )


@dataclass
class World:
    """Two hospitals' nodes (custodians) over one chain; a patient, a device, a doctor."""

    chain: ClientChain
    transport: InProcessTransport
    nodes: dict[str, FakeNode]
    tmp: Path

    def keystore(
        self,
        name: str,
        role: HealthRole,
        signing_seed: bytes | None = None,
        encryption_private_key: bytes | None = None,
    ) -> Keystore:
        return Keystore.create(
            self.tmp / f"{name}.keystore",
            PASS,
            name=name,
            role=role,
            kdf=KDF_MIN,
            signing_seed=signing_seed,
            encryption_private_key=encryption_private_key,
        )

    def client(self, keystore: Keystore, host: str = H0) -> HealthClient:
        return HealthClient(
            f"http://{host}",
            keystore,
            CHAIN,
            transport=self.transport,
            clock_ms=self.chain.now_ms,
            monotonic=self.chain.monotonic,
            sleep=self.chain.sleep,
            poll_interval_s=0.5,
            receipt_timeout_s=20,
        )

    @property
    def custodians(self) -> list[tuple[bytes, str]]:
        return [(node.custodian, f"http://{host}") for host, node in self.nodes.items()]


@dataclass
class Parties:
    world: World
    hospital: HealthClient
    hospital1: HealthClient
    patient: HealthClient
    device: HealthClient
    doctor: HealthClient


@pytest.fixture
def world(tmp_path: Path) -> World:
    chain = ClientChain()
    network: dict[bytes, FakeNode] = {}
    nodes = {
        H0: FakeNode(chain, chain.institutions[0].id, network),
        H1: FakeNode(chain, chain.institutions[1].id, network),
    }
    return World(chain, InProcessTransport(dict(nodes)), nodes, tmp_path)


@pytest.fixture
def parties(world: World) -> Parties:
    clients = []
    for index, host in enumerate((H0, H1)):
        member = world.chain.institutions[index]
        keystore = world.keystore(
            f"hospital-{index}",
            HealthRole.INSTITUTION,
            signing_seed=member.signer.seed,
            encryption_private_key=member.encryption_private,
        )
        clients.append(world.client(keystore, host))
    hospital, hospital1 = clients
    patient = world.client(world.keystore("patient", HealthRole.PATIENT))
    hospital.register(*patient.keystore.admission_keys(), role=HealthRole.PATIENT)
    doctor = world.client(world.keystore("doctor", HealthRole.PRACTITIONER), H1)
    hospital1.register(
        *doctor.keystore.admission_keys(),
        role=HealthRole.PRACTITIONER,
        kind="endocrinology",
        label="Dr Who",
    )
    device = world.client(world.keystore("meter", HealthRole.DEVICE))
    patient.register(
        *device.keystore.admission_keys(), role=HealthRole.DEVICE, kind="glucose_meter"
    )
    return Parties(world, hospital, hospital1, patient, device, doctor)


def upload(client: HealthClient, world: World, value: int, **kwargs: Any) -> bytes:
    time_ms = world.chain.now_ms() - 60_000
    defaults: dict[str, Any] = {
        "resource_type": GLUCOSE_RESOURCE_TYPE,
        "code": METER_CODE,
        "data_time_ms": time_ms,
        "custodians": world.custodians,
    }
    return client.upload_record(reading(value, time_ms), **(defaults | kwargs))


# -- transactions ------------------------------------------------------------------------------


def test_registration_reads_back_as_identities(parties: Parties) -> None:
    patient = parties.patient.identity(parties.patient.identity_id)
    assert patient is not None and patient.role is HealthRole.PATIENT
    assert patient.encryption_key == parties.patient.keystore.encryption_public_key
    assert patient.parent == parties.hospital.identity_id
    device = parties.patient.identity(parties.device.identity_id)
    assert device is not None and device.parent == parties.patient.identity_id
    assert parties.patient.identity(bytes(32)) is None


def test_several_transactions_in_flight_take_consecutive_nonces(parties: Parties) -> None:
    client = parties.patient
    hashes = [client.tx.submit("care.set_policy", b"\x91\xc3") for _ in range(3)]
    receipts = [client.tx.wait(h) for h in hashes]
    assert [r.code for r in receipts] == [ResultCode.OK] * 3
    assert client.node.next_nonce(client.keystore.signer.public_key) == 4  # pairing + 3


def test_a_stale_nonce_is_resynchronised(parties: Parties, world: World) -> None:
    client = parties.patient
    client.set_policy(True)
    other = world.client(Keystore.open(client.keystore.path, PASS))  # same key elsewhere
    other.set_policy(False)
    receipt = client.set_policy(True)  # its cached nonce was taken by the other client
    assert receipt.ok


def test_refused_and_failed_transactions_are_typed(parties: Parties, world: World) -> None:
    with pytest.raises(TransactionRejected) as refused:  # check_tx: a grant already expired
        parties.patient.grant_only(parties.doctor.identity_id, expires_ms=1)
    assert refused.value.reason == "app_rejected"
    assert parties.patient.set_policy(True).ok  # the nonce was not lost
    with pytest.raises(TransactionFailed) as failed:  # delivered, refused by the contract
        parties.patient.revoke(bytes(32))
    assert failed.value.receipt.code is ResultCode.NOT_FOUND
    assert parties.patient.set_policy(False).ok


def test_waiting_for_a_receipt_has_a_deadline(parties: Parties, world: World) -> None:
    before = world.chain.now_ms()
    with pytest.raises(ReceiptTimeout):
        parties.patient.tx.wait(bytes(32), timeout_s=3)
    assert 3_000 <= world.chain.now_ms() - before <= 3_500
    assert all(s <= 0.5 for s in world.chain.sleeps)


def test_ids_come_from_the_receipts(parties: Parties, world: World) -> None:
    receipt = parties.hospital.announce_node(PEER)
    assert event_attribute(receipt, "identity.node_announced", "peer_id") == PEER
    assert node_of(world.chain, parties.hospital.identity_id) == PEER
    grant = parties.patient.grant_only(
        parties.doctor.identity_id, expires_ms=world.chain.now_ms() + 3_600_000
    )
    stored = get_grant(world.chain, parties.patient.identity_id, grant)
    assert stored is not None and stored.grantee == parties.doctor.identity_id
    access = parties.doctor.break_glass(parties.patient.identity_id, "v3-ActReason|ETREAT")
    assert len(access) == 32
    referral = parties.doctor.request_referral(
        parties.patient.identity_id,
        parties.hospital.identity_id,
        specialty="cardiology",
        reason_code="sct|1234",
        expires_ms=world.chain.now_ms() + 3_600_000,
    )
    assert len(referral) == 32


def test_governance_proposals_and_votes(parties: Parties, world: World) -> None:
    proposal = parties.hospital.propose_set_param("max_custodians", 4, "fewer copies")
    assert proposal == 1
    receipt = parties.hospital.vote(proposal, Choice.YES)
    assert event_attribute(receipt, "governance.passed", "proposal") == "1"
    assert param(world.chain, "max_custodians") == 4


def test_a_care_plan_written_by_the_doctor(parties: Parties, world: World) -> None:
    patient, doctor = parties.patient, parties.doctor
    patient.grant_only(
        doctor.identity_id,
        expires_ms=world.chain.now_ms() + 3_600_000,
        resource_types=["CarePlan", GLUCOSE_RESOURCE_TYPE],
    )
    plan = {"resourceType": "CarePlan", "id": "plan-1", "status": "active", "intent": "plan"}
    record = doctor.upload_record(
        plan,
        owner=patient.identity_id,
        resource_type="CarePlan",
        code="http://snomed.info/sct|698360004",
        data_time_ms=world.chain.now_ms(),
        custodians=world.custodians,
        readers=[doctor.identity_id],
    )
    commitment = get_record(world.chain, record)
    assert commitment is not None and commitment.author == doctor.identity_id
    assert doctor.read_record(record) == plan  # the author named itself a reader
    assert patient.read_record(record) == plan
    assert doctor.keystore.data_key_count == 0  # not the owner: no copy kept
    item = ScheduleItem(1, ItemKind.MEASUREMENT, (480, 1200))
    doctor.set_plan(
        patient.identity_id,
        base_version=0,
        plan_record=record,
        plan_sha256=commitment.ciphertext_sha256,
        tz_offset_minutes=60,
        items=[item],
    )
    stored = get_plan(world.chain, patient.identity_id)
    assert stored is not None and stored.items == (item,)
    patient.set_policy(True)
    reading_id = upload(parties.device, world, 55, owner=patient.identity_id)
    receipt = parties.device.alert(AlertLevel.HYPO_1, reading_id)
    assert event_attribute(receipt, "care.alert_raised", "level") == "hypo_1"


def test_referral_declined_by_its_target(parties: Parties, world: World) -> None:
    parties.patient.grant_only(
        parties.doctor.identity_id, expires_ms=world.chain.now_ms() + 3_600_000
    )
    referral = parties.doctor.request_referral(
        parties.patient.identity_id,
        parties.hospital.identity_id,
        specialty="cardiology",
        reason_code="sct|1234",
        expires_ms=world.chain.now_ms() + 3_600_000,
    )
    receipt = parties.hospital.decline_referral(referral, "sct|busy")
    assert event_attribute(receipt, "referral.declined", "status") == "declined"


# -- records ---------------------------------------------------------------------------------


def test_upload_then_read_back(parties: Parties, world: World) -> None:
    record = upload(parties.patient, world, 104)
    commitment = get_record(world.chain, record)
    assert commitment is not None
    assert commitment.owner == commitment.author == parties.patient.identity_id
    assert commitment.custodians == tuple(c for c, _ in world.custodians)
    for node in world.nodes.values():
        blob = node.blobs[record]
        assert set(blob.wrapped_keys) == {parties.patient.identity_id}
        assert b"104" not in blob.ciphertext
    assert parties.patient.keystore.data_key(record) is not None
    assert parties.patient.read_record(record) == reading(104, commitment.data_time_ms)
    assert parties.patient.list_records() == [record]


def test_a_device_uploads_for_its_patient_and_keeps_no_key(parties: Parties, world: World) -> None:
    record = upload(parties.device, world, 150, owner=parties.patient.identity_id)
    commitment = get_record(world.chain, record)
    assert commitment is not None and commitment.author == parties.device.identity_id
    assert parties.device.keystore.data_key_count == 0
    assert parties.patient.read_record(record)["valueQuantity"]["value"] == 150
    with pytest.raises(RecordError) as caught:
        parties.device.read_record(record)
    assert caught.value.reason == "forbidden"


def test_each_fetch_is_freshly_signed(parties: Parties, world: World) -> None:
    record = upload(parties.patient, world, 99)
    parties.patient.read_record(record)
    parties.patient.read_record(record)
    fetches = world.nodes[H0].fetches
    assert len(fetches) == 2
    assert fetches[0].nonce != fetches[1].nonce
    assert {f.requester for f in fetches} == {parties.patient.identity_id}


def test_readers_get_keys_at_upload(parties: Parties, world: World) -> None:
    parties.patient.grant_only(
        parties.doctor.identity_id, expires_ms=world.chain.now_ms() + 3_600_000
    )
    record = upload(parties.patient, world, 120, readers=[parties.doctor.identity_id])
    assert parties.doctor.read_record(record)["valueQuantity"]["value"] == 120


def test_grant_rewraps_keys_and_revoke_stops_reads(parties: Parties, world: World) -> None:
    mine = upload(parties.patient, world, 101)
    by_device = upload(parties.device, world, 102, owner=parties.patient.identity_id)
    with pytest.raises(RecordError) as caught:
        parties.doctor.read_record(mine)
    assert caught.value.reason == "forbidden"
    result = parties.patient.grant(
        parties.doctor.identity_id,
        expires_ms=world.chain.now_ms() + 3_600_000,
        resource_types=[GLUCOSE_RESOURCE_TYPE],
        records=[mine, by_device],
    )
    assert result.shared.failed == {}
    custodian_ids = [c for c, _ in world.custodians]
    assert result.shared.delivered == {mine: custodian_ids, by_device: custodian_ids}
    # The device's record key came back through a fetch; the keystore keeps it now.
    assert parties.patient.keystore.data_key(by_device) is not None
    assert parties.doctor.read_record(mine)["valueQuantity"]["value"] == 101
    assert parties.doctor.read_record(by_device)["valueQuantity"]["value"] == 102
    later = upload(parties.patient, world, 103)
    with pytest.raises(RecordError) as caught:
        parties.doctor.read_record(later)
    assert caught.value.reason == "key_pending"
    parties.patient.revoke(result.grant_id)
    with pytest.raises(RecordError) as caught:
        parties.doctor.read_record(mine)
    assert caught.value.reason == "forbidden"


def test_share_reports_what_could_not_be_sent(parties: Parties, world: World) -> None:
    record = upload(parties.patient, world, 111)
    fresh = world.client(Keystore.open(parties.patient.keystore.path, PASS))  # no directory
    fresh.keystore.forget_data_keys([record])
    parties.patient.grant_only(
        parties.doctor.identity_id, expires_ms=world.chain.now_ms() + 3_600_000
    )
    result = fresh.share_records(parties.doctor.identity_id, [record, bytes(32)])
    assert result.delivered == {}
    assert len(result.failed[record]) == 2  # two custodians, no URL for either
    assert "no record" in result.failed[bytes(32)][0]
    fresh.add_custodian(*world.custodians[1])
    result = fresh.share_records(parties.doctor.identity_id, [record])
    assert result.delivered == {record: [world.custodians[1][0]]}


def test_a_custodian_down_at_upload_and_at_read(parties: Parties, world: World) -> None:
    world.nodes[H1].down = True
    record = upload(parties.patient, world, 130)
    assert record not in world.nodes[H1].blobs  # committed all the same: repair's business
    assert parties.patient.read_record(record)["valueQuantity"]["value"] == 130
    world.nodes[H1].down = False
    other = upload(parties.patient, world, 131)
    world.nodes[H0].blobs.pop(other)  # the first custodian lost it: the next one serves
    assert parties.patient.read_record(other)["valueQuantity"]["value"] == 131
    assert [f.custodian for f in world.nodes[H1].fetches] == [world.custodians[1][0]]
    world.nodes[H1].down = True  # now neither serves
    with pytest.raises(RecordError) as caught:
        parties.patient.read_record(other)
    assert caught.value.reason == "no_custodian"


def test_no_custodian_takes_it_nothing_is_committed(parties: Parties, world: World) -> None:
    custodians = [(c, f"http://unknown-{i}.test") for i, (c, _) in enumerate(world.custodians)]
    with pytest.raises(RecordError) as caught:
        parties.patient.upload_record(
            reading(90, world.chain.now_ms()),
            resource_type=GLUCOSE_RESOURCE_TYPE,
            code=METER_CODE,
            data_time_ms=world.chain.now_ms(),
            custodians=custodians,
        )
    assert caught.value.reason == "no_custodian"
    assert parties.patient.keystore.data_key_count == 0


def test_a_refused_commitment_forgets_the_key(parties: Parties, world: World) -> None:
    with pytest.raises(TransactionRejected):
        upload(parties.patient, world, 140, data_time_ms=world.chain.now_ms() + 3_600_000)
    assert parties.patient.keystore.data_key_count == 0


def test_erase_shreds_client_keys(parties: Parties, world: World) -> None:
    records = [upload(parties.patient, world, value) for value in (80, 81)]
    parties.patient.erase(records)
    assert parties.patient.keystore.data_key_count == 0
    assert Keystore.open(parties.patient.keystore.path, PASS).data_key_count == 0
    for record in records:
        commitment = get_record(world.chain, record)
        assert commitment is not None and commitment.erased
        with pytest.raises(RecordError) as caught:
            parties.patient.read_record(record)
        assert caught.value.reason == "erased"


def test_rotation_keeps_old_records_readable(parties: Parties, world: World) -> None:
    old = upload(parties.patient, world, 70)
    old_key = parties.patient.keystore.signer.public_key
    parties.patient.rotate_keys()
    identity = parties.patient.identity(parties.patient.identity_id)
    assert identity is not None and identity.key_epoch == 1
    assert identity.signing_key == parties.patient.keystore.signer.public_key != old_key
    assert parties.patient.keystore.pending_rotation is None
    parties.patient.keystore.forget_data_keys([old])  # only the old X25519 key opens it now
    assert parties.patient.read_record(old)["valueQuantity"]["value"] == 70
    new = upload(parties.patient, world, 71)  # signed by the new key, nonces from 0
    commitment = get_record(world.chain, new)
    assert commitment is not None and commitment.key_epoch == 1
    assert parties.patient.read_record(new)["valueQuantity"]["value"] == 71


def test_a_crash_during_rotation_is_settled_from_the_chain(parties: Parties, world: World) -> None:
    keystore = parties.patient.keystore
    payload = keystore.rotate(chain_id=CHAIN, new_epoch=1)
    assert parties.patient.resume_rotation() is None  # not sent: still pending
    parties.patient.tx.transact("identity.rotate_keys", payload)  # then the process died
    reopened = world.client(Keystore.open(keystore.path, PASS))
    assert reopened.resume_rotation() is True
    assert reopened.set_policy(True).ok  # signs with the new key


def test_export_a_fhir_bundle(parties: Parties, world: World) -> None:
    records = [upload(parties.patient, world, value) for value in (60, 61)]
    bundle = parties.patient.export_fhir_bundle(records, bundle_id="export-1")
    assert bundle["resourceType"] == "Bundle" and bundle["id"] == "export-1"
    values = [r["valueQuantity"]["value"] for r in fhir.resources_of(bundle)]
    assert values == [60, 61]


def test_what_custodians_hold_opens_only_for_the_owner(parties: Parties, world: World) -> None:
    record = upload(parties.patient, world, 77)
    blob = world.nodes[H1].blobs[record]
    commitment = get_record(world.chain, record)
    assert commitment is not None
    data_key = unwrap_key(
        blob.wrapped_keys[parties.patient.identity_id],
        record,
        parties.patient.keystore.encryption_private_key,
    )
    plain = open_sealed(
        blob.ciphertext, record_id=record, owner=commitment.owner, key_epoch=0, data_key=data_key
    )
    assert json.loads(plain)["valueQuantity"]["value"] == 77
    hospital = party("hospital-1").encryption_private
    with pytest.raises(Exception, match="not wrapped"):
        unwrap_key(blob.wrapped_keys[parties.patient.identity_id], record, hospital)


def test_grants_use_purposes(parties: Parties, world: World) -> None:
    result = parties.patient.grant(
        parties.doctor.identity_id,
        expires_ms=world.chain.now_ms() + 3_600_000,
        purpose=Purpose.RESEARCH,
    )
    stored = get_grant(world.chain, parties.patient.identity_id, result.grant_id)
    assert stored is not None and stored.purpose is Purpose.RESEARCH


# -- the node client's own checks --------------------------------------------------------------


class Canned:
    """A transport answering one canned reply."""

    def __init__(self, status: int, body: bytes) -> None:
        self.reply = HttpReply(status, body)

    def request(self, *args: Any, **kwargs: Any) -> HttpReply:
        return self.reply


def canned(status: int, body: Any) -> NodeClient:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return NodeClient("http://node.test", transport=Canned(status, data))


def test_node_client_types_errors() -> None:
    with pytest.raises(ApiError, match="JSON"):
        canned(200, b"<html>").status()
    with pytest.raises(ApiError, match="next_nonce"):
        canned(200, {"next_nonce": "7"}).next_nonce(bytes(32))
    refused = canned(410, {"error": "the record was erased", "reason": "erased"})
    with pytest.raises(NodeResponseError) as caught:
        refused.fetch_record(b"x")
    assert caught.value.reason == "erased" and caught.value.status == 410
    assert canned(404, {"error": "not committed"}).tx_receipt(bytes(32)) is None
    with pytest.raises(ApiError, match="wrapped_key"):
        no_key = {"record": "00" * 32, "ciphertext": "AA==", "custodian": "00" * 32}
        canned(200, no_key).fetch_record(b"x")
    verdict = canned(422, {"accepted": False, "tx_hash": "11" * 32, "reason": "app_rejected"})
    assert verdict.submit_tx(b"tx").reason == "app_rejected"
    with pytest.raises(ValueError):
        NodeClient("ftp://node.test")
    with pytest.raises(ValueError):
        canned(200, {}).events(wait_ms=20_000)


def test_put_record_body_follows_the_contract() -> None:
    seen: list[bytes] = []

    class Recording:
        def request(
            self, method: str, url: str, body: bytes | None, *a: Any, **k: Any
        ) -> HttpReply:
            assert method == "PUT" and url == "http://node.test/records/" + "01" * 32
            seen.append(body or b"")
            return HttpReply(202, b'{"record": "x", "status": "pending"}')

    client = NodeClient("http://node.test/", transport=Recording())
    upload = RecordUpload(
        record=bytes([1] * 32),
        owner=bytes([2] * 32),
        author=bytes([3] * 32),
        resource_type="Observation",
        code=METER_CODE,
        key_epoch=0,
        data_time_ms=5,
        ciphertext=b"\x00\xff",
        wrapped_keys={bytes([5] * 32): b"k5", bytes([4] * 32): b"k4"},
        author_signature=bytes(64),
    )
    assert client.put_record(upload)["status"] == "pending"
    body = json.loads(seen[0])
    assert body["owner"] == "02" * 32 and body["ciphertext"] == "AP8="
    assert list(body["wrapped_keys"]) == ["04" * 32, "05" * 32]
    assert body["wrapped_keys"]["04" * 32] == "azQ="


def test_an_unreachable_node_is_typed(parties: Parties, world: World) -> None:
    world.nodes[H0].down = True
    with pytest.raises(ApiUnreachableError):
        parties.patient.identity(parties.patient.identity_id)


# -- the real transport against the node's HTTP server -----------------------------------------


async def _echo(request: Request) -> Response:
    """A node stand-in: ``/tx`` accepts, ``/records/keys`` echoes, ``/big`` is large."""
    if request.path == "/tx":
        assert request.headers["content-type"] == "application/octet-stream"
        document = {"accepted": True, "tx_hash": sha256(request.body).hex()}
        return Response(202, json.dumps(document).encode())
    if request.path == "/records/keys":
        assert request.headers["content-type"] == "application/json"
        body = json.loads(request.body)
        return Response(200, json.dumps({"record": body["record"], "keys": 3}).encode())
    if request.path == "/big":
        return Response(200, json.dumps({"pad": "x" * 5000}).encode())
    if request.path.startswith("/records/"):
        refusal = {"error": "no such record", "reason": "not_found"}
        return Response(404, json.dumps(refusal).encode())
    return json_error(404, "nothing here")


async def test_http_transport_against_the_node_server() -> None:
    async with trio.open_nursery() as nursery:
        host, port = await nursery.start(serve_http, "127.0.0.1", 0, _echo)
        client = NodeClient(f"http://{host}:{port}", timeout_s=5)
        result = await trio.to_thread.run_sync(client.submit_tx, b"raw tx")
        assert result.accepted and result.tx_hash == sha256(b"raw tx")
        keys = await trio.to_thread.run_sync(
            client.post_record_keys, bytes(32), {bytes(32): b"w"}, bytes(64)
        )
        assert keys == 3
        assert await trio.to_thread.run_sync(client.record_commitment, bytes(32)) is None
        with pytest.raises(NodeResponseError) as caught:
            await trio.to_thread.run_sync(client.status)
        assert caught.value.status == 404 and "nothing here" in str(caught.value)
        small = NodeClient(f"http://{host}:{port}", max_response_bytes=1000)
        with pytest.raises(ApiError, match="more than 1000 bytes"):
            await trio.to_thread.run_sync(small._json, "GET", "/big")
        nursery.cancel_scope.cancel()


def test_nothing_listening_is_unreachable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ApiUnreachableError, match="is it running"):
        NodeClient(f"http://127.0.0.1:{port}", timeout_s=2).status()
