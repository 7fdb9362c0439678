"""Access attacks against the health application, each tried once and judged:
``run_access_attacks() -> AttackReport`` (used by ``tests/health/test_access_attacks.py``,
and callable by a campaign report).

Two places refuse, and each records its refusals its own way (docs/RECORDS.md,
docs/HEALTH.md):

- **the custodian** (``/bighealth/records/1``, through its protocol handler ``handle``, as a
  peer's bytes arrive): a fetch that passed the signature, time and nonce checks but is not
  allowed (no consent, revoked or expired grant, closed emergency access, erased record) is
  refused *and audited*: an ``audit.record`` entry with ``served`` false goes on chain under
  the custodian's key (checked on the committed state after the custodian's audit flush). A
  request failing those checks (forged, replayed, stale, for another custodian, garbage)
  cannot be trusted to name its reader: it is refused and *counted* (the custodian's
  ``refused`` statistics), never written to the audit log — by design.
- **the chain** (the contracts): a transaction outside its rules (non-members governing,
  devices not paired to the patient, emergency access outside policy, someone else's
  identity, replays) is refused with a ``ResultCode``; delivered in a block, its receipt with
  the code and a log saying why is part of the block's results (``GET /tx/<hash>`` shows it)
  and it changed nothing (no events). ``admission`` says whether the node's admission check
  already refuses it (then an honest node never relays it; a Byzantine proposer could still
  include it, which is what delivering it in a block tries).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass
from typing import Final

import trio

from health.contracts.audit import AccessEntry, list_audit, record_payload
from health.contracts.common import DAY_MS, AccessBasis, HealthRole
from health.contracts.consent import break_glass_payload, grant_payload, revoke_payload
from health.contracts.governance_types import Choice, set_param_payload, vote_payload
from health.contracts.identity import deactivate_payload, register_payload
from health.contracts.records import erase_payload
from health.custodian import Custodian, CustodianConfig
from health.records_wire import (
    FETCH_REQUEST_CODEC,
    PROTOCOL,
    FetchRequest,
    RecordsError,
    decode_answer,
    encode_request,
)
from health.vault import Vault
from node.codec import TX_CODEC, tx_hash
from node.testing import MemoryStorage
from node.types import ResultCode
from tests.health.fakes import PEERS, Cluster, Upload
from tests.health.helpers import CHAIN, Party, attributes, party

SKEW_MS: Final = CustodianConfig().max_request_skew_ms
AUDIT_ENTRY: Final = "audit entry on chain"
COUNTED: Final = "refusal counted (not audited: the reader is not authenticated)"
RECEIPT: Final = "refused receipt in the block's results"


@dataclass(frozen=True)
class AttackOutcome:
    """One attack: what refused it (``refusal``: a records reason or a ``ResultCode`` name;
    empty if it was not refused), what was expected, and whether it was recorded as the
    design says (``audit``: how; ``audited``: it was)."""

    name: str
    target: str
    expected: str
    refusal: str
    audit: str
    audited: bool
    admission: str = ""
    """For chain attacks: the admission check's code (``OK`` if only the block refuses)."""

    @property
    def refused(self) -> bool:
        """Refused, with the expected refusal."""
        return self.refusal == self.expected


@dataclass(frozen=True)
class AttackReport:
    """Every attack's outcome."""

    outcomes: tuple[AttackOutcome, ...]
    refused_entries_on_chain: int = 0
    """Audit entries of refused reads on chain after the campaign: exactly one for each
    attack audited as an entry (the forgeries must not have produced one)."""

    @property
    def tried(self) -> int:
        return len(self.outcomes)

    @property
    def refused(self) -> int:
        return sum(outcome.refused for outcome in self.outcomes)

    @property
    def audited(self) -> int:
        return sum(outcome.audited for outcome in self.outcomes)

    @property
    def ok(self) -> bool:
        """Every attack refused as expected and recorded as the design says, and no audit
        entry beyond those."""
        entries = sum(outcome.audit == AUDIT_ENTRY for outcome in self.outcomes)
        return not self.failures() and self.refused_entries_on_chain == entries

    def failures(self) -> list[AttackOutcome]:
        """The attacks not refused as expected, or not recorded."""
        return [o for o in self.outcomes if not (o.refused and o.audited)]

    def summary(self) -> str:
        """``attacks tried: N, refused: N, audited: N`` (audit entries on chain: N)."""
        entries = sum(outcome.audit == AUDIT_ENTRY for outcome in self.outcomes)
        return (
            f"attacks tried: {self.tried}, refused: {self.refused}, audited: {self.audited} "
            f"({entries} as audit entries on chain, the rest as counted refusals or refused "
            "receipts)"
        )

    def as_dict(self) -> dict[str, object]:
        """The report as JSON-ready data."""
        return {
            "tried": self.tried,
            "refused": self.refused,
            "audited": self.audited,
            "refused_entries_on_chain": self.refused_entries_on_chain,
            "attacks": [dataclasses.asdict(outcome) for outcome in self.outcomes],
        }


# -- the custodian -------------------------------------------------------------------------


class CustodianAttacks:
    """Fetches sent to hospital ``a``'s custodian through its protocol handler."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        holder = cluster.hospital
        services = cluster.node("a")
        self.keeper = Custodian(
            Vault(MemoryStorage()),
            services,
            holder.id,
            holder.signer,
            clock=cluster.clock,
            rng_bytes=cluster.rng,
            config=CustodianConfig(),
        )
        services.register_handler(PROTOCOL, self.keeper.handle)
        self.expect_entries: list[tuple[str, bytes, bytes]] = []
        """(attack, reader, record) of the refusals that must be audited on chain."""
        self.outcomes: list[AttackOutcome] = []

    async def store(self, name: str, readers: tuple[Party, ...] = ()) -> Upload:
        """A record of the patient kept by this custodian, committed."""
        cluster = self.cluster
        upload = cluster.upload(name, readers=readers)
        await self.keeper.accept_upload(upload.blob)
        _, notice = cluster.commit(cluster.commit_tx(upload))
        await self.keeper.on_commit(notice)
        return upload

    def ask(self, reader: Party, record: bytes, **kw: object) -> FetchRequest:
        return self.cluster.fetch_request(reader, record, self.cluster.hospital, **kw)  # type: ignore[arg-type]

    async def send(self, request: FetchRequest | bytes) -> str:
        """The request's answer: ``""`` if served, else the refusal's reason."""
        data = request if isinstance(request, bytes) else _encoded(request)
        try:
            decode_answer(await self.keeper.handle(PEERS["b"], data))
        except RecordsError as refusal:
            return refusal.reason
        return ""

    async def attack(
        self, name: str, request: FetchRequest | bytes, expected: str, *, audited_entry: bool
    ) -> None:
        """Send ``request``; judge it (an audit entry is checked later, on chain)."""
        before = dict(self.keeper.stats().refused)
        refusal = await self.send(request)
        counted = self.keeper.stats().refused.get(refusal, 0) > before.get(refusal, 0)
        if audited_entry and isinstance(request, FetchRequest):
            self.expect_entries.append((name, request.requester, request.record))
        self.outcomes.append(
            AttackOutcome(
                name,
                "custodian",
                expected,
                refusal,
                AUDIT_ENTRY if audited_entry else COUNTED,
                audited=counted,  # an entry's presence on chain is checked in ``settle``
            )
        )

    async def settle(self) -> tuple[list[AttackOutcome], int]:
        """Flush the audit queue to the chain; the outcomes with audit entries checked, and
        the number of refused reads audited on chain."""
        await self.keeper.flush_audit()
        result, _ = self.cluster.commit()
        assert all(receipt.ok for receipt in result.receipts), "the audit batch was refused"
        entries = list_audit(self.cluster.state, self.cluster.patient.id)
        refused_reads = Counter((e.reader, e.record) for e in entries if not e.served)
        on_chain = set()
        for name, reader, record in self.expect_entries:  # one entry for each, in order
            if refused_reads[reader, record] > 0:
                refused_reads[reader, record] -= 1
                on_chain.add(name)
        outcomes = [
            dataclasses.replace(o, audited=o.name in on_chain) if o.audit == AUDIT_ENTRY else o
            for o in self.outcomes
        ]
        return outcomes, sum(not e.served for e in entries)


def _encoded(request: FetchRequest) -> bytes:
    return encode_request("fetch", FETCH_REQUEST_CODEC.encode(request))


def _grant(cluster: Cluster, grantee: Party, expires_in_ms: int = DAY_MS) -> bytes:
    payload = grant_payload(grantee.id, expires_ms=cluster.chain.time_ms + 1_000 + expires_in_ms)
    notice = cluster.ok(cluster.patient, "consent.grant", payload)
    [event] = [e for e in notice.events if e.name == "consent.granted"]
    return bytes.fromhex(attributes(event)["grant"])


async def _consent_attacks(run: CustodianAttacks) -> None:
    """No consent, a revoked grant, an expired grant, a closed emergency access."""
    cluster = run.cluster
    outsider, patient = cluster.outsider, cluster.patient
    upload = await run.store("attacked", readers=(outsider,))
    record = upload.record_id
    await run.attack(
        "fetch without consent", run.ask(outsider, record), "forbidden", audited_entry=True
    )
    grant_id = _grant(cluster, outsider)
    assert await run.send(run.ask(outsider, record)) == "", "a grantee is served"
    cluster.ok(patient, "consent.revoke", revoke_payload(patient.id, grant_id))
    await run.attack(
        "fetch under a revoked grant", run.ask(outsider, record), "forbidden", audited_entry=True
    )
    _grant(cluster, outsider, expires_in_ms=1_000)
    assert await run.send(run.ask(outsider, record)) == "", "a grantee is served"
    cluster.commit(time_ms=cluster.chain.time_ms + 5_000)  # past the expiry
    await run.attack(
        "fetch under an expired grant", run.ask(outsider, record), "forbidden", audited_entry=True
    )
    cluster.ok(outsider, "consent.break_glass", break_glass_payload(patient.id, "ETREAT"))
    assert await run.send(run.ask(outsider, record)) == "", "an emergency access is served"
    cluster.commit(time_ms=cluster.chain.time_ms + DAY_MS + 1_000)  # the access closes
    await run.attack(
        "fetch after the emergency access closed",
        run.ask(outsider, record),
        "forbidden",
        audited_entry=True,
    )
    cluster.ok(patient, "records.erase", erase_payload((record,)))
    await run.attack(
        "fetch of an erased record", run.ask(patient, record), "erased", audited_entry=True
    )


async def _forgery_attacks(run: CustodianAttacks) -> None:
    """Replays, forged signatures, someone else's identity, stale times, misrouting."""
    cluster = run.cluster
    patient, outsider = cluster.patient, cluster.outsider
    record = (await run.store("forged")).record_id
    served = run.ask(patient, record)
    assert await run.send(served) == "", "the owner is served"
    await run.attack("replayed fetch request", served, "replayed", audited_entry=False)
    signature = bytes([served.signature[0] ^ 1]) + served.signature[1:]
    tampered = dataclasses.replace(run.ask(patient, record), signature=signature)
    await run.attack("tampered signature", tampered, "bad_signature", audited_entry=False)
    impostor = run.ask(patient, record, signer=outsider.signer)
    await run.attack("someone else's identity", impostor, "bad_signature", audited_entry=False)
    intruder = party("intruder")
    await run.attack(
        "unregistered requester", run.ask(intruder, record), "bad_signature", audited_entry=False
    )
    now = cluster.clock()
    old = run.ask(patient, record, time_ms=now - SKEW_MS - 1)
    await run.attack("request older than the skew window", old, "stale", audited_entry=False)
    ahead = run.ask(patient, record, time_ms=now + SKEW_MS + 1)
    await run.attack("request from the future", ahead, "stale", audited_entry=False)
    elsewhere = cluster.fetch_request(patient, record, cluster.other_hospital)
    await run.attack(
        "request for another custodian", elsewhere, "not_custodian", audited_entry=False
    )
    await run.attack("garbage request", b"\x92\xa5fetch\xc4\x01x", "malformed", audited_entry=False)


async def _custodian_attacks(cluster: Cluster) -> tuple[list[AttackOutcome], int]:
    run = CustodianAttacks(cluster)
    await _consent_attacks(run)
    await _forgery_attacks(run)
    return await run.settle()


# -- the chain -----------------------------------------------------------------------------


class ChainAttacks:
    """Transactions against the contracts, each in a block of its own."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.outcomes: list[AttackOutcome] = []

    def attack(self, name: str, raw: bytes, expected: ResultCode) -> None:
        """Deliver ``raw`` in a block; refused with ``expected``, recorded, no effect."""
        chain = self.cluster.chain
        admission = chain.app.check_tx(TX_CODEC.decode(raw)).code
        result, _ = self.cluster.commit(raw)
        [receipt] = [r for r in result.receipts if r.tx_hash == tx_hash(raw)]
        refusal = "" if receipt.ok else receipt.code.name
        recorded = not receipt.ok and bool(receipt.log) and receipt.events == ()
        self.outcomes.append(
            AttackOutcome(name, "chain", expected.name, refusal, RECEIPT, recorded, admission.name)
        )

    def send(
        self, name: str, sender: Party, kind: str, payload: bytes, expected: ResultCode
    ) -> None:
        self.attack(name, self.cluster.chain.tx(sender, kind, payload), expected)


def _register(
    cluster: Cluster, registrar: Party, name: str, role: HealthRole, kind: str = ""
) -> Party:
    """Register (or pair, for a device) the party ``name``."""
    new = party(name)
    payload = register_payload(
        new.signer,
        new.encryption_private,
        chain_id=CHAIN,
        registrar=registrar.id,
        role=role,
        kind=kind,
    )
    cluster.ok(registrar, "identity.register", payload)
    return new


def _device_attacks(run: ChainAttacks) -> None:
    """Readings (record commitments, alerts) from devices not paired to the patient."""
    cluster = run.cluster
    patient = cluster.patient
    meter = _register(cluster, patient, "meter-unpaired", HealthRole.DEVICE, "glucose_meter")
    cluster.ok(patient, "identity.deactivate", deactivate_payload(meter.id))
    reading = cluster.commit_tx(cluster.upload("unpaired-reading", author=meter))
    run.attack("reading from an unpaired device", reading, ResultCode.ACCOUNT_INACTIVE)
    other = _register(cluster, cluster.hospital, "patient-other", HealthRole.PATIENT)
    foreign = _register(cluster, other, "meter-foreign", HealthRole.DEVICE, "cgm")
    reading = cluster.commit_tx(cluster.upload("foreign-reading", author=foreign))
    run.attack("reading from another patient's device", reading, ResultCode.UNAUTHORIZED)
    stranger = party("meter-never-paired")
    reading = cluster.commit_tx(cluster.upload("stranger-reading", author=stranger))
    run.attack("reading from a device never paired", reading, ResultCode.UNKNOWN_SENDER)
    outsider = cluster.commit_tx(cluster.upload("outsider-record", author=cluster.outsider))
    run.attack("record written for a patient without access", outsider, ResultCode.UNAUTHORIZED)


def _governance_attacks(run: ChainAttacks) -> None:
    """Proposals and votes by identities that are not member institutions."""
    cluster = run.cluster
    notice = cluster.ok(cluster.hospital, "governance.propose", set_param_payload("quorum_pct", 60))
    [event] = [e for e in notice.events if e.name == "governance.proposed"]
    proposal = int(attributes(event)["proposal"])
    vote = vote_payload(proposal, Choice.YES)
    run.send(
        "governance vote by a practitioner",
        cluster.doctor,
        "governance.vote",
        vote,
        ResultCode.UNAUTHORIZED,
    )
    run.send(
        "governance vote by a patient",
        cluster.patient,
        "governance.vote",
        vote,
        ResultCode.UNAUTHORIZED,
    )
    propose = set_param_payload("emergency_access_ms", 7 * DAY_MS)
    run.send(
        "governance proposal by a practitioner",
        cluster.doctor,
        "governance.propose",
        propose,
        ResultCode.UNAUTHORIZED,
    )
    run.send(
        "governance proposal by a patient",
        cluster.patient,
        "governance.propose",
        propose,
        ResultCode.UNAUTHORIZED,
    )


def _consent_chain_attacks(run: ChainAttacks) -> None:
    """Emergency access outside policy, grants and revocations by the wrong party, forged
    audit entries, erasing someone else's record, forged and replayed transactions."""
    cluster = run.cluster
    patient, doctor, outsider = cluster.patient, cluster.doctor, cluster.outsider
    glass = break_glass_payload(patient.id, "ETREAT")
    run.send(
        "break-glass by the patient", patient, "consent.break_glass", glass, ResultCode.UNAUTHORIZED
    )
    run.send(
        "break-glass by an institution",
        cluster.hospital,
        "consent.break_glass",
        glass,
        ResultCode.UNAUTHORIZED,
    )
    on_doctor = break_glass_payload(doctor.id, "ETREAT")
    run.send(
        "break-glass on a non-patient",
        outsider,
        "consent.break_glass",
        on_doctor,
        ResultCode.UNAUTHORIZED,
    )
    cluster.ok(doctor, "consent.break_glass", glass)
    run.send(
        "second break-glass while one is open",
        doctor,
        "consent.break_glass",
        glass,
        ResultCode.CONFLICT,
    )
    grant = grant_payload(outsider.id, expires_ms=cluster.chain.time_ms + DAY_MS)
    run.send(
        "grant issued by a practitioner", doctor, "consent.grant", grant, ResultCode.UNAUTHORIZED
    )
    granted = cluster.chain.tx(patient, "consent.grant", grant)
    _, notice = cluster.commit(granted)
    grant_id = bytes.fromhex(attributes(notice.events[0])["grant"])
    revoke = revoke_payload(patient.id, grant_id)
    run.send(
        "revocation of someone else's grant",
        outsider,
        "consent.revoke",
        revoke,
        ResultCode.UNAUTHORIZED,
    )
    run.attack("replayed transaction", granted, ResultCode.BAD_NONCE)
    record = cluster.upload("chain-attacked")
    cluster.commit(cluster.commit_tx(record))
    entry = AccessEntry(
        record.record_id, outsider.id, cluster.chain.time_ms, AccessBasis.OWNER, b"", True
    )
    forged_audit = record_payload((entry,))
    run.send(
        "audit entries forged by a non-custodian",
        outsider,
        "audit.record",
        forged_audit,
        ResultCode.UNAUTHORIZED,
    )
    erase = erase_payload((record.record_id,))
    run.send(
        "erasure of someone else's record", doctor, "records.erase", erase, ResultCode.UNAUTHORIZED
    )
    signed = TX_CODEC.decode(cluster.chain.tx(outsider, "records.erase", erase))
    forged = TX_CODEC.encode(dataclasses.replace(signed, sender=patient.id))
    run.attack("transaction in someone else's name", forged, ResultCode.BAD_SIGNATURE)


def _disabled_emergency_attack() -> list[AttackOutcome]:
    """Break-glass where governance disabled emergency access (``emergency_access_ms`` 0)."""
    run = ChainAttacks(Cluster({"emergency_access_ms": 0}))
    glass = break_glass_payload(run.cluster.patient.id, "ETREAT")
    run.send(
        "break-glass where emergency access is disabled",
        run.cluster.doctor,
        "consent.break_glass",
        glass,
        ResultCode.UNAUTHORIZED,
    )
    return run.outcomes


async def _all_attacks() -> AttackReport:
    cluster = Cluster()
    outcomes, entries = await _custodian_attacks(cluster)
    chain = ChainAttacks(cluster)
    _device_attacks(chain)
    _governance_attacks(chain)
    _consent_chain_attacks(chain)
    return AttackReport((*outcomes, *chain.outcomes, *_disabled_emergency_attack()), entries)


def run_access_attacks() -> AttackReport:
    """Run every attack on a fresh health chain with a custodian; the outcome of each.
    Deterministic (named keys, a counting randomness, block time); a second or so."""
    return trio.run(_all_attacks)
