"""The identity registry: roles, proofs of possession, rotation, deactivation, and its
part as the health chain's authenticator."""

from __future__ import annotations

from dataclasses import replace

import msgpack
import pytest

from health.contracts.common import HealthRole, get_identity, get_key_entry
from health.contracts.identity import (
    ADMISSION_CODEC,
    GOVERNANCE_REGISTRAR,
    IdentityModule,
    admission,
    announce_node_payload,
    deactivate_payload,
    node_of,
    parse_genesis_identities,
    register_payload,
    rotate_payload,
)
from node.app.errors import TxFailed
from node.app.module import JsonValue
from node.types import ResultCode
from tests.health.helpers import CHAIN, HealthChain, attributes, party


@pytest.fixture
def chain() -> HealthChain:
    return HealthChain()


def test_an_institution_registers_a_practitioner_and_a_patient_who_pairs_a_device(
    chain: HealthChain,
) -> None:
    hospital = chain.members[0]
    doctor = chain.register(hospital, "dr-a", HealthRole.PRACTITIONER, "endocrinology", "Dr A")
    patient = chain.register(hospital, "patient-a", HealthRole.PATIENT)
    meter = chain.register(patient, "meter-a", HealthRole.DEVICE, "glucose_meter")
    record = get_identity(chain.app, meter.id)
    assert record is not None and record.parent == patient.id and record.kind == "glucose_meter"
    assert record.encryption_key == bytes(meter.encryption.public_key)
    doctor_record = get_identity(chain.app, doctor.id)
    assert doctor_record is not None and doctor_record.parent == hospital.id
    # the new identities can send transactions: the chain authenticates them
    receipt = chain.ok(meter, "identity.deactivate", deactivate_payload(meter.id))
    assert receipt.events[0].name == "identity.deactivated"


def test_registration_rights_are_by_role(chain: HealthChain) -> None:
    hospital = chain.members[0]
    patient = chain.register(hospital, "patient-b", HealthRole.PATIENT)
    for registrar, role, kind, label in (
        (patient, HealthRole.PRACTITIONER, "cardiology", "Dr X"),
        (hospital, HealthRole.DEVICE, "cgm", ""),
        (hospital, HealthRole.INSTITUTION, "clinic", "Clinic"),
        (patient, HealthRole.PATIENT, "", ""),
    ):
        new = party(f"new-{role.name}-{registrar.name}")
        payload = register_payload(
            new.signer,
            new.encryption_private,
            chain_id=CHAIN,
            registrar=registrar.id,
            role=role,
            kind=kind,
            label=label,
        )
        chain.fails(registrar, "identity.register", payload, ResultCode.UNAUTHORIZED)


def test_proofs_of_possession_are_required_for_both_keys(chain: HealthChain) -> None:
    hospital = chain.members[0]
    new, other = party("p-new"), party("p-other")
    good = admission(
        new.signer,
        new.encryption_private,
        chain_id=CHAIN,
        role=HealthRole.PATIENT,
        registrar=hospital.id,
    )
    # somebody else's encryption key, with the proof made for ours: refused
    stolen = replace(good, encryption_key=bytes(other.encryption.public_key))
    chain.fails(
        hospital, "identity.register", ADMISSION_CODEC.encode(stolen), ResultCode.UNAUTHORIZED
    )
    forged = replace(good, signing_proof=bytes(64))
    chain.fails(
        hospital, "identity.register", ADMISSION_CODEC.encode(forged), ResultCode.UNAUTHORIZED
    )
    # a proof made for another registrar cannot be replayed by this one
    elsewhere = admission(
        new.signer,
        new.encryption_private,
        chain_id=CHAIN,
        role=HealthRole.PATIENT,
        registrar=chain.members[1].id,
    )
    chain.fails(
        hospital, "identity.register", ADMISSION_CODEC.encode(elsewhere), ResultCode.UNAUTHORIZED
    )
    chain.ok(hospital, "identity.register", ADMISSION_CODEC.encode(good))
    chain.fails(hospital, "identity.register", ADMISSION_CODEC.encode(good), ResultCode.CONFLICT)


def test_kinds_and_labels_are_checked(chain: HealthChain) -> None:
    hospital = chain.members[0]
    patient = chain.register(hospital, "patient-c", HealthRole.PATIENT)
    for registrar, role, kind, label in (
        (patient, HealthRole.DEVICE, "toaster", ""),
        (hospital, HealthRole.PATIENT, "", "Jane Doe"),  # patients are pseudonymous
        (hospital, HealthRole.PRACTITIONER, "endocrinology", ""),  # needs a label
        (hospital, HealthRole.PRACTITIONER, "Bad Specialty", "Dr Y"),
    ):
        new = party(f"k-{kind}-{label}")
        payload = register_payload(
            new.signer,
            new.encryption_private,
            chain_id=CHAIN,
            registrar=registrar.id,
            role=role,
            kind=kind,
            label=label,
        )
        chain.fails(registrar, "identity.register", payload, ResultCode.INVALID_PAYLOAD)


def test_rotation_retires_the_old_signing_key(chain: HealthChain) -> None:
    hospital = chain.members[0]
    patient = chain.register(hospital, "patient-r", HealthRole.PATIENT)
    successor = party("patient-r-2")
    payload = rotate_payload(
        successor.signer,
        successor.encryption_private,
        chain_id=CHAIN,
        identity=patient.id,
        new_epoch=1,
    )
    receipt = chain.ok(patient, "identity.rotate_keys", payload)
    assert [e.name for e in receipt.events] == ["identity.keys_rotated"]
    record = get_identity(chain.app, patient.id)
    assert record is not None and record.key_epoch == 1
    assert record.signing_key == successor.id
    assert record.encryption_key == bytes(successor.encryption.public_key)
    old = get_key_entry(chain.app, patient.id)
    assert old is not None and not old.active
    # the old key can no longer send; the new one can
    assert (
        chain.app.check_tx(
            chain.factory.make(
                patient.signer, "identity.deactivate", deactivate_payload(patient.id)
            )
        ).code
        is ResultCode.ACCOUNT_INACTIVE
    )
    rotated = replace(successor, name="patient-r")
    device = party("meter-r")
    pair = register_payload(
        device.signer,
        device.encryption_private,
        chain_id=CHAIN,
        registrar=patient.id,
        role=HealthRole.DEVICE,
        kind="cgm",
    )
    chain.ok(rotated, "identity.register", pair)
    # a stale epoch in the proof is refused
    stale = rotate_payload(
        party("x").signer,
        party("x").encryption_private,
        chain_id=CHAIN,
        identity=patient.id,
        new_epoch=1,
    )
    chain.fails(rotated, "identity.rotate_keys", stale, ResultCode.UNAUTHORIZED)


def test_a_deactivated_identity_cannot_act_and_nor_can_its_devices(chain: HealthChain) -> None:
    hospital = chain.members[0]
    patient = chain.register(hospital, "patient-d", HealthRole.PATIENT)
    meter = chain.register(patient, "meter-d", HealthRole.DEVICE, "cgm")
    stranger = chain.register(hospital, "patient-e", HealthRole.PATIENT)
    chain.fails(
        stranger, "identity.deactivate", deactivate_payload(meter.id), ResultCode.UNAUTHORIZED
    )
    chain.fails(
        patient, "identity.deactivate", deactivate_payload(hospital.id), ResultCode.UNAUTHORIZED
    )
    receipt = chain.ok(hospital, "identity.deactivate", deactivate_payload(patient.id))
    assert attributes(receipt.events[0])["identity"] == patient.id.hex()
    for who in (patient, meter):
        raw = chain.factory.make(who.signer, "identity.deactivate", deactivate_payload(who.id))
        assert chain.app.check_tx(raw).code is ResultCode.ACCOUNT_INACTIVE
    result = chain.run(chain.tx(meter, "identity.deactivate", deactivate_payload(meter.id)))
    assert result.receipts[0].code is ResultCode.ACCOUNT_INACTIVE


def test_only_governance_may_call_the_registry(chain: HealthChain) -> None:
    module = chain.app.module("identity")
    assert isinstance(module, IdentityModule)

    class _Ctx:
        caller = "care"

    with pytest.raises(TxFailed) as failure:
        module.on_call(_Ctx(), "set_active", b"")  # type: ignore[arg-type]
    assert failure.value.code is ResultCode.UNAUTHORIZED
    assert bytes(32) == GOVERNANCE_REGISTRAR


def test_genesis_identities_from_app_state() -> None:
    inst = party("genesis-inst")
    parsed = parse_genesis_identities(
        {
            "identities": [
                {
                    "role": "institution",
                    "kind": "clinic",
                    "label": "Clinic",
                    "signing_key": inst.id.hex(),
                    "encryption_key": bytes(inst.encryption.public_key).hex(),
                }
            ]
        }
    )
    assert parsed[0].role is HealthRole.INSTITUTION and parsed[0].signing_key == inst.id
    bad_states: list[JsonValue] = [[], {"identities": [1]}, {"identities": [{"role": "king"}]}]
    for bad in bad_states:
        with pytest.raises(ValueError):
            parse_genesis_identities(bad)
    with pytest.raises(ValueError, match="listed twice"):
        IdentityModule([parsed[0], parsed[0]])


def test_institutions_and_patients_announce_their_nodes(chain: HealthChain) -> None:
    hospital = chain.members[0]
    peer = "12D3KooWGzPm4bNvSgqLzp9zBqvT5HTT4CjL3Ho3XKrp7ANcyNXW"
    receipt = chain.ok(hospital, "identity.announce_node", announce_node_payload(peer))
    assert attributes(receipt.events[0])["peer_id"] == peer
    assert node_of(chain.app, hospital.id) == peer
    doctor = chain.register(hospital, "dr-n", HealthRole.PRACTITIONER, "cardiology", "Dr N")
    chain.fails(
        doctor, "identity.announce_node", announce_node_payload(peer), ResultCode.UNAUTHORIZED
    )
    forged = msgpack.packb(["not a peer id!"])  # the client helper refuses to build it
    chain.fails(hospital, "identity.announce_node", forged, ResultCode.INVALID_PAYLOAD)
