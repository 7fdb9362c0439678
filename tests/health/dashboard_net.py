"""A health network of real node processes and its cast, for the dashboard's browser test.

``DashboardNet.create`` makes a ``bighealth testnet --health`` directory (four hospitals
running the validators, one patient node as an observer) with short consensus timeouts;
``start`` runs the node processes (``tests.runtime.localnet.LocalNet``: ``python -m node
run``, logs in each home) and waits for every API.

``prepare`` then sets the scene through ``health.client`` only, as apps would: Hospital 0
registers the endocrinologist Dr Ada Endo, Hospital 2 the GP Dr Sam Green and the patient,
who pairs a glucose meter; the meter uploads a day of readings (kept by Hospital 0's
custodian and the patient's own node); the patient consents to the GP, who encrypts a
first care plan and sets its schedule; Hospital 0 proposes a parameter change that
Hospitals 0 and 2 vote for. Every keystore a dashboard logs in with lives in the keystores
directory of the node it uses (``HOME/keystores/<name>.keystore``): the patient's on the
patient's node, the doctors' and Hospital 0's on Hospital 0's, Hospital 1's on its own.
"""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from health import fhir
from health.client import HealthClient, Keystore
from health.client.keystore import KDF_INTERACTIVE
from health.contracts.care import ItemKind, ScheduleItem
from health.contracts.common import HealthRole
from health.contracts.governance import Choice
from node.cli.health_net import DEFAULT_TESTNET_PASSPHRASE, HealthTestnet
from node.cli.home_commands import node_params
from node.cli.testnet import TestnetSpec, create_testnet
from node.home.config import parse_host_port
from node.runtime.system import SystemRng
from tests.runtime.localnet import FAST_CHAIN, LocalNet

PASSPHRASE: Final = DEFAULT_TESTNET_PASSPHRASE
KEYSTORES_DIR: Final = "keystores"
CHAIN_ID: Final = "dashboard-net"
MINUTE_MS: Final = 60_000
HOUR_MS: Final = 60 * MINUTE_MS
DAY_MS: Final = 24 * HOUR_MS
START_TIMEOUT_S: Final = 60.0
PLAN_CODE: Final = "http://snomed.info/sct|698360004"
"""SNOMED CT "Diabetes care plan"."""
PATIENT_NODE: Final = "observer-0"
READINGS: Final = 36
"""A meter reading every 40 minutes over the last day."""
PARAM: Final = ("emergency_access_ms", 12 * HOUR_MS)
"""What Hospital 0 proposes (a harmless change once it passes)."""


def reading_values(count: int) -> list[float]:
    """A plausible day of capillary glucose in mg/dL: a night near 110, a dawn rise,
    three meal peaks (one high), a low before dinner (one very low)."""
    values = []
    for index in range(count):
        hour = 24.0 * index / count
        value = 110 + 25 * math.exp(-(((hour - 6.5) / 1.5) ** 2))
        for meal, peak in ((8.0, 90.0), (13.0, 150.0), (19.5, 70.0)):
            value += peak * math.exp(-(((hour - meal - 1.0) / 1.1) ** 2))
        value -= 60 * math.exp(-(((hour - 17.0) / 0.6) ** 2))
        values.append(round(max(45.0, value), 1))
    return values


@dataclass
class Cast:
    """The parties' clients (each through the node it uses) and the facts the browser
    steps check."""

    clients: dict[str, HealthClient] = field(default_factory=dict)
    readings: list[tuple[int, float]] = field(default_factory=list)
    proposal: int = 0
    """Hospital 0's proposal with two votes for it."""
    open_proposal: int = 0
    """Hospital 0's proposal nobody voted on."""

    def id(self, name: str) -> str:
        """The hex identity id of a party."""
        return self.clients[name].identity_id.hex()


class DashboardNet(LocalNet):
    """The network and its cast (see the module docstring)."""

    @classmethod
    def create_health(cls, directory: Path) -> DashboardNet:
        """A health testnet directory: 4 hospital validators, 1 patient observer."""
        spec = TestnetSpec(
            validators=4,
            observers=1,
            chain_id=CHAIN_ID,
            genesis_time_ms=int(time.time() * 1000),
            params=node_params(
                timeout_propose_ms=1_000, timeout_prevote_ms=400, timeout_precommit_ms=400
            ),
            chain=FAST_CHAIN,
        )
        app = HealthTestnet(SystemRng(), clinics=0, kdf=KDF_INTERACTIVE)
        manifest = create_testnet(directory, spec, SystemRng(), app=app)
        return cls(directory, manifest)

    def url(self, name: str) -> str:
        """The API URL of node ``name``."""
        host, port = parse_host_port(self.node(name).api)
        return f"http://{host}:{port}"

    def start_all(self) -> None:
        """Start the validators, then (once they answer, so its first dials reach them) the
        patient's node; wait until every node reached height 2."""
        validators = [name for name in self.names if name != PATIENT_NODE]
        for name in validators:
            self.start(name)
        self.wait_until(
            lambda: all(self.status(name) is not None for name in validators),
            START_TIMEOUT_S,
            "the validators' APIs",
        )
        self.start(PATIENT_NODE)
        self.wait_for_heights(self.names, 2, START_TIMEOUT_S)

    def keystore_path(self, node: str, name: str) -> Path:
        """Where node ``node``'s dashboard finds the keystore ``name``."""
        directory = self.home(node) / KEYSTORES_DIR
        directory.mkdir(mode=0o700, exist_ok=True)
        return directory / f"{name}.keystore"

    def adopt_keystore(self, node: str, name: str) -> Path:
        """Move the testnet's keystore of ``name`` into ``node``'s keystores directory."""
        target = self.keystore_path(node, name)
        shutil.move(self.directory / "clients" / f"{name}.keystore", target)
        return target

    def party_client(self, node: str, keystore: Path) -> HealthClient:
        """A client of the party of ``keystore`` through ``node``, knowing every node as
        the custodian of its own party (hospitals by their genesis identities)."""
        opened = Keystore.open(keystore, PASSPHRASE)
        return HealthClient(self.url(node), opened, CHAIN_ID, receipt_timeout_s=60.0)

    # -- the scene --------------------------------------------------------------------------

    def prepare(self) -> Cast:
        """Set the scene described in the module docstring; the cast."""
        cast = Cast()
        for index in range(4):
            node = f"validator-{index}"
            cast.clients[f"hospital-{index}"] = self.party_client(
                node, self.adopt_keystore(node, f"hospital-{index}")
            )
        cast.clients["patient-0"] = self.party_client(
            PATIENT_NODE, self.adopt_keystore(PATIENT_NODE, "patient-0")
        )
        self._custodians(cast)
        self._register(cast)
        self._settle()
        self._readings(cast)
        self._first_plan(cast)
        self._proposal(cast)
        self._settle()
        return cast

    def _settle(self) -> None:
        """Wait until every node reached the highest height any of them has: what one node
        committed, the next transaction's node has applied (its checks read its own state)."""
        height = max(self.height(name) for name in self.names)
        self.wait_for_heights(self.names, height, START_TIMEOUT_S)

    def _custodians(self, cast: Cast) -> None:
        directory = {
            cast.clients[f"hospital-{index}"].identity_id: self.url(f"validator-{index}")
            for index in range(4)
        }
        directory[cast.clients["patient-0"].identity_id] = self.url(PATIENT_NODE)
        for client in cast.clients.values():
            for identity, url in directory.items():
                client.add_custodian(identity, url)

    def _new_party(
        self, cast: Cast, node: str, name: str, role: HealthRole
    ) -> tuple[HealthClient, Keystore]:
        path = self.keystore_path(node, name)
        keystore = Keystore.create(path, PASSPHRASE, name=name, role=role, kdf=KDF_INTERACTIVE)
        client = self.party_client(node, path)
        cast.clients[name] = client
        self._custodians(cast)
        return client, keystore

    def _register(self, cast: Cast) -> None:
        hospital0, hospital2 = cast.clients["hospital-0"], cast.clients["hospital-2"]
        _, endo = self._new_party(cast, "validator-0", "dr-endo", HealthRole.PRACTITIONER)
        hospital0.register(
            *endo.admission_keys(),
            role=HealthRole.PRACTITIONER,
            kind="endocrinology",
            label="Dr Ada Endo",
        )
        _, green = self._new_party(cast, "validator-2", "dr-green", HealthRole.PRACTITIONER)
        hospital2.register(
            *green.admission_keys(),
            role=HealthRole.PRACTITIONER,
            kind="general_practice",
            label="Dr Sam Green",
        )
        patient = cast.clients["patient-0"]
        hospital2.register(*patient.keystore.admission_keys(), role=HealthRole.PATIENT)
        self._settle()  # the patient's own node knows her before she pairs her meter
        _, meter = self._new_party(cast, PATIENT_NODE, "meter-0", HealthRole.DEVICE)
        patient.register(*meter.admission_keys(), role=HealthRole.DEVICE, kind="glucose_meter")

    def _readings(self, cast: Cast) -> None:
        meter, patient = cast.clients["meter-0"], cast.clients["patient-0"]
        now = int(time.time() * 1000)
        step = DAY_MS // READINGS
        custodians = [
            (patient.identity_id, self.url(PATIENT_NODE)),
            (cast.clients["hospital-0"].identity_id, self.url("validator-0")),
        ]
        for index, value in enumerate(reading_values(READINGS)):
            taken = now - DAY_MS + (index + 1) * step - 2 * MINUTE_MS
            observation = fhir.glucose_observation(
                observation_id=f"reading-{index}",
                patient_ref=f"Patient/{patient.identity_id.hex()}",
                mg_dl=value,
                time_ms=taken,
                device="glucose_meter",
                device_ref=f"Device/{meter.identity_id.hex()}",
            )
            meter.upload_record(
                observation,
                owner=patient.identity_id,
                resource_type="Observation",
                code=fhir.record_code("glucose_meter"),
                data_time_ms=taken,
                custodians=custodians,
            )
            cast.readings.append((taken, value))

    def _first_plan(self, cast: Cast) -> None:
        """The patient consents to the GP, who sets a first plan: glucose checks at 07:00
        and 19:00 UTC, metformin at 08:00."""
        patient, green = cast.clients["patient-0"], cast.clients["dr-green"]
        now = int(time.time() * 1000)
        patient.grant(green.identity_id, expires_ms=now + 30 * DAY_MS)
        self._settle()
        content = fhir.CarePlanContent(
            plan_id="plan-gp-1",
            patient_ref=f"Patient/{patient.identity_id.hex()}",
            author_ref=f"Practitioner/{green.identity_id.hex()}",
            medications=(fhir.Medication(1, "metformin", "500 mg", None, (8 * 60,)),),
            measurement_times_minutes=(7 * 60, 19 * 60),
        )
        record = green.upload_record(
            fhir.loads(content.to_json()),
            owner=patient.identity_id,
            resource_type="CarePlan",
            code=PLAN_CODE,
            data_time_ms=now,
            custodians=[
                (patient.identity_id, self.url(PATIENT_NODE)),
                (cast.clients["hospital-2"].identity_id, self.url("validator-2")),
            ],
            readers=[green.identity_id],
        )
        self._settle()
        commitment = green.record(record)
        assert commitment is not None
        items = [
            ScheduleItem(entry.item, ItemKind[entry.kind.upper()], entry.times_of_day_minutes)
            for entry in fhir.schedule_of(content)
        ]
        green.set_plan(
            patient.identity_id,
            base_version=0,
            plan_record=record,
            plan_sha256=commitment.ciphertext_sha256,
            tz_offset_minutes=0,
            items=items,
        )

    def _proposal(self, cast: Cast) -> None:
        """Hospital 0 proposes; Hospitals 0 and 2 vote yes (Hospital 1's vote passes it);
        Hospital 0 proposes again (left open)."""
        name, value = PARAM
        cast.proposal = cast.clients["hospital-0"].propose_set_param(
            name, value, reason="Emergency access for 12 hours instead of 24"
        )
        for voter in ("hospital-0", "hospital-2"):
            cast.clients[voter].vote(cast.proposal, Choice.YES)
        cast.open_proposal = cast.clients["hospital-0"].propose_set_param(
            "reminder_grace_ms", 30 * MINUTE_MS, reason="Escalate a missed dose after 30 minutes"
        )
