"""A referral of the health story, step by step, each step sent when the previous committed.

A practitioner holding a treatment grant refers its patient to a practitioner of another
institution (``referral.request``, for a week); the patient consents with a treatment grant
naming the referral; the specialist accepts, commits its consultation note (a record of the
patient it authors under that grant) and answers the referral with it; the referring
practitioner closes it. A step that fails (a failed receipt, a refusal, a resend limit) ends
the referral where it is: counted as ``story/referral broken at <step>``; it may then expire
on chain. One referral per patient at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from health.contracts.common import DAY_MS, Purpose
from health.contracts.consent import grant_payload
from health.contracts.records import commit_payload
from health.contracts.referral import (
    accept_payload,
    answer_payload,
    close_payload,
    request_payload,
)
from netsim.senders import Intent, Sender, SenderPool
from node.types import TxReceipt

if TYPE_CHECKING:
    from netsim.health_parties import Patient, Practitioner
    from netsim.health_workload import HealthWorkload

REFERRAL_MS: Final = 7 * DAY_MS
"""How long a referral, and the patient's grant for it, last."""
REASON_CODE: Final = "http://snomed.info/sct|44054006"
"""Diabetes mellitus type 2."""
NOTE_TYPE: Final = "Composition"
NOTE_CODE: Final = "http://loinc.org|11488-4"
"""Consult note."""


class ReferralFlow:
    """Starts referrals and carries each through its steps (see the module docstring)."""

    def __init__(self, workload: HealthWorkload, pool: SenderPool) -> None:
        self._w = workload
        self._pool = pool

    def start(self) -> bool:
        """Refer a patient drawn among those with a grant and no referral open, to a
        practitioner of another institution; False if there is none to refer."""
        w = self._w
        candidates = [
            p
            for p in w.patients
            if p.grant and not p.consent_busy and not p.referral and p.practitioner.registered
        ]
        if not candidates:
            return False
        rng = w.ctx.rng
        patient = candidates[rng.randrange(len(candidates))]
        targets = [
            practitioner
            for inst in w.institutions
            if inst is not patient.institution
            for practitioner in inst.practitioners
            if practitioner.registered
        ]
        if not targets:
            return False
        target = targets[rng.randrange(len(targets))]
        patient.referral = True
        w.counts["story/referral"] += 1
        self._request(patient, target)
        return True

    def _step(
        self,
        patient: Patient,
        sender: Sender,
        kind: str,
        build: Callable[[], bytes],
        then: Callable[[TxReceipt], None],
    ) -> None:
        """Send one step; ``then`` follows an OK receipt, anything else ends the referral."""

        def done(receipt: TxReceipt) -> None:
            if receipt.ok:
                then(receipt)
            else:
                self._broken(patient, kind)

        self._pool.send(sender, Intent(kind, build, done, lambda _: self._broken(patient, kind)))

    def _broken(self, patient: Patient, step: str) -> None:
        patient.referral = False
        self._w.counts[f"story/referral broken at {step}"] += 1

    def _request(self, patient: Patient, target: Practitioner) -> None:
        w = self._w

        def build() -> bytes:
            return request_payload(
                patient.party.id,
                target.party.id,
                specialty=target.specialty,
                reason_code=REASON_CODE,
                expires_ms=w.chain_ms() + REFERRAL_MS,
            )

        def requested(receipt: TxReceipt) -> None:
            referral = next(
                (e.get("referral") for e in receipt.events if e.name == "referral.requested"),
                None,
            )
            if referral is None:
                self._broken(patient, "referral.request")
                return
            self._consent(patient, target, bytes.fromhex(referral))

        self._step(patient, patient.practitioner.sender, "referral.request", build, requested)

    def _consent(self, patient: Patient, target: Practitioner, referral: bytes) -> None:
        w = self._w

        def build() -> bytes:
            return grant_payload(
                target.party.id,
                expires_ms=w.chain_ms() + REFERRAL_MS,
                purpose=Purpose.TREATMENT,
                referral=referral,
            )

        def granted(_: TxReceipt) -> None:
            self._step(
                patient,
                target.sender,
                "referral.accept",
                lambda: accept_payload(referral),
                lambda _: self._note(patient, target, referral),
            )

        self._step(patient, patient.sender, "consent.grant", build, granted)

    def _note(self, patient: Patient, target: Practitioner, referral: bytes) -> None:
        """The specialist's consultation note (a commitment, like every record)."""
        w = self._w
        rng = w.ctx.rng
        record = rng.randbytes(32)

        def build() -> bytes:
            return commit_payload(
                record,
                patient.party.id,
                resource_type=NOTE_TYPE,
                code=NOTE_CODE,
                ciphertext_sha256=rng.randbytes(32),
                size_bytes=rng.randrange(1_000, 8_000),
                custodians=(target.institution.party.id,),
                key_epoch=0,
                data_time_ms=w.chain_ms(),
            )

        def answer(_: TxReceipt) -> None:
            self._step(
                patient,
                target.sender,
                "referral.answer",
                lambda: answer_payload(referral, record),
                lambda _: self._close(patient, referral),
            )

        self._step(patient, target.sender, "records.commit", build, answer)

    def _close(self, patient: Patient, referral: bytes) -> None:
        def closed(_: TxReceipt) -> None:
            patient.referral = False
            self._w.counts["story/referral closed"] += 1

        referrer = patient.practitioner.sender
        self._step(patient, referrer, "referral.close", lambda: close_payload(referral), closed)
