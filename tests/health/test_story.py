"""The whole diabetes-care story through a cluster of four NodeCores in virtual time.

Four hospitals run the validators and are the DAO's members. A remote clinic is admitted by
vote; practitioners are registered; a patient pairs a glucose meter whose readings are
committed; the patient consents to the clinic's GP, who refers the patient to a hospital's
endocrinologist; the patient consents to the referral; the specialist accepts and sets a
care plan; reminders come due in block time, one is acknowledged, a missed dose escalates;
another hospital's practitioner opens emergency access; the patient revokes the GP's grant
and erases a record. Every node agrees on every block and state root throughout.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from crypto_core.signatures import sha256
from health.contracts.care import ItemKind, ScheduleItem, ack_payload, set_plan_payload
from health.contracts.common import GLUCOSE_RESOURCE_TYPE, HealthRole
from health.contracts.consent import break_glass_payload, grant_payload, revoke_payload
from health.contracts.governance import (
    Choice,
    admit_institution_payload,
    vote_payload,
)
from health.contracts.identity import admission, register_payload
from health.contracts.records import commit_payload, erase_payload, get_record
from health.contracts.referral import accept_payload, request_payload
from health.contracts.registry import health_registry
from node.app.module import JsonValue
from node.core import NodeCore
from node.testing import TxFactory, key_pair
from node.testing.cluster import Cluster
from node.types import Event, ResultCode, TxReceipt
from tests.health.helpers import Party, attributes, party

CHAIN = "cluster-chain"
MINUTE_MS = 60_000
METER_CODE = "http://loinc.org|41653-7"


def _app_state(members: list[Party]) -> dict[str, JsonValue]:
    identities: list[JsonValue] = [
        {
            "role": "institution",
            "kind": "hospital",
            "label": f"Hospital {i}",
            "signing_key": member.id.hex(),
            "encryption_key": bytes(member.encryption.public_key).hex(),
        }
        for i, member in enumerate(members)
    ]
    governance_members: list[JsonValue] = [
        {
            "institution": member.id.hex(),
            "validator_key": key_pair(f"validator-{i}").public_key.hex(),
            "power": 10,
            "weight": 1,
        }
        for i, member in enumerate(members)
    ]
    return {
        "identity": {"identities": identities},
        "governance": {"members": governance_members, "params": {"reminder_grace_ms": MINUTE_MS}},
    }


@dataclass
class Story:
    """Sends transactions to the cluster's first validator and reads their receipts."""

    members: list[Party] = field(default_factory=lambda: [party(f"hospital-{i}") for i in range(4)])

    def __post_init__(self) -> None:
        self.cluster = Cluster(
            validators=4,
            seed="health-story",
            app_factory=health_registry().build,
            app_state=_app_state(self.members),
            genesis_accounts=(),
        )
        self.factory = TxFactory(CHAIN)
        self.seen_height = 0
        self.backlog: list[Event] = []
        """Events seen by ``run_until`` and not yet asked for."""

    @property
    def core(self) -> NodeCore:
        """The first validator's core."""
        return self.cluster.core("v0")

    @property
    def time_ms(self) -> int:
        """The time of the last committed block."""
        return self.core.status().last_block_time_ms

    def send(self, sender: Party, kind: str, payload: bytes) -> TxReceipt:
        """Submit one transaction and run until it is committed; its receipt."""
        raw = self.factory.encoded(sender.signer, kind, payload)
        result = self.cluster.submit("v0", raw)
        assert result is not None and result.accepted, f"{kind}: {result}"
        tx_hash = sha256(raw)
        self.cluster.run_while(
            lambda: self.core.tx_location(tx_hash) is None, max_virtual_ms=30_000
        )
        location = self.core.tx_location(tx_hash)
        assert location is not None
        results = self.core.block_results(location.height)
        assert results is not None
        return results.receipts[location.index]

    def ok(self, sender: Party, kind: str, payload: bytes) -> TxReceipt:
        receipt = self.send(sender, kind, payload)
        assert receipt.code is ResultCode.OK, f"{kind}: {receipt.code.name} {receipt.log}"
        return receipt

    def refused(self, sender: Party, kind: str, payload: bytes) -> str:
        """Submit a transaction the mempool must refuse; its reason."""
        raw = self.factory.encoded(sender.signer, kind, payload, nonce=self._nonce(sender))
        result = self.cluster.submit("v0", raw)
        assert result is not None and not result.accepted, kind
        return result.message

    def _nonce(self, sender: Party) -> int:
        return self.core.next_nonce(sender.signer.public_key)

    def register(
        self, registrar: Party, name: str, role: HealthRole, kind: str = "", label: str = ""
    ) -> Party:
        new = party(name)
        payload = register_payload(
            new.signer,
            new.encryption_private,
            chain_id=CHAIN,
            registrar=registrar.id,
            role=role,
            kind=kind,
            label=label,
        )
        self.ok(registrar, "identity.register", payload)
        return new

    def events(self, prefix: str) -> list[Event]:
        """Events of heights committed since the last call, whose name starts with prefix."""
        found: list[Event] = []
        height = self.core.height
        for h in range(self.seen_height + 1, height + 1):
            results = self.core.block_results(h)
            assert results is not None
            found += results.block_events
            found += [e for r in results.receipts if r.code is ResultCode.OK for e in r.events]
        self.seen_height = height
        return [event for event in found if event.name.startswith(prefix)]

    def run_until(self, name: str, *, count: int, max_ms: int) -> list[Event]:
        """Run in virtual time until ``count`` events ``name`` were seen (since the last
        ``events`` call); those events."""
        waited_ms = 0
        while len([e for e in self.backlog if e.name == name]) < count:
            assert waited_ms <= max_ms, f"fewer than {count} {name} after {max_ms} ms"
            self.cluster.run_for(1_000)
            waited_ms += 1_000
            self.backlog += self.events("")
        seen = [e for e in self.backlog if e.name == name]
        self.backlog = [e for e in self.backlog if e.name != name]
        return seen

    def agree(self) -> None:
        """Every node committed the same blocks and state roots."""
        assert self.cluster.violations == []
        heights = min(self.cluster.height(name) for name in self.cluster.names)
        ids = {tuple(self.cluster.block_ids(name)[:heights]) for name in self.cluster.names}
        roots = {tuple(self.cluster.app_roots(name)[:heights]) for name in self.cluster.names}
        assert len(ids) == 1 and len(roots) == 1


def test_the_diabetes_care_story() -> None:
    story = Story()
    h0, h1, h2, _ = story.members

    # -- a remote clinic is admitted by the DAO's vote ----------------------------------------
    clinic = party("remote-clinic")
    admitted = admission(
        clinic.signer,
        clinic.encryption_private,
        chain_id=CHAIN,
        role=HealthRole.INSTITUTION,
        kind="clinic",
        label="Remote Clinic",
    )
    proposal = admit_institution_payload(
        admitted,
        validator_key=key_pair("clinic-node").public_key,
        power=0,
        weight=1,
        reason="serve the valley",
    )
    story.ok(h0, "governance.propose", proposal)
    # not yet a member: the clinic has no key on chain, the mempool refuses it
    assert "no identity" in story.refused(clinic, "governance.vote", vote_payload(1, Choice.YES))
    story.ok(h0, "governance.vote", vote_payload(1, Choice.YES))
    story.ok(h1, "governance.vote", vote_payload(1, Choice.YES))
    passing = story.ok(h2, "governance.vote", vote_payload(1, Choice.YES))
    assert "governance.passed" in [e.name for e in passing.events]
    assert "identity.registered" in [e.name for e in passing.events]

    # -- practitioners, a patient and her meter -------------------------------------------------
    gp = story.register(clinic, "dr-gp", HealthRole.PRACTITIONER, "general_practice", "Dr GP")
    endo = story.register(h1, "dr-endo", HealthRole.PRACTITIONER, "endocrinology", "Dr Endo")
    er_doc = story.register(h2, "dr-er", HealthRole.PRACTITIONER, "emergency_medicine", "Dr ER")
    patient = story.register(clinic, "patient-amina", HealthRole.PATIENT)
    meter = story.register(patient, "meter-amina", HealthRole.DEVICE, "glucose_meter")
    stranger_meter = story.register(
        story.register(clinic, "patient-other", HealthRole.PATIENT),
        "meter-other",
        HealthRole.DEVICE,
        "cgm",
    )

    def reading(device: Party, n: int) -> bytes:
        return commit_payload(
            sha256(b"reading-%d" % n),
            patient.id,
            resource_type=GLUCOSE_RESOURCE_TYPE,
            code=METER_CODE,
            ciphertext_sha256=sha256(b"ciphertext-%d" % n),
            size_bytes=420,
            custodians=(patient.id, clinic.id),
            key_epoch=0,
            data_time_ms=story.time_ms,
        )

    story.ok(meter, "records.commit", reading(meter, 1))
    unpaired = story.refused(stranger_meter, "records.commit", reading(stranger_meter, 2))
    assert "not paired" in unpaired

    # -- consent to the GP, a referral to the endocrinologist ---------------------------------
    grant = story.ok(
        patient, "consent.grant", grant_payload(gp.id, expires_ms=story.time_ms + 3_600_000)
    )
    gp_grant = bytes.fromhex(attributes(grant.events[0])["grant"])
    referral = story.ok(
        gp,
        "referral.request",
        request_payload(
            patient.id,
            endo.id,
            specialty="endocrinology",
            reason_code="E11.65",
            expires_ms=story.time_ms + 3_600_000,
        ),
    )
    referral_id = bytes.fromhex(attributes(referral.events[0])["referral"])
    early = story.refused(endo, "referral.accept", accept_payload(referral_id))
    assert "unauthorized" in early  # no consent for the referral yet
    story.ok(
        patient,
        "consent.grant",
        grant_payload(endo.id, expires_ms=story.time_ms + 3_600_000, referral=referral_id),
    )
    story.ok(endo, "referral.accept", accept_payload(referral_id))

    # -- the specialist sets a plan; reminders come due in block time -------------------------
    now_minute = (story.time_ms // MINUTE_MS) % 1440
    dose_at, measure_at = (now_minute + 2) % 1440, (now_minute + 3) % 1440
    no_grant = story.refused(
        er_doc,
        "care.set_plan",
        set_plan_payload(
            patient.id,
            base_version=0,
            plan_record=sha256(b"plan"),
            plan_sha256=sha256(b"plan-ct"),
            tz_offset_minutes=0,
            items=[ScheduleItem(1, ItemKind.DOSE, (dose_at,))],
        ),
    )
    assert "unauthorized" in no_grant
    story.ok(
        endo,
        "care.set_plan",
        set_plan_payload(
            patient.id,
            base_version=0,
            plan_record=sha256(b"plan"),
            plan_sha256=sha256(b"plan-ct"),
            tz_offset_minutes=0,
            items=[
                ScheduleItem(1, ItemKind.DOSE, (dose_at,)),
                ScheduleItem(2, ItemKind.DOSE, (dose_at,)),
                ScheduleItem(3, ItemKind.MEASUREMENT, (measure_at,)),
            ],
        ),
    )
    story.events("")
    doses = story.run_until("care.dose_due", count=2, max_ms=3 * MINUTE_MS)
    assert {attributes(e)["item"] for e in doses} == {"1", "2"}
    assert all(attributes(e)["patient"] == patient.id.hex() for e in doses)
    dose_due_ms = int(attributes(doses[0])["due_ms"])
    story.ok(patient, "care.ack", ack_payload(1, dose_due_ms))  # item 1 taken; item 2 not
    story.run_until("care.measurement_due", count=1, max_ms=2 * MINUTE_MS)
    closing = story.ok(meter, "records.commit", reading(meter, 3))
    closed = [attributes(e) for e in closing.events if e.name == "care.acknowledged"]
    assert [c["item"] for c in closed] == ["3"]  # the reading closed the measurement
    escalated = story.run_until("care.escalated", count=1, max_ms=3 * MINUTE_MS)
    assert [attributes(e)["item"] for e in escalated] == ["2"]
    assert attributes(escalated[0])["practitioner"] == endo.id.hex()

    # -- emergency access, revocation, erasure -------------------------------------------------
    opened = story.ok(er_doc, "consent.break_glass", break_glass_payload(patient.id, "unconscious"))
    assert attributes(opened.events[0])["patient"] == patient.id.hex()
    story.ok(patient, "consent.revoke", revoke_payload(patient.id, gp_grant))
    after = story.refused(
        gp,
        "referral.request",
        request_payload(
            patient.id,
            endo.id,
            specialty="endocrinology",
            reason_code="E11.65",
            expires_ms=story.time_ms + 3_600_000,
        ),
    )
    assert "unauthorized" in after  # the GP's access is gone
    erased = story.ok(patient, "records.erase", erase_payload((sha256(b"reading-1"),)))
    assert erased.events[0].name == "records.erased"
    record = get_record(_CommittedState(story), sha256(b"reading-1"))
    assert record is not None and record.erased

    story.agree()


@dataclass
class _CommittedState:
    """The first validator's committed state, as a contract's key reader."""

    story: Story

    def get(self, key: bytes) -> bytes | None:
        return self.story.core.get_state(key)
