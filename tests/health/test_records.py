"""Records: who may commit a record of a patient, the commitment's rules, erasure, and the
notice of glucose readings to ``care``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from crypto_core.signatures import sha256
from health.contracts.common import (
    READING_NOTICE_CODEC,
    AccessBasis,
    HealthRole,
    Purpose,
)
from health.contracts.consent import (
    ConsentModule,
    break_glass_payload,
    revoke_payload,
)
from health.contracts.identity import GenesisIdentity, IdentityModule, deactivate_payload
from health.contracts.records import (
    MAX_ERASE_RECORDS,
    RecordsModule,
    commit_payload,
    erase_payload,
    get_record,
    list_records,
    owner_index_key,
    record_key,
)
from node.app import AppConfig, Application
from node.app.module import ExecContext, Module
from node.testing import TxFactory
from node.types import ResultCode, Transaction, TxReceipt
from tests.health.helpers import CHAIN, HealthChain, Party, attributes, party
from tests.health.test_consent import BLOCK_MS, GLUCOSE, HBA1C, StateScan, World, grant, make_world
from tests.node.helpers import GENESIS_TIME_MS, Chain

CGM_READING = "http://loinc.org|99504-3"


@pytest.fixture
def world() -> World:
    return make_world()


def record_id(name: str) -> bytes:
    return sha256(f"record/{name}".encode())


def commit(
    world: World,
    name: str,
    *,
    owner: Party | None = None,
    resource_type: str = "Observation",
    code: str = GLUCOSE,
    size_bytes: int = 512,
    custodians: tuple[bytes, ...] | None = None,
    key_epoch: int = 0,
    data_time_ms: int | None = None,
) -> bytes:
    """The payload committing the record ``name`` of ``owner`` (default: the patient)."""
    return commit_payload(
        record_id(name),
        (owner or world.patient).id,
        resource_type=resource_type,
        code=code,
        ciphertext_sha256=sha256(name.encode()),
        size_bytes=size_bytes,
        custodians=(world.hospital.id,) if custodians is None else custodians,
        key_epoch=key_epoch,
        data_time_ms=world.chain.time_ms if data_time_ms is None else data_time_ms,
    )


def committed(receipt: TxReceipt) -> dict[str, str]:
    [event] = [e for e in receipt.events if e.name == "records.committed"]
    return attributes(event)


# -- who may commit ------------------------------------------------------------------------


def test_the_owner_commits_its_records(world: World) -> None:
    chain = world.chain
    start_ms = chain.time_ms
    custodians = (world.hospital.id, world.patient.id)
    receipt = chain.ok(
        world.patient,
        "records.commit",
        commit(world, "late", custodians=custodians, data_time_ms=start_ms - 10),
    )
    assert committed(receipt) == {
        "patient": world.patient.id.hex(),
        "record": record_id("late").hex(),
        "author": world.patient.id.hex(),
        "basis": "owner",
        "basis_id": "",
        "resource_type": "Observation",
        "code": GLUCOSE,
        "size_bytes": "512",
        "data_time_ms": str(start_ms - 10),
    }
    record = get_record(chain.app, record_id("late"))
    assert record is not None
    assert (record.owner, record.author, record.author_basis) == (
        world.patient.id,
        world.patient.id,
        AccessBasis.OWNER,
    )
    assert record.custodians == custodians and record.ciphertext_sha256 == sha256(b"late")
    assert record.committed_ms == chain.time_ms and not record.erased
    assert chain.get(owner_index_key(world.patient.id, start_ms - 10, record.id)) is not None
    chain.ok(world.patient, "records.commit", commit(world, "early", data_time_ms=start_ms - 20))
    listed = list_records(StateScan(chain), world.patient.id)
    assert [r.id for r in listed] == [record_id("early"), record_id("late")]  # data time order
    chain.fails(world.patient, "records.commit", commit(world, "late"), ResultCode.CONFLICT)


def test_a_paired_device_commits_for_its_patient_only(world: World) -> None:
    chain = world.chain
    meter = chain.register(world.patient, "meter-a", HealthRole.DEVICE, "glucose_meter")
    receipt = chain.ok(meter, "records.commit", commit(world, "reading-1"))
    assert committed(receipt)["author"] == meter.id.hex()
    assert committed(receipt)["basis"] == "owner"
    # a device paired to another patient is refused
    other = chain.register(world.hospital, "patient-b", HealthRole.PATIENT)
    other_meter = chain.register(other, "meter-b", HealthRole.DEVICE, "cgm")
    receipt = chain.fails(
        other_meter, "records.commit", commit(world, "reading-2"), ResultCode.UNAUTHORIZED
    )
    assert "paired" in receipt.log
    # an unpaired device cannot send at all
    chain.ok(world.patient, "identity.deactivate", deactivate_payload(meter.id))
    receipt = chain.receipt(meter, "records.commit", commit(world, "reading-3"))
    assert receipt.code is ResultCode.ACCOUNT_INACTIVE
    assert get_record(chain.app, record_id("reading-2")) is None
    assert get_record(chain.app, record_id("reading-3")) is None


def test_others_may_not_commit_without_an_access(world: World) -> None:
    chain = world.chain
    other = chain.register(world.hospital, "patient-b", HealthRole.PATIENT)
    for sender in (other, world.hospital, world.doctor):
        chain.fails(sender, "records.commit", commit(world, "x"), ResultCode.UNAUTHORIZED)


def test_a_practitioner_commits_under_a_treatment_access(world: World) -> None:
    chain = world.chain
    plan: dict[str, Any] = {"resource_type": "CarePlan", "code": "diabetes-plan"}
    grant(world, world.doctor, purpose=Purpose.RESEARCH)
    chain.fails(
        world.doctor, "records.commit", commit(world, "p0", **plan), ResultCode.UNAUTHORIZED
    )
    grant_id = grant(world, world.doctor, resource_types=("CarePlan",))
    receipt = chain.ok(world.doctor, "records.commit", commit(world, "p1", **plan))
    assert committed(receipt)["basis"] == "grant"
    assert committed(receipt)["basis_id"] == grant_id.hex()
    record = get_record(chain.app, record_id("p1"))
    assert record is not None and record.author_basis_id == grant_id
    # outside the grant's scope
    chain.fails(world.doctor, "records.commit", commit(world, "p2"), ResultCode.UNAUTHORIZED)
    # a revoked grant no longer serves
    chain.ok(world.patient, "consent.revoke", revoke_payload(world.patient.id, grant_id))
    chain.fails(
        world.doctor, "records.commit", commit(world, "p3", **plan), ResultCode.UNAUTHORIZED
    )


def test_an_expired_grant_no_longer_serves(world: World) -> None:
    chain = world.chain
    grant(world, world.doctor, duration_ms=10 * BLOCK_MS)
    chain.ok(world.doctor, "records.commit", commit(world, "before"))
    chain.advance(10 * BLOCK_MS)
    chain.fails(world.doctor, "records.commit", commit(world, "after"), ResultCode.UNAUTHORIZED)


def test_an_institution_grant_serves_its_practitioners_not_others(world: World) -> None:
    chain = world.chain
    grant(world, world.hospital)
    chain.ok(world.colleague, "records.commit", commit(world, "n1"))
    receipt = chain.fails(
        world.outsider, "records.commit", commit(world, "n2"), ResultCode.UNAUTHORIZED
    )
    assert "treatment access" in receipt.log


def test_a_practitioner_commits_under_emergency_access(world: World) -> None:
    chain = world.chain
    opened = chain.ok(
        world.outsider, "consent.break_glass", break_glass_payload(world.patient.id, "ETREAT")
    )
    receipt = chain.ok(world.outsider, "records.commit", commit(world, "er-note"))
    assert committed(receipt)["basis"] == "emergency"
    assert committed(receipt)["basis_id"] == attributes(opened.events[0])["access"]


# -- the commitment's rules ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"size_bytes": 0}, ResultCode.INVALID_PAYLOAD),
        ({"size_bytes": 1024 * 1024 + 1}, ResultCode.LIMIT_EXCEEDED),
        ({"custodians": ()}, ResultCode.INVALID_PAYLOAD),
        ({"key_epoch": 1}, ResultCode.INVALID_PAYLOAD),
        ({"custodians": (bytes(32),)}, ResultCode.NOT_FOUND),
    ],
)
def test_malformed_commitments_are_refused(
    world: World, fields: dict[str, Any], code: ResultCode
) -> None:
    world.chain.fails(world.patient, "records.commit", commit(world, "bad", **fields), code)
    assert get_record(world.chain.app, record_id("bad")) is None


def test_custodians_are_acting_institutions_or_the_owner(world: World) -> None:
    chain = world.chain
    twice = (world.hospital.id, world.hospital.id)
    for custodians, code in (
        (twice, ResultCode.INVALID_PAYLOAD),
        ((world.doctor.id,), ResultCode.UNAUTHORIZED),
        ((world.hospital.id, world.outsider.id), ResultCode.UNAUTHORIZED),
    ):
        payload = commit(world, "c", custodians=custodians)
        chain.fails(world.patient, "records.commit", payload, code)
    both = (world.other_hospital.id, world.patient.id)
    chain.ok(world.patient, "records.commit", commit(world, "c", custodians=both))


def test_governance_bounds_custodians_and_sizes() -> None:
    world = make_world({"max_custodians": 2, "max_record_bytes": 2048})
    chain = world.chain
    three = (world.hospital.id, world.other_hospital.id, world.patient.id)
    for payload in (
        commit(world, "c3", custodians=three),
        commit(world, "big", size_bytes=2049),
    ):
        chain.fails(world.patient, "records.commit", payload, ResultCode.LIMIT_EXCEEDED)
    chain.ok(world.patient, "records.commit", commit(world, "ok", size_bytes=2048))


def test_the_owner_is_an_acting_patient_and_the_data_not_from_the_future(world: World) -> None:
    chain = world.chain
    chain.fails(
        world.doctor,
        "records.commit",
        commit(world, "o", owner=world.doctor),
        ResultCode.UNAUTHORIZED,
    )
    future = chain.time_ms + BLOCK_MS + 5 * 60 * 1000 + 1
    receipt = chain.fails(
        world.patient,
        "records.commit",
        commit(world, "f", data_time_ms=future),
        ResultCode.INVALID_PAYLOAD,
    )
    assert "future" in receipt.log
    chain.ok(world.patient, "records.commit", commit(world, "f", data_time_ms=future - 1))


# -- erasure -------------------------------------------------------------------------------


def test_the_owner_erases_records_and_custodians_are_told(world: World) -> None:
    chain = world.chain
    custodians = (world.hospital.id, world.other_hospital.id)
    chain.ok(world.patient, "records.commit", commit(world, "e1", custodians=custodians))
    chain.ok(world.patient, "records.commit", commit(world, "e2"))
    receipt = chain.ok(
        world.patient, "records.erase", erase_payload((record_id("e1"), record_id("e2")))
    )
    assert [e.name for e in receipt.events] == ["records.erased", "records.erased"]
    first, second = (attributes(e) for e in receipt.events)
    assert first == {
        "patient": world.patient.id.hex(),
        "record": record_id("e1").hex(),
        "custodian_count": "2",
        "custodian_0": world.hospital.id.hex(),
        "custodian_1": world.other_hospital.id.hex(),
    }
    assert second["record"] == record_id("e2").hex() and second["custodian_count"] == "1"
    record = get_record(chain.app, record_id("e1"))
    assert record is not None and record.erased and record.erased_ms == chain.time_ms
    assert record.ciphertext_sha256 == sha256(b"e1")  # the commitment stays
    chain.fails(
        world.patient, "records.erase", erase_payload((record_id("e1"),)), ResultCode.CONFLICT
    )


def test_only_the_owner_erases_and_a_batch_is_all_or_nothing(world: World) -> None:
    chain = world.chain
    other = chain.register(world.hospital, "patient-b", HealthRole.PATIENT)
    chain.ok(world.patient, "records.commit", commit(world, "mine"))
    chain.ok(other, "records.commit", commit(world, "theirs", owner=other))
    grant(world, world.doctor)
    mine = erase_payload((record_id("mine"),))
    for sender in (other, world.doctor, world.hospital):
        chain.fails(sender, "records.erase", mine, ResultCode.UNAUTHORIZED)
    both = erase_payload((record_id("mine"), record_id("theirs")))
    chain.fails(world.patient, "records.erase", both, ResultCode.UNAUTHORIZED)
    record = get_record(chain.app, record_id("mine"))
    assert record is not None and not record.erased
    unknown = erase_payload((record_id("mine"), record_id("nothing")))
    chain.fails(world.patient, "records.erase", unknown, ResultCode.NOT_FOUND)
    twice = erase_payload((record_id("mine"), record_id("mine")))
    chain.fails(world.patient, "records.erase", twice, ResultCode.INVALID_PAYLOAD)
    chain.fails(world.patient, "records.erase", erase_payload(()), ResultCode.INVALID_PAYLOAD)


def test_a_full_erase_batch_fits_the_event_limit(world: World) -> None:
    chain = world.chain
    custodians = (world.hospital.id, world.other_hospital.id, world.patient.id)
    names = [f"r{i}" for i in range(MAX_ERASE_RECORDS)]
    txs = [
        chain.tx(world.patient, "records.commit", commit(world, n, custodians=custodians))
        for n in names
    ]
    assert all(r.code is ResultCode.OK for r in chain.run(*txs).receipts)
    receipt = chain.ok(
        world.patient, "records.erase", erase_payload(tuple(record_id(n) for n in names))
    )
    assert len(receipt.events) == MAX_ERASE_RECORDS


# -- glucose readings and care -------------------------------------------------------------


class StubCare(Module):
    """Stands in for ``care``: ``care.set_plan`` (payload: a patient id) writes the plan key
    records looks for; each ``reading_committed`` call becomes a ``care.reading`` event."""

    name = "care"
    actions = frozenset({"set_plan"})

    def deliver_tx(self, ctx: ExecContext, tx: Transaction) -> None:
        ctx.view.set(b"care/p/" + tx.payload, b"plan")

    def on_call(self, ctx: ExecContext, action: str, payload: bytes) -> bytes:
        assert (action, ctx.caller) == ("reading_committed", "records")
        notice = READING_NOTICE_CODEC.decode(payload)
        ctx.emit(
            "reading",
            patient=notice.patient,
            record=notice.record,
            data_time_ms=notice.data_time_ms,
        )
        return b""


@dataclass
class CareStubChain(HealthChain):
    """Identity, consent, records and ``StubCare``, with one genesis hospital."""

    def __post_init__(self) -> None:
        self.members = [party("hospital-0"), party("hospital-1")]
        identity = IdentityModule(
            [
                GenesisIdentity(
                    HealthRole.INSTITUTION,
                    "hospital",
                    f"Hospital {i}",
                    member.id,
                    bytes(member.encryption.public_key),
                )
                for i, member in enumerate(self.members)
            ]
        )
        modules = [identity, ConsentModule(), RecordsModule(), StubCare()]
        self.app = Application(AppConfig(CHAIN), modules, authenticator=identity)
        self.app.init_chain(GENESIS_TIME_MS)
        self.chain = Chain(self.app)
        self.factory = TxFactory(CHAIN)


def care_world() -> World:
    chain = CareStubChain()
    hospital, other = chain.members
    return World(
        chain=chain,
        hospital=hospital,
        other_hospital=other,
        doctor=chain.register(hospital, "dr-a", HealthRole.PRACTITIONER, "endocrinology", "A"),
        colleague=chain.register(hospital, "dr-b", HealthRole.PRACTITIONER, "nursing", "B"),
        outsider=chain.register(other, "dr-c", HealthRole.PRACTITIONER, "cardiology", "C"),
        patient=chain.register(hospital, "patient-a", HealthRole.PATIENT),
    )


def care_events(receipt: TxReceipt) -> list[dict[str, str]]:
    return [attributes(e) for e in receipt.events if e.name == "care.reading"]


def test_glucose_readings_tell_care_only_when_a_plan_exists() -> None:
    world = care_world()
    chain = world.chain
    meter = chain.register(world.patient, "meter-a", HealthRole.DEVICE, "cgm")
    # no plan yet: nothing is told (records works without care)
    assert care_events(chain.ok(meter, "records.commit", commit(world, "g0"))) == []
    chain.ok(world.hospital, "care.set_plan", world.patient.id)
    reading_ms = chain.time_ms - 5
    receipt = chain.ok(
        meter, "records.commit", commit(world, "g1", code=CGM_READING, data_time_ms=reading_ms)
    )
    assert care_events(receipt) == [
        {
            "patient": world.patient.id.hex(),
            "record": record_id("g1").hex(),
            "data_time_ms": str(reading_ms),
        }
    ]
    assert len(care_events(chain.ok(world.patient, "records.commit", commit(world, "g2")))) == 1
    # not a glucose reading, or not the patient's own: care is not told
    for payload in (
        commit(world, "a1c", code=HBA1C),
        commit(world, "plan", resource_type="CarePlan", code=GLUCOSE),
    ):
        assert care_events(chain.ok(world.patient, "records.commit", payload)) == []
    grant(world, world.doctor)
    assert care_events(chain.ok(world.doctor, "records.commit", commit(world, "lab"))) == []


# -- queries -------------------------------------------------------------------------------


def test_query_paths_and_rendering(world: World) -> None:
    chain = world.chain
    module = RecordsModule()
    data_time_ms = chain.time_ms
    chain.ok(world.patient, "records.commit", commit(world, "q", data_time_ms=data_time_ms))
    record = record_id("q")
    key = module.query_key(f"r/{record.hex()}")
    assert key == record_key(record)
    value = chain.get(key)
    assert value is not None
    rendered = module.render(key, value)
    json.dumps(rendered)
    assert isinstance(rendered, dict)
    assert rendered["id"] == record.hex() and rendered["author_basis"] == "owner"
    assert rendered["custodians"] == [world.hospital.id.hex()] and rendered["erased"] is False
    index = module.query_key(f"o/{world.patient.id.hex()}/{data_time_ms}/{record.hex()}")
    assert index == owner_index_key(world.patient.id, data_time_ms, record)
    index_value = chain.get(index)
    assert index_value is not None
    assert module.render(index, index_value) == {
        "owner": world.patient.id.hex(),
        "data_time_ms": data_time_ms,
        "record": record.hex(),
        "resource_type": "Observation",
    }
    assert module.query_key(f"o/{world.patient.id.hex()}") == b"records/o/" + world.patient.id
    for bad in ("q", f"r/{record.hex()[:-2]}", f"o/{world.patient.id.hex()}/soon", "r/zz"):
        with pytest.raises(ValueError):
            module.query_key(bad)
