"""The health workload of ``bighealth bench network --workload health``: glucose readings.

The network is a health testnet (``HealthTestnet``: hospitals validating, the chain running
the health contracts and the records custody) whose genesis also lists, as trusted
identities, ``patients`` patients (each under a hospital, in turn) and one paired device
(a CGM) per sending account, ``DEVICES_PER_PATIENT`` to a patient. Each device sends
``records.commit`` transactions: the commitment of one encrypted glucose reading of its
patient (a fresh record id, a ciphertext hash and size, the patient's hospital as custodian,
the data time a minute before the transaction was signed), as a meter would after uploading
the ciphertext. The chain checks the device's pairing, the owner, the custodian and the
shape, and writes the record's commitment; no ciphertext travels (the chain never sees it).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Final

from crypto_core.signatures import SEED_SIZE, Ed25519KeyPair
from health.contracts.common import GLUCOSE_RESOURCE_TYPE
from health.contracts.records import commit_payload
from node.app.module import JsonValue
from node.chain.app_state import decode_app_state, encode_app_state
from node.chain.genesis import Genesis
from node.cli.health_net import HealthTestnet
from node.cli.testnet import TestnetSpec
from node.home.manifest import ManifestClient
from node.ports import Rng
from node.types import Validator

DEVICES_PER_PATIENT: Final = 8
CGM_CODE: Final = "http://loinc.org|99504-3"
READING_CIPHERTEXT_BYTES: Final = 320
DATA_AGE_MS: Final = 60_000
"""A reading's data time lies this far before its transaction was signed (never ahead of
the block time that checks it)."""
KIND: Final = "records.commit"


@dataclass(frozen=True, slots=True)
class Device:
    """A sending account of the health workload: a device, its patient and custodian."""

    seed: bytes
    patient: bytes
    custodian: bytes


@dataclass
class HealthBenchTestnet:
    """``HealthTestnet`` with ``devices`` devices and their patients in the genesis (see the
    module docstring); ``devices`` after ``genesis``: each sending account."""

    base: HealthTestnet
    device_count: int
    devices: list[Device] = field(default_factory=list)

    def genesis(self, spec: TestnetSpec, validators: tuple[Validator, ...]) -> Genesis:
        genesis = self.base.genesis(spec, validators)
        hospitals = [
            bytes.fromhex(str(item["signing_key"]))  # type: ignore[index]
            for item in _identities(genesis)
        ]
        extra = self._parties(hospitals)
        states = []
        for name, data in genesis.app_state:
            if name != "identity":
                states.append((name, data))
                continue
            document = decode_app_state(data)
            assert isinstance(document, dict) and isinstance(document["identities"], list)
            document["identities"] = [*document["identities"], *extra]
            states.append((name, encode_app_state(document)))
        return replace(genesis, app_state=tuple(states))

    def finish(self, output: Path, homes: list[tuple[str, str]]) -> tuple[ManifestClient, ...]:
        return self.base.finish(output, homes)

    def _parties(self, hospitals: list[bytes]) -> list[JsonValue]:
        rng = self.base.rng
        identities: list[JsonValue] = []
        patients = -(-self.device_count // DEVICES_PER_PATIENT)
        for p in range(patients):
            patient = Ed25519KeyPair.from_seed(rng.random_bytes(SEED_SIZE)).public_key
            hospital = hospitals[p % len(hospitals)]
            identities.append(_identity(("patient", "", ""), patient, hospital, rng))
            for _ in range(min(DEVICES_PER_PATIENT, self.device_count - len(self.devices))):
                seed = rng.random_bytes(SEED_SIZE)
                key = Ed25519KeyPair.from_seed(seed).public_key
                identities.append(_identity(("device", "cgm", ""), key, patient, rng))
                self.devices.append(Device(seed, patient, hospital))
        return identities


def _identities(genesis: Genesis) -> list[object]:
    document = genesis.app_state_of("identity")
    assert isinstance(document, dict) and isinstance(document["identities"], list)
    return list(document["identities"])


def _identity(
    what: tuple[str, str, str], key: bytes, parent: bytes, rng: Rng
) -> dict[str, JsonValue]:
    """A genesis identity: ``what`` is (role, kind, label); a random encryption key."""
    role, kind, label = what
    return {
        "role": role,
        "kind": kind,
        "label": label,
        "signing_key": key.hex(),
        "encryption_key": rng.random_bytes(32).hex(),
        "parent": parent.hex(),
    }


def reading_payload(device_key: bytes, nonce: int, patient: bytes, custodian: bytes) -> bytes:
    """The ``records.commit`` payload of reading ``nonce`` of the device ``device_key``."""
    record = hashlib.sha256(b"bench-reading" + device_key + nonce.to_bytes(8, "big")).digest()
    return commit_payload(
        record,
        patient,
        resource_type=GLUCOSE_RESOURCE_TYPE,
        code=CGM_CODE,
        ciphertext_sha256=hashlib.sha256(record).digest(),
        size_bytes=READING_CIPHERTEXT_BYTES,
        custodians=(custodian,),
        key_epoch=0,
        data_time_ms=int(time.time() * 1000) - DATA_AGE_MS,
    )
