"""Audit: custodians record the accesses they served or refused, kept per patient in time
order."""

from __future__ import annotations

import json

import pytest

from health.contracts.audit import (
    MAX_ACCESS_AGE_MS,
    MAX_PATIENTS_PER_BATCH,
    AccessEntry,
    AuditModule,
    entry_id,
    entry_key,
    list_audit,
    record_payload,
)
from health.contracts.common import AccessBasis, HealthRole
from health.contracts.consent import break_glass_payload
from health.contracts.records import erase_payload
from node.types import ResultCode
from tests.health.helpers import Party, attributes
from tests.health.test_consent import StateScan, World, grant, make_world
from tests.health.test_records import commit, record_id


@pytest.fixture
def world() -> World:
    world = make_world()
    world.chain.ok(world.patient, "records.commit", commit(world, "a1"))
    return world


def entry(
    world: World,
    reader: Party,
    *,
    record: str = "a1",
    basis: AccessBasis = AccessBasis.OWNER,
    basis_id: bytes = b"",
    served: bool = True,
    ago_ms: int = 500,
) -> AccessEntry:
    """An access to ``record`` by ``reader``, ``ago_ms`` before the last block."""
    return AccessEntry(
        record_id(record), reader.id, world.chain.time_ms - ago_ms, basis, basis_id, served
    )


def test_a_custodian_records_a_batch_per_patient_in_time_order(world: World) -> None:
    chain = world.chain
    other = chain.register(world.hospital, "patient-b", HealthRole.PATIENT)
    chain.ok(other, "records.commit", commit(world, "b1", owner=other))
    grant_id = grant(world, world.doctor)
    entries = (
        entry(world, world.doctor, basis=AccessBasis.GRANT, basis_id=grant_id, ago_ms=100),
        entry(world, other, record="b1", ago_ms=300),
        entry(world, world.patient, ago_ms=200),
        # a refused read is recorded too, whatever basis the reader claimed
        entry(world, world.outsider, basis=AccessBasis.GRANT, basis_id=bytes(32), served=False),
    )
    receipt = chain.ok(world.hospital, "audit.record", record_payload(entries))
    assert [e.name for e in receipt.events] == ["audit.recorded"] * 2
    assert [attributes(e) for e in receipt.events] == [
        {"patient": world.patient.id.hex(), "count": "3", "custodian": world.hospital.id.hex()},
        {"patient": other.id.hex(), "count": "1", "custodian": world.hospital.id.hex()},
    ]
    listed = list_audit(StateScan(chain), world.patient.id)
    assert [(e.reader, e.served) for e in listed] == [
        (world.outsider.id, False),
        (world.patient.id, True),
        (world.doctor.id, True),
    ]
    doctor_entry = listed[2]
    assert doctor_entry.basis is AccessBasis.GRANT and doctor_entry.basis_id == grant_id
    assert doctor_entry.custodian == world.hospital.id
    assert doctor_entry.recorded_ms == chain.time_ms
    assert doctor_entry.id == entry_id(receipt.tx_hash, 0)
    key = entry_key(world.patient.id, doctor_entry.accessed_ms, doctor_entry.id)
    assert chain.get(key) is not None
    assert [e.record for e in list_audit(StateScan(chain), other.id)] == [record_id("b1")]


def test_only_a_custodian_of_each_record_records(world: World) -> None:
    chain = world.chain
    chain.ok(
        world.patient,
        "records.commit",
        commit(world, "elsewhere", custodians=(world.other_hospital.id,)),
    )
    mine, theirs = entry(world, world.patient), entry(world, world.patient, record="elsewhere")
    for sender in (world.other_hospital, world.doctor):
        receipt = chain.fails(
            sender, "audit.record", record_payload((mine,)), ResultCode.UNAUTHORIZED
        )
        assert "custodian" in receipt.log
    chain.fails(
        world.hospital, "audit.record", record_payload((mine, theirs)), ResultCode.UNAUTHORIZED
    )
    assert list_audit(StateScan(chain), world.patient.id) == []
    chain.ok(world.other_hospital, "audit.record", record_payload((theirs,)))
    missing = entry(world, world.patient, record="nothing")
    chain.fails(world.hospital, "audit.record", record_payload((missing,)), ResultCode.NOT_FOUND)


def test_the_owner_may_be_a_custodian_and_erased_records_stay_auditable(world: World) -> None:
    chain = world.chain
    chain.ok(
        world.patient,
        "records.commit",
        commit(world, "own", custodians=(world.patient.id,)),
    )
    chain.ok(world.patient, "records.erase", erase_payload((record_id("own"),)))
    refused = entry(world, world.doctor, record="own", served=False)
    receipt = chain.ok(world.patient, "audit.record", record_payload((refused,)))
    assert attributes(receipt.events[0])["custodian"] == world.patient.id.hex()


@pytest.mark.parametrize(
    ("ago_ms", "accepted"),
    [
        (-2_000, False),
        (-1_000, True),
        (MAX_ACCESS_AGE_MS - 1_000, True),
        (MAX_ACCESS_AGE_MS - 999, False),
    ],
)
def test_access_times_are_recent_and_not_in_the_future(
    world: World, ago_ms: int, accepted: bool
) -> None:
    # the batch runs one block (1 s) after the last: ago -1000 ms is its own block time
    payload = record_payload((entry(world, world.patient, ago_ms=ago_ms),))
    receipt = world.chain.receipt(world.hospital, "audit.record", payload)
    assert receipt.code is (ResultCode.OK if accepted else ResultCode.INVALID_PAYLOAD)


def test_a_served_access_names_a_basis_that_fits_its_reader(world: World) -> None:
    chain = world.chain
    to_doctor = grant(world, world.doctor)
    to_hospital = grant(world, world.hospital)
    opened = chain.ok(
        world.outsider, "consent.break_glass", break_glass_payload(world.patient.id, "E")
    )
    access_id = bytes.fromhex(attributes(opened.events[0])["access"])
    fitting = (
        entry(world, world.patient),
        entry(world, world.doctor, basis=AccessBasis.GRANT, basis_id=to_doctor),
        entry(world, world.colleague, basis=AccessBasis.GRANT, basis_id=to_hospital),
        entry(world, world.outsider, basis=AccessBasis.EMERGENCY, basis_id=access_id),
    )
    chain.ok(world.hospital, "audit.record", record_payload(fitting))
    for misfit in (
        entry(world, world.doctor),  # "owner" but not the owner
        entry(world, world.colleague, basis=AccessBasis.GRANT, basis_id=to_doctor),
        entry(world, world.outsider, basis=AccessBasis.GRANT, basis_id=to_hospital),
        entry(world, world.doctor, basis=AccessBasis.EMERGENCY, basis_id=access_id),
        entry(world, world.doctor, basis=AccessBasis.GRANT, basis_id=bytes(32)),
        entry(world, world.patient, basis=AccessBasis.OWNER, basis_id=to_doctor),
        entry(world, world.doctor, basis=AccessBasis.GRANT, basis_id=b""),
    ):
        chain.fails(
            world.hospital, "audit.record", record_payload((misfit,)), ResultCode.INVALID_PAYLOAD
        )


def test_batches_are_bounded_by_governance() -> None:
    world = make_world({"audit_batch_max": 4})
    chain = world.chain
    chain.ok(world.patient, "records.commit", commit(world, "a1"))
    chain.fails(world.hospital, "audit.record", record_payload(()), ResultCode.INVALID_PAYLOAD)
    five = tuple(entry(world, world.patient, ago_ms=i) for i in range(5))
    chain.fails(world.hospital, "audit.record", record_payload(five), ResultCode.LIMIT_EXCEEDED)
    receipt = chain.ok(world.hospital, "audit.record", record_payload(five[:4]))
    assert attributes(receipt.events[0])["count"] == "4"


def test_a_batch_touches_at_most_sixteen_patients(world: World) -> None:
    chain = world.chain
    patients = [
        chain.register(world.hospital, f"patient-{i}", HealthRole.PATIENT)
        for i in range(MAX_PATIENTS_PER_BATCH + 1)
    ]
    txs = [chain.tx(p, "records.commit", commit(world, f"rec-{p.name}", owner=p)) for p in patients]
    assert all(r.code is ResultCode.OK for r in chain.run(*txs).receipts)
    entries = tuple(entry(world, p, record=f"rec-{p.name}") for p in patients)
    receipt = chain.fails(
        world.hospital, "audit.record", record_payload(entries), ResultCode.LIMIT_EXCEEDED
    )
    assert str(MAX_PATIENTS_PER_BATCH) in receipt.log
    receipt = chain.ok(world.hospital, "audit.record", record_payload(entries[:-1]))
    assert len(receipt.events) == MAX_PATIENTS_PER_BATCH
    assert [attributes(e)["patient"] for e in receipt.events] == [p.id.hex() for p in patients[:-1]]


def test_query_paths_and_rendering(world: World) -> None:
    chain = world.chain
    module = AuditModule()
    receipt = chain.ok(
        world.hospital, "audit.record", record_payload((entry(world, world.patient),))
    )
    [stored] = list_audit(StateScan(chain), world.patient.id)
    patient_hex = world.patient.id.hex()
    key = module.query_key(f"p/{patient_hex}/{stored.accessed_ms}/{stored.id.hex()}")
    assert key == entry_key(world.patient.id, stored.accessed_ms, stored.id)
    assert stored.id == entry_id(receipt.tx_hash, 0)
    value = chain.get(key)
    assert value is not None
    rendered = module.render(key, value)
    json.dumps(rendered)
    assert rendered == {
        "id": stored.id.hex(),
        "patient": patient_hex,
        "record": record_id("a1").hex(),
        "reader": patient_hex,
        "accessed_ms": stored.accessed_ms,
        "basis": "owner",
        "basis_id": None,
        "served": True,
        "custodian": world.hospital.id.hex(),
        "recorded_ms": chain.time_ms,
    }
    assert module.query_key(f"p/{patient_hex}") == b"audit/p/" + world.patient.id
    for bad in ("p/xyz", f"p/{patient_hex}/-1", "q", f"p/{patient_hex}/1/00"):
        with pytest.raises(ValueError):
            module.query_key(bad)
