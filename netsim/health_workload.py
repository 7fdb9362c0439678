"""The health workload: the diabetes-care story of docs/HEALTH.md on a simulated network.

The chain runs the health modules (``health.contracts.registry.health_registry``). Its
genesis names one institution per validator — hospitals and clinics, the governance members,
each with its validator's key and power — and sets two parameters so the story happens in
minutes of virtual time: ``reminder_grace_ms`` (1 minute, the least allowed) and
``voting_period_ms`` (5 minutes). Every party is a client of its own: a signing key, a home
node drawn at random, one transaction in flight (:mod:`netsim.senders`: nonces, resends,
refusals). The story:

- at start each institution registers its practitioners, then its patients; a registered
  patient pairs its devices (the first a CGM, the others glucose meters), lets alerts be
  shared, and grants its treating practitioner a treatment access for 30 days; once granted,
  the practitioner sets a care plan (a dose item and a measurement item, four times each,
  one minute apart starting at the next minute: a day's schedule compressed into the first
  minutes so reminders come due in virtual time; after that, the next day's);
- each paired device commits a reading every ``reading_interval_ms`` (a random 32-byte
  record id, a random "ciphertext" hash and size: the simulator encrypts nothing, the chain
  only sees commitments); now and then a reading raises an alert;
- a dose that comes due is acknowledged by the patient a few seconds later, a measurement by
  a reading of one of its devices — except ``miss_pct`` percent of them, which escalate once
  the grace has passed;
- now and then (each kind about every ``story_interval_ms``, exponential gaps): a
  practitioner changes a plan; a patient revokes its practitioner's grant and grants it again
  a few seconds later; a practitioner refers a patient to a practitioner of another
  institution (request, the patient's referral grant, accept, the specialist's consultation
  record, answer, close); a member proposes a parameter change (``audit_batch_max``) and
  the members vote on it.

Clients learn what happened as a real client watching the event feed would: from each
decided height's receipts and events (the ids of grants, referrals and proposals, the
reminders due). Every draw comes from the workload's random stream, so a seed replays the
story exactly. The report counts committed transactions by kind, failed receipts by kind and
code, refusals, events, reminders (:class:`~netsim.health_checks.ReminderLedger`), and lists
as problems (``workload`` violations) what must not happen whatever the faults: a reminder
neither acknowledged nor escalated a minute after its grace (``ESCALATION_SLACK_MS``), an
escalation of a reminder never due, a registration or a device reading that committed with
a failed receipt (the story only sends those when they are valid).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from functools import partial
from typing import TYPE_CHECKING, Final

from health.contracts.care import (
    AlertLevel,
    ItemKind,
    ScheduleItem,
    ack_payload,
    alert_payload,
    set_plan_payload,
    set_policy_payload,
)
from health.contracts.common import DAY_MS, GLUCOSE_RESOURCE_TYPE, HealthRole, Purpose
from health.contracts.consent import grant_payload, revoke_payload
from health.contracts.governance import Choice, set_param_payload, vote_payload
from health.contracts.identity import register_payload
from health.contracts.records import commit_payload
from health.contracts.registry import health_registry
from netsim.errors import ConfigError
from netsim.health_checks import ReminderLedger
from netsim.health_parties import (
    Device,
    Institution,
    Party,
    Patient,
    Practitioner,
    build_parties,
)
from netsim.health_referral import ReferralFlow
from netsim.senders import Intent, Sender, SenderPool
from netsim.workload import CommittedBlock, WorkloadContext, WorkloadReport
from node.app.accounts import GenesisAccount
from node.app.module import JsonValue
from node.chain.application import AppFactory
from node.types import Event, TxReceipt, Validator

if TYPE_CHECKING:
    from netsim.config import SimConfig

MINUTE_MS: Final = 60_000
MINUTES_PER_DAY: Final = 1_440
REMINDER_GRACE_MS: Final = 60_000
"""Genesis ``reminder_grace_ms``: the least governance allows, so misses escalate in a minute."""
ESCALATION_SLACK_MS: Final = 60_000
"""How late an escalation may run after its time before the run fails (due work is bounded
per block: a minute shared by many reminders drains over several blocks)."""
VOTING_PERIOD_MS: Final = 300_000
"""Genesis ``voting_period_ms`` (5 minutes): deadline tallies happen in long runs."""
GRANT_MS: Final = 30 * DAY_MS
"""How long a patient's treatment grant to its practitioner lasts."""
TIMES_PER_ITEM: Final = 4
"""Times of day of each plan item (doses and measurements)."""
AUDIT_BATCH_VALUES: Final = (128, 256)
"""The values proposals set ``audit_batch_max`` to, in turn."""
STORY_KINDS: Final = ("plan_change", "consent_change", "referral", "proposal")
MAX_PROBLEMS: Final = 20


def event_attribute(events: Iterable[Event], name: str, key: str) -> str | None:
    """Attribute ``key`` of the first event called ``name``, or None."""
    for event in events:
        if event.name == name:
            return event.get(key)
    return None


class HealthWorkload:
    """The diabetes-care story (see the module docstring)."""

    name = "health"

    def __init__(
        self,
        *,
        institutions: int,
        practitioners: int = 2,
        patients: int = 4,
        devices: int = 1,
        reading_interval_ms: int = 300_000,
        miss_pct: int = 20,
        alert_pct: int = 5,
        story_interval_ms: int = 30_000,
        resubmit_ms: int = 10_000,
        max_attempts: int = 6,
    ) -> None:
        """``institutions`` (one per validator), each with ``practitioners`` and ``patients``,
        each patient with ``devices``; ConfigError for options out of range."""
        _check_options(
            institutions=institutions,
            practitioners=practitioners,
            patients=patients,
            devices=devices,
            reading_interval_ms=reading_interval_ms,
            miss_pct=miss_pct,
            alert_pct=alert_pct,
            story_interval_ms=story_interval_ms,
            resubmit_ms=resubmit_ms,
            max_attempts=max_attempts,
        )
        self.institutions = build_parties(institutions, practitioners, patients, devices)
        self.patients = [p for inst in self.institutions for p in inst.patients]
        self._patient_by_hex = {p.party.id.hex(): p for p in self.patients}
        self._reading_interval_us = reading_interval_ms * 1_000
        self._miss_pct = miss_pct
        self._alert_pct = alert_pct
        self._story_interval_us = story_interval_ms * 1_000
        self._resubmit_us = resubmit_ms * 1_000
        self._max_attempts = max_attempts
        self.counts: Counter[str] = Counter()
        self.ledger = ReminderLedger()
        self._problems: list[str] = []
        self._ctx: WorkloadContext | None = None
        self._pool: SenderPool | None = None
        self._block_time_ms = 0
        self._block_time_us = 0
        self._open_proposals: dict[int, None] = {}
        self._audit_batch_max = 256
        self.referrals: ReferralFlow | None = None

    @classmethod
    def from_config(cls, config: SimConfig) -> HealthWorkload:
        """The story of a run: one institution per validator, the run's health options."""
        return cls(
            institutions=config.validators,
            practitioners=config.practitioners,
            patients=config.patients,
            devices=config.devices,
            reading_interval_ms=config.reading_interval_ms,
            miss_pct=config.miss_pct,
        )

    # --- genesis ---------------------------------------------------------------------------------

    def genesis_accounts(self) -> tuple[GenesisAccount, ...]:
        """None: a health chain's senders are identities (``app_state["identity"]``)."""
        return ()

    def genesis_app_state(self, validators: tuple[Validator, ...]) -> dict[str, JsonValue]:
        """The institutions (identities and governance members, one per validator, with its
        key and power) and the story's parameters."""
        if len(validators) != len(self.institutions):
            raise ConfigError(
                f"the health story has one institution per validator: {len(self.institutions)} "
                f"institutions for {len(validators)} validators"
            )
        identities: list[JsonValue] = [
            {
                "role": "institution",
                "kind": inst.kind,
                "label": f"{inst.kind.capitalize()} {inst.index}",
                "signing_key": inst.party.id.hex(),
                "encryption_key": inst.party.encryption_key.hex(),
                "parent": "",
            }
            for inst in self.institutions
        ]
        members: list[JsonValue] = [
            {
                "institution": inst.party.id.hex(),
                "validator_key": validator.public_key.hex(),
                "power": validator.voting_power,
                "weight": 1,
            }
            for inst, validator in zip(self.institutions, validators, strict=True)
        ]
        params: dict[str, JsonValue] = {
            "reminder_grace_ms": REMINDER_GRACE_MS,
            "voting_period_ms": VOTING_PERIOD_MS,
        }
        return {
            "identity": {"identities": identities},
            "governance": {"members": members, "params": params},
        }

    def app_factory(self) -> AppFactory | None:
        """The health chain's modules."""
        return health_registry().build

    # --- the run ---------------------------------------------------------------------------------

    def start(self, ctx: WorkloadContext) -> None:
        """Give every party a home node, start the registrations and the story's clocks."""
        self._ctx = ctx
        pool = SenderPool(
            ctx, self.counts, resubmit_us=self._resubmit_us, max_attempts=self._max_attempts
        )
        self._pool = pool
        self.referrals = ReferralFlow(self, pool)
        for sender in self._senders():
            sender.home = ctx.rng.randrange(ctx.topology.nodes)
        for inst in self.institutions:
            for practitioner in inst.practitioners:
                self._register_practitioner(practitioner)
            for patient in inst.patients:
                self._register_patient(patient)
        for kind in STORY_KINDS:
            ctx.later(self._story_gap_us(), partial(self._tick, kind))

    def _senders(self) -> Iterable[Sender]:
        for inst in self.institutions:
            yield inst.sender
            yield from (p.sender for p in inst.practitioners)
            for patient in inst.patients:
                yield patient.sender
                yield from (d.sender for d in patient.devices)

    def on_block(self, block: CommittedBlock) -> None:
        """Read the height after the node code that decided it returns (clients react by
        sending: never from within a node's event handling)."""
        self.ctx.later(0, partial(self._read_block, block))

    def _read_block(self, block: CommittedBlock) -> None:
        self._block_time_ms = block.time_ms
        self._block_time_us = block.time_us
        events = [*block.events, *(e for r in block.receipts for e in r.events)]
        for event in events:
            self.counts[f"emitted/{event.name}"] += 1
        self.ledger.observe(events)
        for event in events:
            self._react(event)
        self.pool.on_block(block)

    def report(self) -> WorkloadReport:
        """Counts (transactions, refusals, events, reminders, story steps) and problems."""
        counts = Counter(self.counts)
        for state, count in self.ledger.counts.items():
            counts[f"reminders/{state}"] = count
        problems = [
            *self._problems,
            *self.ledger.check(self._block_time_ms, REMINDER_GRACE_MS, ESCALATION_SLACK_MS),
        ]
        return WorkloadReport(dict(sorted(counts.items())), tuple(problems))

    # --- shared helpers --------------------------------------------------------------------------

    @property
    def ctx(self) -> WorkloadContext:
        """The run's context (after ``start``)."""
        assert self._ctx is not None, "the workload has not started"
        return self._ctx

    @property
    def pool(self) -> SenderPool:
        """The senders' pool (after ``start``)."""
        assert self._pool is not None, "the workload has not started"
        return self._pool

    def chain_ms(self) -> int:
        """What the chain's clock reads now, as far as the clients know: the last block's
        time plus the virtual time since it was decided."""
        return self._block_time_ms + (self.ctx.now_us() - self._block_time_us) // 1_000

    def problem(self, text: str) -> None:
        """Note a broken expectation (the first MAX_PROBLEMS are kept, all counted)."""
        self.counts["problems/story"] += 1
        if len(self._problems) < MAX_PROBLEMS:
            self._problems.append(text)

    def _story_gap_us(self) -> int:
        return 1 + int(self.ctx.rng.expovariate(1.0 / self._story_interval_us))

    def _delay_us(self, low_ms: int, high_ms: int) -> int:
        return self.ctx.rng.randrange(low_ms * 1_000, high_ms * 1_000)

    # --- registrations ---------------------------------------------------------------------------

    def _register(
        self,
        registrar: Sender,
        new: Party,
        role: HealthRole,
        *,
        kind: str = "",
        label: str = "",
        on_ok: Callable[[], None],
    ) -> None:
        """``registrar`` registers ``new``; ``on_ok`` follows its OK receipt (a failed one
        is a problem: the story registers only valid identities)."""
        chain_id = self.ctx.chain_id

        def build() -> bytes:
            return register_payload(
                new.signer,
                new.encryption_private,
                chain_id=chain_id,
                registrar=registrar.id,
                role=role,
                kind=kind,
                label=label,
            )

        def done(receipt: TxReceipt) -> None:
            if receipt.ok:
                on_ok()
            else:
                self.problem(f"registering {new.name} failed: {receipt.code.name} {receipt.log}")

        self.pool.send(registrar, Intent("identity.register", build, done))

    def _register_practitioner(self, practitioner: Practitioner) -> None:
        def registered() -> None:
            practitioner.registered = True

        inst, name = practitioner.institution, practitioner.party.name
        label = f"Dr {name.removeprefix('practitioner-')}"
        self._register(
            inst.sender,
            practitioner.party,
            HealthRole.PRACTITIONER,
            kind=practitioner.specialty,
            label=label,
            on_ok=registered,
        )

    def _register_patient(self, patient: Patient) -> None:
        def registered() -> None:
            patient.registered = True
            for device in patient.devices:
                self._pair(device)
            self.pool.send(
                patient.sender, Intent("care.set_policy", lambda: set_policy_payload(True))
            )
            self.grant_treatment(patient)

        inst = patient.institution
        self._register(inst.sender, patient.party, HealthRole.PATIENT, on_ok=registered)

    def _pair(self, device: Device) -> None:
        def paired() -> None:
            device.paired = True
            self.ctx.later(
                self.ctx.rng.randrange(self._reading_interval_us), partial(self._reading, device)
            )

        patient = device.patient
        self._register(
            patient.sender, device.party, HealthRole.DEVICE, kind=device.kind, on_ok=paired
        )

    # --- consent and plans -----------------------------------------------------------------------

    def grant_treatment(self, patient: Patient) -> None:
        """The patient grants its practitioner a treatment access; a first plan follows."""
        practitioner = patient.practitioner
        patient.consent_busy = True

        def build() -> bytes:
            return grant_payload(
                practitioner.party.id,
                expires_ms=self.chain_ms() + GRANT_MS,
                purpose=Purpose.TREATMENT,
            )

        def done(receipt: TxReceipt) -> None:
            patient.consent_busy = False
            grant = event_attribute(receipt.events, "consent.granted", "grant")
            if receipt.ok and grant is not None:
                patient.grant = bytes.fromhex(grant)
                if patient.plan_version == 0 and not patient.plan_pending:
                    self.set_plan(patient)

        def dropped(_: str) -> None:
            patient.consent_busy = False

        wanted = partial(_is_registered, practitioner)
        self.pool.send(patient.sender, Intent("consent.grant", build, done, dropped, wanted))

    def set_plan(self, patient: Patient) -> None:
        """The patient's practitioner sets (or changes) its care plan."""
        patient.plan_pending = True
        rng = self.ctx.rng

        def build() -> bytes:
            return set_plan_payload(
                patient.party.id,
                base_version=patient.plan_version,
                plan_record=rng.randbytes(32),
                plan_sha256=rng.randbytes(32),
                tz_offset_minutes=patient.tz_offset_minutes,
                items=self._schedule(patient),
            )

        def finished(_: object) -> None:
            patient.plan_pending = False

        intent = Intent("care.set_plan", build, finished, finished, partial(_has_grant, patient))
        self.pool.send(patient.practitioner.sender, intent)

    def _schedule(self, patient: Patient) -> tuple[ScheduleItem, ...]:
        """A dose and a measurement item, TIMES_PER_ITEM times each, alternating minute by
        minute from the next local minute (wrapping at midnight)."""
        local_minute = (self.chain_ms() // MINUTE_MS + patient.tz_offset_minutes) % MINUTES_PER_DAY
        first = local_minute + 1 + self.ctx.rng.randrange(2)
        doses = sorted({(first + 2 * n) % MINUTES_PER_DAY for n in range(TIMES_PER_ITEM)})
        checks = sorted({(first + 2 * n + 1) % MINUTES_PER_DAY for n in range(TIMES_PER_ITEM)})
        return (
            ScheduleItem(1, ItemKind.DOSE, tuple(doses)),
            ScheduleItem(2, ItemKind.MEASUREMENT, tuple(checks)),
        )

    # --- readings and reminders ------------------------------------------------------------------

    def _reading(self, device: Device) -> None:
        self.commit_reading(device)
        self.ctx.later(self._reading_interval_us, partial(self._reading, device))

    def commit_reading(self, device: Device) -> None:
        """The device commits a reading of its patient (and now and then raises an alert)."""
        rng = self.ctx.rng
        patient = device.patient
        record = rng.randbytes(32)

        def build() -> bytes:
            return _reading_payload(self, device, record)

        def done(receipt: TxReceipt) -> None:
            if not receipt.ok:
                self.problem(f"a reading of {device.party.name} failed: {receipt.code.name}")
            elif patient.plan_version > 0 and rng.randrange(100) < self._alert_pct:
                level = rng.choice(tuple(AlertLevel))
                self.pool.send(
                    device.sender, Intent("care.alert", lambda: alert_payload(level, record))
                )

        self.pool.send(device.sender, Intent("records.commit", build, done))

    def _react(self, event: Event) -> None:
        name = event.name
        if name == "care.plan_set":
            patient = self._patient_by_hex.get(event.get("patient") or "")
            version = event.get("version") or ""
            if patient is not None and version.isdigit():
                patient.plan_version = int(version)
        elif name in ("care.dose_due", "care.measurement_due"):
            self._reminder_due(event)
        elif name in ("governance.passed", "governance.rejected", "governance.failed"):
            self._open_proposals.pop(int(event.get("proposal") or "0"), None)
        elif name == "governance.param_changed" and event.get("param") == "audit_batch_max":
            self._audit_batch_max = int(event.get("value") or "0")

    def _reminder_due(self, event: Event) -> None:
        patient = self._patient_by_hex.get(event.get("patient") or "")
        item, due_ms = event.get("item") or "", event.get("due_ms") or ""
        if patient is None or not (item.isdigit() and due_ms.isdigit()):
            return
        if self.ctx.rng.randrange(100) < self._miss_pct:
            self.counts["story/reminders let pass"] += 1
            return
        delay_us = self._delay_us(1_000, REMINDER_GRACE_MS // 3)
        devices = [d for d in patient.devices if d.paired]
        if event.name == "care.measurement_due" and devices:
            device = devices[self.ctx.rng.randrange(len(devices))]
            self.ctx.later(delay_us, partial(self.commit_reading, device))
            return
        payload = ack_payload(int(item), int(due_ms))
        intent = Intent("care.ack", lambda: payload)
        self.ctx.later(delay_us, partial(self.pool.send, patient.sender, intent))

    # --- now and then ----------------------------------------------------------------------------

    def _tick(self, kind: str) -> None:
        if kind == "plan_change":
            self._plan_change()
        elif kind == "consent_change":
            self._consent_change()
        elif kind == "referral":
            assert self.referrals is not None
            if not self.referrals.start():
                self.counts["story/referral skipped"] += 1
        else:
            self._proposal()
        self.ctx.later(self._story_gap_us(), partial(self._tick, kind))

    def _pick(self, candidates: list[Patient], what: str) -> Patient | None:
        if not candidates:
            self.counts[f"story/{what} skipped"] += 1
            return None
        self.counts[f"story/{what}"] += 1
        return candidates[self.ctx.rng.randrange(len(candidates))]

    def _plan_change(self) -> None:
        patient = self._pick(
            [
                p for p in self.patients
                if p.plan_version > 0 and p.grant and not p.consent_busy and not p.plan_pending
            ],
            "plan change",
        )  # fmt: skip
        if patient is not None:
            self.set_plan(patient)

    def _consent_change(self) -> None:
        """A patient revokes its practitioner's grant, and grants it again a little later."""
        patient = self._pick(
            [p for p in self.patients if p.grant and not p.consent_busy and not p.referral],
            "revocation",
        )
        if patient is None:
            return
        patient.consent_busy = True
        revoked = patient.grant

        def done(receipt: TxReceipt) -> None:
            if not receipt.ok:
                patient.consent_busy = False
                return
            patient.grant = b""
            self.ctx.later(self._delay_us(5_000, 20_000), partial(self.grant_treatment, patient))

        def dropped(_: str) -> None:
            patient.consent_busy = False

        payload = revoke_payload(patient.party.id, revoked)
        self.pool.send(patient.sender, Intent("consent.revoke", lambda: payload, done, dropped))

    def _proposal(self) -> None:
        """A member proposes the other value of ``audit_batch_max``; every member votes."""
        rng = self.ctx.rng
        proposer = self.institutions[rng.randrange(len(self.institutions))]
        value = AUDIT_BATCH_VALUES[0 if self._audit_batch_max != AUDIT_BATCH_VALUES[0] else 1]
        payload = set_param_payload("audit_batch_max", value, "netsim: audit batch size")
        self.counts["story/proposal"] += 1

        def done(receipt: TxReceipt) -> None:
            proposal = event_attribute(receipt.events, "governance.proposed", "proposal")
            if not receipt.ok or proposal is None or not proposal.isdigit():
                return
            self._open_proposals[int(proposal)] = None
            for member in self.institutions:
                self.ctx.later(
                    self._delay_us(1_000, 8_000), partial(self._vote, member, int(proposal))
                )

        self.pool.send(proposer.sender, Intent("governance.propose", lambda: payload, done))

    def _vote(self, member: Institution, proposal: int) -> None:
        draw = self.ctx.rng.randrange(100)
        choice = Choice.YES if draw < 85 else Choice.NO if draw < 95 else Choice.ABSTAIN
        payload = vote_payload(proposal, choice)
        wanted = partial(_is_open, self._open_proposals, proposal)
        intent = Intent("governance.vote", lambda: payload, wanted=wanted)
        self.pool.send(member.sender, intent)


def _reading_payload(workload: HealthWorkload, device: Device, record: bytes) -> bytes:
    """A reading's commitment: a random ciphertext hash and size, custodian the patient's
    institution, data time the chain's time as the device knows it."""
    rng = workload.ctx.rng
    patient = device.patient
    return commit_payload(
        record,
        patient.party.id,
        resource_type=GLUCOSE_RESOURCE_TYPE,
        code=device.code,
        ciphertext_sha256=rng.randbytes(32),
        size_bytes=rng.randrange(160, 480),
        custodians=(patient.institution.party.id,),
        key_epoch=0,
        data_time_ms=workload.chain_ms(),
    )


def _is_registered(practitioner: Practitioner) -> bool:
    return practitioner.registered


def _has_grant(patient: Patient) -> bool:
    return bool(patient.grant)


def _is_open(proposals: dict[int, None], proposal: int) -> bool:
    return proposal in proposals


def _check_options(**options: int) -> None:
    """ConfigError unless every option is an int in its range."""
    ranges = {
        "institutions": (1, 256),
        "practitioners": (1, 64),
        "patients": (0, 1_000),
        "devices": (0, 4),
        "reading_interval_ms": (1_000, 7 * DAY_MS),
        "miss_pct": (0, 100),
        "alert_pct": (0, 100),
        "story_interval_ms": (1_000, 7 * DAY_MS),
        "resubmit_ms": (1, 3_600_000),
        "max_attempts": (1, 100),
    }
    for name, value in options.items():
        low, high = ranges[name]
        if type(value) is not int or not low <= value <= high:
            raise ConfigError(f"health workload: {name} must be an int in {low}..{high}")
