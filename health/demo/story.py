"""The diabetes-care story told on a running health network, one line per step.

Four hospitals run the validators and are the DAO's members; a clinic and two patients run
observers (``node.cli.health_net``). Every act goes through ``health.client`` — signed
transactions, encrypted records, fetches under consent — as an app would:

 1. each hospital's node announces itself on chain as the node keeping its records;
 2. the clinic is admitted by the hospitals' vote (a proposal, three votes of four);
 3. practitioners are registered: a GP at the clinic, an endocrinologist at hospital 1, an
    emergency doctor at hospital 2;
 4. the clinic registers the patients; the first pairs a CGM;
 5. the CGM streams readings (encrypted; kept by the patient's node and the clinic's);
 6. the patient consents to the GP (the readings' keys re-wrapped for her), who reads one;
 7. the GP sets a first care plan (an encrypted FHIR plan, its schedule on chain);
 8. the GP refers the patient to the endocrinologist; the patient grants the referral; the
    endocrinologist accepts;
 9. the endocrinologist changes the plan (medication and measurement due within minutes);
10. reminders come due (``GET /events`` on the patient's node); the patient takes one dose
    and a CGM reading closes the measurement;
11. the other dose is missed: it escalates to the endocrinologist;
12. the emergency doctor opens emergency access (break-glass), and the patient is told;
13. the patient revokes the GP's consent;
14. the GP can no longer read a reading she read before;
15. the endocrinologist reads and decrypts the readings: time in range.

Each step checks what it did against the chain or the records served. Reminder times are
set a little after the current block time, so with the genesis' smallest
``reminder_grace_ms`` (a minute) the story takes a few minutes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Final, TextIO

from health import fhir
from health.client import ClientError, HealthClient, RecordError
from health.contracts.care import ItemKind, ScheduleItem
from health.contracts.common import HealthRole
from health.contracts.governance import Choice
from health.contracts.identity import admission
from health.demo.cast import CGM, ENDOCRINOLOGIST, ER_DOCTOR, GP, Cast, DemoNetwork
from health.demo.narrator import CheckFailed, Narrator, Outcome, Step, check
from health.demo.watch import EventWatch, attributes, settle
from health.glucose import statistics
from health.meter.runner import MAX_SPEED, MeterSummary, MeterTarget, Pacing, run_meter
from health.meter.trace import (
    CGM_INTERVAL_MS,
    GlucoseTrace,
    Reading,
    TraceKind,
    backfill_start,
)
from node.api.client import ApiError, ApiResponseError, ApiUnreachableError

MINUTE_MS: Final = 60_000
DAY_MS: Final = 24 * 60 * MINUTE_MS
GRANT_MS: Final = 30 * DAY_MS
CLINIC_LABEL: Final = "Valley Clinic"
PLAN_CODE: Final = "http://snomed.info/sct|698360004"
"""SNOMED CT "Diabetes care plan"."""
REFERRAL_REASON: Final = "http://hl7.org/fhir/sid/icd-10|E11.65"
"""Type 2 diabetes with hyperglycaemia."""
EMERGENCY_REASON: Final = "v3-ActReason|ETREAT"
REMINDER_LEAD_MS: Final = 25_000
"""The least time between the block time the plan is set at and its first due time."""
SETTLE_S: Final = 60.0
ANNOUNCE_TIMEOUT_S: Final = 60.0
READ_RETRY_S: Final = 20.0
RETRY_REASONS: Final = frozenset({"no_custodian", "not_found", "key_pending", "busy"})
"""Fetch refusals that go away once custodians have seen the latest commits."""
DEFAULT_SPEED: Final = 600.0
DEFAULT_READINGS: Final = 24
MAX_READINGS: Final = 288


@dataclass(frozen=True, slots=True)
class StoryOptions:
    """How the story runs: readings streamed ``speed`` times faster than real time, how
    many, and the seed of their trace."""

    speed: float = DEFAULT_SPEED
    readings: int = DEFAULT_READINGS
    seed: int = 11

    def __post_init__(self) -> None:
        if not (math.isfinite(self.speed) and 0 < self.speed <= MAX_SPEED):
            raise ValueError(f"the speed is > 0 and at most {MAX_SPEED:g}")
        if not 1 <= self.readings <= MAX_READINGS:
            raise ValueError(f"stream 1..{MAX_READINGS} readings (a day of CGM at most)")


@dataclass
class _State:
    """What the steps hand on to each other."""

    readings: list[tuple[bytes, float]] = field(default_factory=list)
    gp_grant: bytes = b""
    referral: bytes = b""
    plan_version: int = 0
    due_ms: int = 0
    watch: EventWatch | None = None
    trace: GlucoseTrace | None = None


def _may_pass(exc: RecordError | ApiError) -> bool:
    """True for a failed read that may pass once custodians caught up or a busy node
    answers: a refusal in ``RETRY_REASONS``, no answer in time, a 5xx."""
    if isinstance(exc, RecordError):
        return exc.reason in RETRY_REASONS
    if isinstance(exc, ApiResponseError):
        return exc.status >= 500
    return isinstance(exc, ApiUnreachableError)


class _RecordIds:
    """A ``RecordUploader`` that keeps the id of each record ``client`` uploads."""

    def __init__(self, client: HealthClient) -> None:
        self.client = client
        self.ids: list[bytes] = []

    def upload_record(
        self,
        content: Mapping[str, Any],
        *,
        owner: bytes | None = None,
        resource_type: str,
        code: str,
        data_time_ms: int,
        custodians: Sequence[tuple[bytes, str]],
        readers: Sequence[bytes] = (),
    ) -> bytes:
        record = self.client.upload_record(
            content,
            owner=owner,
            resource_type=resource_type,
            code=code,
            data_time_ms=data_time_ms,
            custodians=custodians,
            readers=readers,
        )
        self.ids.append(record)
        return record


class Story:
    """The story on ``network`` (see the module docstring)."""

    def __init__(
        self,
        network: DemoNetwork,
        options: StoryOptions | None = None,
        *,
        clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.network = network
        self.options = options or StoryOptions()
        self.cast = Cast(network)
        self.state = _State()
        self._clock_ms = clock_ms
        self._sleep = sleep
        self._monotonic = monotonic

    def tell(self, out: TextIO) -> Outcome:
        """Tell the story to ``out``, one line per step; how it went."""
        return Narrator(out, self._monotonic).tell(self.steps())

    def steps(self) -> list[Step]:
        """The story's steps, in order."""
        return [
            Step("hospitals' nodes announced", self.hospitals_announced),
            Step("the clinic is admitted by the hospitals' vote", self.admit_clinic),
            Step("practitioners registered", self.register_practitioners),
            Step("patients registered, a CGM paired", self.register_patients),
            Step("readings streamed", self.stream_readings),
            Step("consent to the GP", self.consent_to_gp),
            Step("the GP's first care plan", self.first_plan),
            Step("referral to the hospital's endocrinologist", self.referral),
            Step("plan change", self.change_plan),
            Step("reminders", self.reminders),
            Step("a missed dose escalates", self.escalation),
            Step("emergency access", self.emergency),
            Step("revocation", self.revocation),
            Step("the revoked doctor is refused", self.refused_read),
            Step("time in range for the doctor", self.time_in_range),
        ]

    # -- helpers ----------------------------------------------------------------------------

    def _client(self, name: str) -> HealthClient:
        return self.cast.party(name)

    @property
    def _patient(self) -> HealthClient:
        return self._client("patient-0")

    def _settle(self) -> int:
        """Every node applied what any node committed so far; that height."""
        return settle([client.node for client in self._node_clients()], SETTLE_S)

    def _node_clients(self) -> list[HealthClient]:
        return [self._client(node.party) for node in self.network.nodes]

    def _block_time_ms(self) -> int:
        status = self._patient.node.status()
        return int(status.get("last_block_time_ms") or self._clock_ms())

    def _read(self, reader: HealthClient, record: bytes) -> dict[str, Any]:
        """``reader.read_record``, retried while the custodians catch up with the chain."""
        deadline = self._monotonic() + READ_RETRY_S
        while True:
            try:
                return reader.read_record(record)
            except (RecordError, ApiError) as exc:
                if not _may_pass(exc) or self._monotonic() > deadline:
                    raise
            self._sleep(0.25)

    @staticmethod
    def _together(*calls: Callable[[], object]) -> None:
        """Run ``calls`` (of different senders) at once; the first error is raised."""
        with ThreadPoolExecutor(max_workers=len(calls)) as pool:
            for future in [pool.submit(call) for call in calls]:
                future.result()

    def _plan_state(self) -> dict[str, Any]:
        rendered = self._patient.node.state("care", f"p/{self._patient.identity_id.hex()}")
        return rendered.rendered if isinstance(rendered.rendered, dict) else {}

    # -- 1..4: the network's people ---------------------------------------------------------

    def hospitals_announced(self) -> str:
        """Each hospital's node announces itself (``identity.announce_node``, signed with its
        custodian key: ``health.extension``); fetches are routed to the node announced."""
        hospitals = self.network.hospitals()
        for node in hospitals:
            self._wait_announced(node.party)
        return f"{len(hospitals)} hospitals' nodes on chain (identity/n/<id>), each keeps records"

    def _wait_announced(self, party: str) -> None:
        """Wait until ``party``'s node has announced itself on chain (its custodian does so
        once the party is an identity)."""
        peer_id = self.network.node_of_party(party).peer_id
        path = f"n/{self._client(party).identity_id.hex()}"
        deadline = self._monotonic() + ANNOUNCE_TIMEOUT_S
        while peer_id not in str(self._patient.node.state("identity", path).rendered):
            check(self._monotonic() < deadline, f"{party}'s node did not announce itself")
            self._sleep(0.25)

    def admit_clinic(self) -> str:
        """Hospital 0 proposes admitting the clinic; hospitals 0..2 vote yes: 3 of 4 weights
        pass the two-thirds threshold, the clinic becomes a member and an identity."""
        clinic = self._client("clinic-0")
        proposal = admission(
            *clinic.keystore.admission_keys(),
            chain_id=self.network.chain_id,
            role=HealthRole.INSTITUTION,
            kind="clinic",
            label=CLINIC_LABEL,
        )
        hospitals = [self._client(node.party) for node in self.network.hospitals()]
        number = hospitals[0].propose_admit_institution(
            proposal,
            validator_key=clinic.identity_id,  # power 0: the clinic runs an observer
            power=0,
            weight=1,
            reason="a clinic serving the valley",
        )
        self._settle()  # every member's node knows the proposal before it votes
        passed = ""
        for voter in hospitals[:3]:
            receipt = voter.vote(number, Choice.YES)
            if any(event.name == "governance.passed" for event in receipt.events):
                passed = voter.keystore.name
        self._settle()
        found = clinic.identity(clinic.identity_id)
        check(passed != "", f"proposal {number} did not pass with 3 votes of 4")
        check(found is not None and found.active, "the clinic is not an active identity")
        self._wait_announced("clinic-0")
        return (
            f"proposal {number} passed on {passed}'s vote (3 of 4 yes); {CLINIC_LABEL} is a "
            "DAO member and keeps records on its node"
        )

    def register_practitioners(self) -> str:
        """The clinic registers the GP; hospitals 1 and 2 their specialists."""
        registrars = {GP: "clinic-0", ENDOCRINOLOGIST: "hospital-1", ER_DOCTOR: "hospital-2"}
        self._together(
            *(
                partial(
                    self._client(registrar).register,
                    *self.cast.person(person).keystore.admission_keys(),
                    role=person.role,
                    kind=person.kind,
                    label=person.label,
                )
                for person, registrar in registrars.items()
            )
        )
        lines = []
        for person, registrar in registrars.items():
            doctor, institution = self.cast.person(person), self._client(registrar)
            found = institution.identity(doctor.identity_id)
            check(
                found is not None and found.active and found.parent == institution.identity_id,
                f"{person.name} is not registered under {registrar}",
            )
            lines.append(f"{person.label} ({person.kind}) at {registrar}")
        return "; ".join(lines)

    def register_patients(self) -> str:
        """The clinic registers both patients, whose nodes announce themselves; the first pairs
        her CGM (a device identity whose parent is the patient)."""
        clinic, cgm = self._client("clinic-0"), self.cast.person(CGM)
        for party in ("patient-0", "patient-1"):
            clinic.register(*self._client(party).keystore.admission_keys(), role=HealthRole.PATIENT)
        self._settle()  # the patient's own node knows her before she signs
        self._patient.register(*cgm.keystore.admission_keys(), role=CGM.role, kind=CGM.kind)
        for party in ("patient-0", "patient-1"):
            self._wait_announced(party)
        self._settle()  # every custodian knows the CGM before it uploads
        device = self._patient.identity(cgm.identity_id)
        check(
            device is not None and device.parent == self._patient.identity_id,
            "the CGM is not paired to patient-0",
        )
        return "patient-0 and patient-1 registered by the clinic; patient-0's CGM paired"

    # -- 5..6: readings and consent ---------------------------------------------------------

    def _stream(self, readings: Sequence[Reading], readers: Sequence[bytes]) -> MeterSummary:
        """The CGM sends ``readings`` of patient-0 (``health.meter.run_meter``: accelerated
        by ``speed`` while they are past, sealed for the patient and ``readers``, kept by her
        node and the clinic's); their record ids join the story's readings."""
        cgm, patient = self.cast.party(CGM.name), self._patient
        target = MeterTarget(
            patient=patient.identity_id,
            device=cgm.identity_id,
            kind=TraceKind.CGM,
            custodians=(self.cast.custodian("patient-0"), self.cast.custodian("clinic-0")),
            readers=tuple(readers),
        )
        recorder = _RecordIds(cgm)
        summary = run_meter(
            readings,
            recorder,
            target,
            Pacing(speed=self.options.speed),
            start_ms=readings[0].time_ms,
            clock_ms=self._clock_ms,
            sleep=self._sleep,
            emit=lambda _line: None,
        )
        sent = zip(recorder.ids, readings, strict=True)
        self.state.readings += [(record, float(reading.mg_dl)) for record, reading in sent]
        return summary

    def stream_readings(self) -> str:
        """The CGM's last ``readings`` readings (``health.meter``'s simulated patient, 5
        minutes apart, the last one now) streamed at ``speed`` times real time; the patient
        reads the last one back."""
        count, speed, seed = self.options.readings, self.options.speed, self.options.seed
        start_ms = backfill_start(seed, TraceKind.CGM, self._clock_ms(), count)
        self.state.trace = GlucoseTrace(seed, TraceKind.CGM, start_ms)
        summary = self._stream(self.state.trace.take(count), ())
        listed = self._patient.list_records(limit=1000)
        check(len(listed) == count, f"{len(listed)} of {count} readings are on chain")
        record, value = self.state.readings[-1]
        back = fhir.reading_of(self._read(self._patient, record))
        check(back.mg_dl == value, f"the patient read {back.mg_dl} mg/dL, the CGM sent {value}")
        hours = count * CGM_INTERVAL_MS / 3_600_000
        return (
            f"{count} CGM readings ({hours:g} h of health.meter's simulated patient, sent in "
            f"{summary.real_s:.0f} s at up to {speed:g}x) encrypted, kept by patient-0's and "
            f"the clinic's nodes; patient-0 decrypts the last: {value:g} mg/dL"
        )

    def consent_to_gp(self) -> str:
        """The patient grants the GP all her data for treatment (30 days); the readings'
        keys are re-wrapped for the GP, who then reads one."""
        gp = self.cast.party(GP.name)
        records = [record for record, _ in self.state.readings]
        granted = self._patient.grant(
            gp.identity_id, expires_ms=self._block_time_ms() + GRANT_MS, records=records
        )
        self.state.gp_grant = granted.grant_id
        shared = len(granted.shared.delivered)
        check(shared == len(records), f"keys of {shared} of {len(records)} records re-wrapped")
        self._settle()
        record, value = self.state.readings[0]
        back = fhir.reading_of(self._read(gp, record))
        check(back.mg_dl == value, f"the GP read {back.mg_dl} mg/dL, the CGM sent {value}")
        return (
            f"grant {granted.grant_id.hex()[:12]}… (treatment, all data, 30 days); keys of "
            f"{shared} readings re-wrapped; the GP decrypts the first: {value:g} mg/dL"
        )

    # -- 7..9: plans and the referral -------------------------------------------------------

    def _upload_plan(
        self, author: HealthClient, content: fhir.CarePlanContent, keeper: str
    ) -> tuple[bytes, bytes]:
        """``author`` encrypts ``content`` as a record of patient-0 (kept by her node and
        ``keeper``'s); the record id and its ciphertext's SHA-256."""
        record = author.upload_record(
            fhir.loads(content.to_json()),
            owner=self._patient.identity_id,
            resource_type="CarePlan",
            code=PLAN_CODE,
            data_time_ms=self._clock_ms(),
            custodians=[self.cast.custodian("patient-0"), self.cast.custodian(keeper)],
            readers=[author.identity_id],
        )
        commitment = author.record(record)
        check(commitment is not None, f"plan record {record.hex()} is not on chain")
        assert commitment is not None
        return record, commitment.ciphertext_sha256

    def _set_plan(self, author: HealthClient, content: fhir.CarePlanContent, keeper: str) -> int:
        """Upload ``content`` and set it as patient-0's plan over the current version; the
        new version, checked on chain."""
        record, sha256 = self._upload_plan(author, content, keeper)
        items = [
            ScheduleItem(entry.item, ItemKind[entry.kind.upper()], entry.times_of_day_minutes)
            for entry in fhir.schedule_of(content)
        ]
        author.set_plan(
            self._patient.identity_id,
            base_version=self.state.plan_version,
            plan_record=record,
            plan_sha256=sha256,
            tz_offset_minutes=content.tz_offset_minutes,
            items=items,
        )
        self._settle()
        plan = self._plan_state()
        check(
            plan.get("version") == self.state.plan_version + 1
            and plan.get("practitioner") == author.identity_id.hex()
            and plan.get("plan_record") == record.hex(),
            f"the plan on chain is not the one set: {plan}",
        )
        self.state.plan_version += 1
        back = fhir.CarePlanContent.from_json(fhir.dumps(self._read(self._patient, record)))
        check(back == content, "the patient's decrypted plan differs from the doctor's")
        return self.state.plan_version

    def _refs(self, author: HealthClient) -> tuple[str, str]:
        return (
            f"Patient/{self._patient.identity_id.hex()}",
            f"Practitioner/{author.identity_id.hex()}",
        )

    def first_plan(self) -> str:
        """The GP's plan: glucose checks morning and evening (far from now: the next plan
        replaces it before they come due)."""
        gp = self.cast.party(GP.name)
        minute = (self._block_time_ms() // MINUTE_MS) % 1440
        times = tuple(sorted(((minute + 360) % 1440, (minute + 1080) % 1440)))
        patient_ref, author_ref = self._refs(gp)
        content = fhir.CarePlanContent(
            plan_id="plan-gp-1",
            patient_ref=patient_ref,
            author_ref=author_ref,
            medications=(),
            measurement_times_minutes=times,
            note="Check glucose twice a day; diet and exercise.",
        )
        version = self._set_plan(gp, content, "clinic-0")
        clock = ", ".join(f"{t // 60:02d}:{t % 60:02d}" for t in times)
        return (
            f"CarePlan v{version} encrypted (FHIR, only its hash and schedule on chain): "
            f"glucose checks at {clock} UTC; the patient decrypts it"
        )

    def referral(self) -> str:
        """The GP refers patient-0 to the endocrinologist; accepting is refused until the
        patient grants the referral; then it is accepted."""
        gp, endo = self.cast.party(GP.name), self.cast.party(ENDOCRINOLOGIST.name)
        patient = self._patient
        referral = gp.request_referral(
            patient.identity_id,
            endo.identity_id,
            specialty="endocrinology",
            reason_code=REFERRAL_REASON,
            expires_ms=self._block_time_ms() + 7 * DAY_MS,
        )
        self.state.referral = referral
        self._settle()
        refused = ""
        try:
            endo.accept_referral(referral)
        except ClientError as exc:
            refused = str(exc)
        check(refused != "", "the referral was accepted without the patient's grant")
        records = [record for record, _ in self.state.readings]
        granted = patient.grant(
            endo.identity_id,
            expires_ms=self._block_time_ms() + GRANT_MS,
            referral=referral,
            records=records,
        )
        self._settle()
        receipt = endo.accept_referral(referral)
        accepted = [e for e in receipt.events if e.name == "referral.accepted"]
        check(accepted != [], "no referral.accepted event")
        self._settle()
        state = gp.node.state("referral", f"r/{referral.hex()}").rendered
        check(
            isinstance(state, dict) and state.get("status") == "accepted",
            f"the referral is {state}",
        )
        return (
            f"referral {referral.hex()[:12]}… (endocrinology, E11.65) from the clinic's GP; "
            f"accepting it refused until patient-0 granted it (grant "
            f"{granted.grant_id.hex()[:12]}…, keys of {len(granted.shared.delivered)} "
            "readings re-wrapped); accepted by Dr Berg at hospital-1"
        )

    def change_plan(self) -> str:
        """The endocrinologist replaces the GP's plan: two medications and a glucose check,
        due at the first minute at least ``REMINDER_LEAD_MS`` after the block time."""
        endo = self.cast.party(ENDOCRINOLOGIST.name)
        watch = EventWatch(self._patient.node)
        watch.skip_to_tip()
        self.state.watch = watch
        due_ms = -(-(self._block_time_ms() + REMINDER_LEAD_MS) // MINUTE_MS) * MINUTE_MS
        minute = (due_ms // MINUTE_MS) % 1440
        self.state.due_ms = due_ms
        patient_ref, author_ref = self._refs(endo)
        content = fhir.CarePlanContent(
            plan_id="plan-endo-2",
            patient_ref=patient_ref,
            author_ref=author_ref,
            medications=(
                fhir.Medication(1, "Metformin", "500 mg", "6809", (minute,)),
                fhir.Medication(2, "Insulin glargine", "10 units", "274783", (minute,)),
            ),
            measurement_times_minutes=(minute,),
            target_low_mg_dl=70,
            target_high_mg_dl=180,
            note="Start basal insulin; check glucose before each dose.",
        )
        version = self._set_plan(endo, content, "hospital-1")
        return (
            f"CarePlan v{version} by Dr Berg over v{version - 1}: metformin 500 mg and insulin "
            f"glargine 10 units at {minute // 60:02d}:{minute % 60:02d} UTC, glucose check "
            "then too; the patient decrypts it"
        )

    # -- 10..12: reminders, an escalation, emergency access ---------------------------------

    def _watch(self) -> EventWatch:
        check(self.state.watch is not None, "no event watch: the plan was not changed")
        assert self.state.watch is not None
        return self.state.watch

    def _of_patient(self, extra: dict[str, str] | None = None) -> Callable[[dict[str, str]], bool]:
        wanted = {"patient": self._patient.identity_id.hex(), **(extra or {})}
        return lambda found: all(found.get(key) == value for key, value in wanted.items())

    def reminders(self) -> str:
        """The patient's node raises both doses and the measurement at their due time; the
        patient takes dose 1, and a CGM reading taken then closes the measurement."""
        watch, due_ms = self._watch(), self.state.due_ms
        timeout_s = max(0.0, (due_ms - self._block_time_ms()) / 1000) + 60
        doses = watch.wait_for("care.dose_due", 2, timeout_s, self._of_patient())
        watch.wait_for("care.measurement_due", 1, 30, self._of_patient())
        check(
            sorted(attributes(e)["item"] for e in doses) == ["1", "2"]
            and all(int(attributes(e)["due_ms"]) == due_ms for e in doses),
            f"the doses raised are not the plan's: {doses}",
        )
        self._patient.ack(1, due_ms)
        gp, endo = self.cast.party(GP.name), self.cast.party(ENDOCRINOLOGIST.name)
        time_ms = max(due_ms, self._clock_ms())
        trace = self.state.trace or GlucoseTrace(self.options.seed, TraceKind.CGM, time_ms)
        reading = trace.reading_at(time_ms)
        self._stream([reading], (gp.identity_id, endo.identity_id))
        closed = watch.wait_for("care.acknowledged", 2, 30, self._of_patient())
        items = sorted(attributes(e)["item"] for e in closed)
        check(items == ["0", "1"], f"the reminders closed are items {items}, not 0 and 1")
        clock = time.strftime("%H:%M", time.gmtime(due_ms / 1000))
        return (
            f"at {clock} UTC patient-0's node raised care.dose_due (items 1, 2) and "
            f"care.measurement_due (GET /events); she took dose 1 (care.ack), the CGM's "
            f"reading ({reading.mg_dl} mg/dL) closed the measurement; dose 2 not taken"
        )

    def escalation(self) -> str:
        """Dose 2, not taken within ``reminder_grace_ms``, escalates to the plan's
        practitioner; the closed reminders do not."""
        watch, endo = self._watch(), self.cast.party(ENDOCRINOLOGIST.name)
        grace_s = 60 + max(0.0, (self.state.due_ms - self._block_time_ms()) / 1000)
        escalated = watch.wait_for("care.escalated", 1, grace_s + 30, self._of_patient())
        found = attributes(escalated[0])
        check(
            found.get("item") == "2" and found.get("practitioner") == endo.identity_id.hex(),
            f"the escalation is not dose 2 to the endocrinologist: {found}",
        )
        watch.poll(wait_ms=0)
        others = [e for e in watch.backlog if e.get("kind") == "care.escalated"]
        check(others == [], f"closed reminders escalated too: {others}")
        path = f"a/{self._patient.identity_id.hex()}/02"
        adherence = self._patient.node.state("care", path).rendered
        check(isinstance(adherence, dict), f"no adherence of item 2 on chain: {adherence}")
        assert isinstance(adherence, dict)
        counts = ", ".join(f"{name} {adherence.get(name)}" for name in ("due", "done", "missed"))
        return (
            f"care.escalated to Dr Berg a minute after dose 2 was due; adherence of dose 2 "
            f"on chain: {counts}"
        )

    def emergency(self) -> str:
        """The emergency doctor opens break-glass access; the patient's node tells her."""
        er = self.cast.party(ER_DOCTOR.name)
        access = er.break_glass(self._patient.identity_id, EMERGENCY_REASON)
        opened = self._watch().wait_for(
            "consent.emergency_opened",
            1,
            30,
            self._of_patient({"practitioner": er.identity_id.hex()}),
        )
        found = attributes(opened[0])
        check(found.get("access") == access.hex(), f"another access was opened: {found}")
        hours = (int(found["expires_ms"]) - self._block_time_ms()) / 3_600_000
        return (
            f"Dr Ruiz (hospital-2, emergency medicine) broke the glass ({EMERGENCY_REASON}); "
            f"patient-0's node raised consent.emergency_opened; it closes by itself in "
            f"{hours:.0f} h"
        )

    # -- 13..15: revocation, a refusal, time in range ---------------------------------------

    def revocation(self) -> str:
        """The patient revokes the GP's grant; every node sees it ended."""
        patient, grant = self._patient, self.state.gp_grant
        patient.revoke(grant)
        self._settle()
        path = f"g/{patient.identity_id.hex()}/{grant.hex()}"
        for node in (patient.node, self.cast.party(GP.name).node):
            state = node.state("consent", path).rendered
            check(
                isinstance(state, dict) and state.get("state") == "revoked",
                f"the grant is not revoked on {node.base_url}: {state}",
            )
        return f"patient-0 revoked grant {grant.hex()[:12]}… to the GP (consent.revoked)"

    def refused_read(self) -> str:
        """The GP asks for a reading she read under her grant: the custodians refuse."""
        gp = self.cast.party(GP.name)
        record, _ = self.state.readings[0]
        try:
            self._read(gp, record)
        except RecordError as exc:
            check(exc.reason == "forbidden", f"refused for another reason: {exc.reason} {exc}")
            return f"the GP asks again for reading {record.hex()[:12]}…: refused ({exc.reason})"
        raise CheckFailed("the GP still reads patient-0's readings after the revocation")

    def time_in_range(self) -> str:
        """The endocrinologist reads and decrypts every reading (on hospital-1's node):
        the consensus time-in-range metrics."""
        endo = self.cast.party(ENDOCRINOLOGIST.name)
        values = [
            fhir.reading_of(self._read(endo, record)).mg_dl for record, _ in self.state.readings
        ]
        sent = [value for _, value in self.state.readings]
        check(values == sent, "the readings decrypted differ from those the CGM sent")
        stats = statistics(values)
        return (
            f"Dr Berg decrypts {stats.readings} readings on hospital-1's node: in range "
            f"{stats.in_range_pct:.0f}% (very low {stats.very_low_pct:.0f}%, low "
            f"{stats.low_pct:.0f}%, high {stats.high_pct:.0f}%, very high "
            f"{stats.very_high_pct:.0f}%), mean {stats.mean_mg_dl:.0f} mg/dL, GMI "
            f"{stats.gmi_pct:.1f}%, CV {stats.cv_pct:.0f}%"
        )
