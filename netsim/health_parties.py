"""Who takes part in the health story: institutions, practitioners, patients, devices.

Every party has an Ed25519 signing key and an X25519 key derived from its name (the same name
gives the same keys in every run) and is a client of its own (a :class:`~netsim.senders.Sender`:
its key, its home node, its queue). :func:`build_parties` makes the whole cast: per
institution (hospitals and clinics in turn) its practitioners (specialties in turn), its
patients (each treated by a practitioner of its institution, in a time zone of
``TZ_OFFSETS_MINUTES`` in turn) and each patient's devices (the first a CGM, the others
glucose meters). The mutable fields say what the clients know of the chain so far.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from nacl.public import PrivateKey

from crypto_core.signatures import Ed25519KeyPair, sha256
from netsim.senders import Sender
from node.testing.factories import key_pair

TZ_OFFSETS_MINUTES: Final = (0, 60, -300, 330, 600, -480)
"""Patients' time zones, in turn."""
CGM_CODE: Final = "http://loinc.org|99504-3"
METER_CODE: Final = "http://loinc.org|41653-7"


@dataclass(frozen=True, slots=True)
class Party:
    """Someone on the chain: an Ed25519 signing key and an X25519 key (derived from the name:
    the same name gives the same keys in every run)."""

    name: str
    signer: Ed25519KeyPair
    encryption_private: bytes

    @property
    def id(self) -> bytes:
        """The identity id (the signing key it registers with)."""
        return self.signer.public_key

    @property
    def encryption_key(self) -> bytes:
        """The X25519 public key."""
        return bytes(PrivateKey(self.encryption_private).public_key)


def party(name: str) -> Party:
    """The party ``name``."""
    return Party(
        name, key_pair(f"netsim-health/{name}"), sha256(f"netsim-health/x25519/{name}".encode())
    )


@dataclass(eq=False, slots=True)
class Institution:
    """A genesis institution: a governance member, registrar of practitioners and patients."""

    index: int
    party: Party
    kind: str
    sender: Sender
    practitioners: list[Practitioner] = field(default_factory=list)
    patients: list[Patient] = field(default_factory=list)


@dataclass(eq=False, slots=True)
class Practitioner:
    """A practitioner of ``institution`` with a specialty."""

    party: Party
    institution: Institution
    specialty: str
    sender: Sender
    registered: bool = False


@dataclass(eq=False, slots=True)
class Device:
    """A device of ``patient`` (its kind and the code of its readings)."""

    party: Party
    patient: Patient
    kind: str
    code: str
    sender: Sender
    paired: bool = False


@dataclass(eq=False, slots=True)
class Patient:
    """A patient of ``institution`` treated by ``practitioner``, and what it knows of its
    state on chain (``grant``: its active treatment grant to the practitioner)."""

    party: Party
    institution: Institution
    practitioner: Practitioner
    tz_offset_minutes: int
    sender: Sender
    devices: list[Device] = field(default_factory=list)
    registered: bool = False
    grant: bytes = b""
    consent_busy: bool = False
    plan_version: int = 0
    plan_pending: bool = False
    referral: bool = False


def build_parties(
    institutions: int, practitioners: int, patients: int, devices: int
) -> list[Institution]:
    """Every party of the story, institution by institution (homes assigned at start)."""
    built: list[Institution] = []
    for i in range(institutions):
        kind = "hospital" if i % 2 == 0 else "clinic"
        inst_party = party(f"institution-{i}")
        inst = Institution(i, inst_party, kind, Sender(inst_party.signer))
        for j in range(practitioners):
            specialty = ("endocrinology", "general_practice", "diabetology")[j % 3]
            p = party(f"practitioner-{i}-{j}")
            inst.practitioners.append(Practitioner(p, inst, specialty, Sender(p.signer)))
        for k in range(patients):
            p = party(f"patient-{i}-{k}")
            treating = inst.practitioners[k % practitioners]
            tz = TZ_OFFSETS_MINUTES[(i + k) % len(TZ_OFFSETS_MINUTES)]
            patient = Patient(p, inst, treating, tz, Sender(p.signer))
            for d in range(devices):
                dp = party(f"device-{i}-{k}-{d}")
                kind_code = ("cgm", CGM_CODE) if d == 0 else ("glucose_meter", METER_CODE)
                patient.devices.append(Device(dp, patient, *kind_code, Sender(dp.signer)))
            inst.patients.append(patient)
        built.append(inst)
    return built
