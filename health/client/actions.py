"""Every health transaction as a method: payloads from each contract's client helpers, sent
and waited for by ``TxSender.transact`` (``TransactionRejected``, ``TransactionFailed``,
``ReceiptTimeout``).

The methods that create an object return its id, read from the receipt's event (a grant,
an emergency access, a referral, a proposal); the others return the receipt. Record
commitments and erasures, key rotation and grants with re-wrapped keys are the record flows
of ``HealthClient`` (``health.client.client``).
"""

from __future__ import annotations

from collections.abc import Sequence

from health.client.errors import ClientError
from health.client.transactions import TxSender, event_attribute
from health.contracts import audit, care, consent, governance, identity, referral
from health.contracts.common import HealthRole, Purpose
from health.contracts.identity import Admission
from node.ports import Signer
from node.types import TxReceipt


class ContractActions:
    """The transactions of every contract, sent by ``self.tx`` for ``self.identity_id``."""

    tx: TxSender

    @property
    def identity_id(self) -> bytes:
        """The sender's identity id."""
        raise NotImplementedError

    @property
    def chain_id(self) -> str:
        """The chain the transactions are for."""
        return self.tx.chain_id

    def _id_from(self, receipt: TxReceipt, kind: str, name: str) -> bytes:
        value = event_attribute(receipt, kind, name)
        if value is None:
            raise ClientError(f"the receipt has no {kind} event with {name}")
        return bytes.fromhex(value)

    # -- identity ---------------------------------------------------------------------------

    def register(
        self,
        signer: Signer,
        encryption_private_key: bytes,
        *,
        role: HealthRole,
        kind: str = "",
        label: str = "",
    ) -> bytes:
        """Register (an institution: a practitioner or a patient) or pair (a patient: a
        device) the identity of these keys (``Keystore.admission_keys()``); its id."""
        payload = identity.register_payload(
            signer,
            encryption_private_key,
            chain_id=self.chain_id,
            registrar=self.identity_id,
            role=role,
            kind=kind,
            label=label,
        )
        self.tx.transact("identity.register", payload)
        return signer.public_key

    def announce_node(self, peer_id: str) -> TxReceipt:
        """Name the libp2p peer of the node that keeps our records (``identity/n/<id>``)."""
        return self.tx.transact("identity.announce_node", identity.announce_node_payload(peer_id))

    def deactivate(self, identity_id: bytes) -> TxReceipt:
        """Deactivate ourselves or a child (a practitioner, a patient, a paired device)."""
        return self.tx.transact("identity.deactivate", identity.deactivate_payload(identity_id))

    # -- consent ----------------------------------------------------------------------------

    def grant_only(
        self,
        grantee: bytes,
        *,
        expires_ms: int,
        purpose: Purpose = Purpose.TREATMENT,
        resource_types: Sequence[str] = (),
        codes: Sequence[str] = (),
        data_from_ms: int = consent.OPEN_WINDOW,
        data_to_ms: int = consent.OPEN_WINDOW,
        referral: bytes = b"",
    ) -> bytes:
        """``consent.grant`` alone (no keys re-wrapped: see ``HealthClient.grant``); the
        grant's id."""
        payload = consent.grant_payload(
            grantee,
            expires_ms=expires_ms,
            purpose=purpose,
            resource_types=resource_types,
            codes=codes,
            data_from_ms=data_from_ms,
            data_to_ms=data_to_ms,
            referral=referral,
        )
        receipt = self.tx.transact("consent.grant", payload)
        return self._id_from(receipt, "consent.granted", "grant")

    def revoke(self, grant_id: bytes) -> TxReceipt:
        """End our grant ``grant_id`` (custodians refuse its reads from the next block)."""
        return self.tx.transact(
            "consent.revoke", consent.revoke_payload(self.identity_id, grant_id)
        )

    def break_glass(self, patient: bytes, reason_code: str) -> bytes:
        """Open emergency access to ``patient``'s data (a practitioner); the access id."""
        receipt = self.tx.transact(
            "consent.break_glass", consent.break_glass_payload(patient, reason_code)
        )
        return self._id_from(receipt, "consent.emergency_opened", "access")

    # -- audit ------------------------------------------------------------------------------

    def record_audit(self, entries: Sequence[audit.AccessEntry]) -> TxReceipt:
        """``audit.record``: a custodian's batch of access entries."""
        return self.tx.transact("audit.record", audit.record_payload(tuple(entries)))

    # -- governance -------------------------------------------------------------------------

    def _propose(self, payload: bytes) -> int:
        receipt = self.tx.transact("governance.propose", payload)
        value = event_attribute(receipt, "governance.proposed", "proposal")
        if value is None:
            raise ClientError("the receipt has no governance.proposed event")
        return int(value)

    def propose_admit_institution(
        self, admission: Admission, *, validator_key: bytes, power: int, weight: int, reason: str
    ) -> int:
        """Propose admitting an institution (``identity.admission`` builds ``admission``
        with the newcomer's keys); the proposal number."""
        return self._propose(
            governance.admit_institution_payload(
                admission, validator_key=validator_key, power=power, weight=weight, reason=reason
            )
        )

    def propose_admit_auditor(self, admission: Admission, reason: str = "") -> int:
        """Propose admitting an auditor; the proposal number."""
        return self._propose(governance.admit_auditor_payload(admission, reason))

    def propose_suspend(self, institution: bytes, reason: str = "") -> int:
        """Propose suspending a member; the proposal number."""
        return self._propose(governance.suspend_payload(institution, reason))

    def propose_reinstate(self, institution: bytes, reason: str = "") -> int:
        """Propose reinstating a suspended member; the proposal number."""
        return self._propose(governance.reinstate_payload(institution, reason))

    def propose_remove(self, institution: bytes, reason: str = "") -> int:
        """Propose removing a member; the proposal number."""
        return self._propose(governance.remove_payload(institution, reason))

    def propose_set_power(self, institution: bytes, power: int, reason: str = "") -> int:
        """Propose a member's validator power; the proposal number."""
        return self._propose(governance.set_power_payload(institution, power, reason))

    def propose_set_param(self, name: str, value: int, reason: str = "") -> int:
        """Propose a governance parameter's value; the proposal number."""
        return self._propose(governance.set_param_payload(name, value, reason))

    def propose_penalize(self, validator_key: bytes, evidence_height: int, reason: str = "") -> int:
        """Propose penalizing a validator's committed equivocation; the proposal number."""
        return self._propose(governance.penalize_payload(validator_key, evidence_height, reason))

    def vote(self, proposal: int, choice: governance.Choice) -> TxReceipt:
        """Vote on an open proposal."""
        return self.tx.transact("governance.vote", governance.vote_payload(proposal, choice))

    # -- care -------------------------------------------------------------------------------

    def set_plan(
        self,
        patient: bytes,
        *,
        base_version: int,
        plan_record: bytes,
        plan_sha256: bytes,
        tz_offset_minutes: int,
        items: Sequence[care.ScheduleItem],
    ) -> TxReceipt:
        """Set or change ``patient``'s care plan schedule (a practitioner with access)."""
        payload = care.set_plan_payload(
            patient,
            base_version=base_version,
            plan_record=plan_record,
            plan_sha256=plan_sha256,
            tz_offset_minutes=tz_offset_minutes,
            items=items,
        )
        return self.tx.transact("care.set_plan", payload)

    def ack(self, item: int, due_ms: int) -> TxReceipt:
        """Close the reminder of ``item`` due at ``due_ms`` (the patient, or its device)."""
        return self.tx.transact("care.ack", care.ack_payload(item, due_ms))

    def set_policy(self, share_alerts: bool) -> TxReceipt:
        """Whether our alerts are recorded on chain for the plan's practitioner."""
        return self.tx.transact("care.set_policy", care.set_policy_payload(share_alerts))

    def alert(self, level: care.AlertLevel, record: bytes) -> TxReceipt:
        """Record that a reading (``record``) raised an alert of ``level``."""
        return self.tx.transact("care.alert", care.alert_payload(level, record))

    # -- referral ---------------------------------------------------------------------------

    def request_referral(
        self, patient: bytes, to: bytes, *, specialty: str, reason_code: str, expires_ms: int
    ) -> bytes:
        """Refer ``patient`` to the practitioner or institution ``to``; the referral id."""
        payload = referral.request_payload(
            patient, to, specialty=specialty, reason_code=reason_code, expires_ms=expires_ms
        )
        receipt = self.tx.transact("referral.request", payload)
        return self._id_from(receipt, "referral.requested", "referral")

    def accept_referral(self, referral_id: bytes) -> TxReceipt:
        """Accept a referral (its patient's grant naming it must be in force)."""
        return self.tx.transact("referral.accept", referral.accept_payload(referral_id))

    def decline_referral(self, referral_id: bytes, reason_code: str = "") -> TxReceipt:
        """Decline a referral."""
        return self.tx.transact(
            "referral.decline", referral.decline_payload(referral_id, reason_code)
        )

    def answer_referral(self, referral_id: bytes, answer_record: bytes) -> TxReceipt:
        """Answer an accepted referral with a record we authored."""
        return self.tx.transact(
            "referral.answer", referral.answer_payload(referral_id, answer_record)
        )

    def close_referral(self, referral_id: bytes) -> TxReceipt:
        """Close a referral we made."""
        return self.tx.transact("referral.close", referral.close_payload(referral_id))
