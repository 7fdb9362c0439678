"""The health API on a running in-process node (``tests/health/web_node.py``): every route
over real HTTP, answers validated against their models, refusals as typed 4xx JSON,
sessions (unlock, wrong passphrase, expiry, rate limit), decrypted readings and glucose
statistics for a session whose identity holds a grant and refused without, contract
actions signed with the session's keystore, and the OpenAPI document."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pytest
from pydantic import BaseModel

from health import fhir, glucose
from health.client import HealthClient
from health.client.node_client import HttpClientTransport
from health.contracts.common import GLUCOSE_RESOURCE_TYPE, HealthRole
from health.web import models as m
from health.web import node_models as nm
from health.web.actions import ACTIONS
from health.web.routing import MAX_BODY_BYTES
from health.web.session import COOKIE_NAME, SessionLimits
from tests.health.schema_run import run_schemathesis
from tests.health.web_node import PASS, LiveNode

METER_CODE: Final = "http://loinc.org|41653-7"
VALUES: Final = (45, 62, 100, 150, 175, 200, 300, 120)
"""The readings the meter uploads: very low, low, in range x3, high, very high, in range."""
LIMITS: Final = SessionLimits(ttl_s=600, max_failures=3, failure_window_s=60)


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: Any


class Http:
    """Plain HTTP to the node (``http.client``), JSON in and out."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.transport = HttpClientTransport()

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = None,
        cookie: str | None = None,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> Reply:
        sent = dict(headers or {})
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            sent.setdefault("content-type", "application/json")
        if token is not None:
            sent["authorization"] = f"Bearer {token}"
        if cookie is not None:
            sent["cookie"] = f"{COOKIE_NAME}={cookie}"
        import http.client  # noqa: PLC0415

        host = self.url.removeprefix("http://")
        connection = http.client.HTTPConnection(host, timeout=60)
        try:
            connection.request(method, path, body=data, headers=sent)
            response = connection.getresponse()
            payload = response.read()
            got = {k.lower(): v for k, v in response.getheaders()}
        finally:
            connection.close()
        document = (
            json.loads(payload) if payload and "json" in got.get("content-type", "") else payload
        )
        return Reply(response.status, got, document)

    def get(self, path: str, model: type[BaseModel], **kw: Any) -> Any:
        """A 200 answer, validated by ``model`` (exactly its fields)."""
        reply = self.call("GET", path, **kw)
        assert reply.status == 200, (path, reply.status, reply.body)
        return model.model_validate(reply.body)

    def refused(self, reply: Reply, status: int, reason: str | None = None) -> str:
        """``reply`` is the typed JSON error ``status``; its message."""
        assert reply.status == status, (reply.status, reply.body)
        error = m.ErrorOut.model_validate(reply.body)
        if reason is not None:
            assert error.reason == reason, error
        return error.error

    def unlock(self, keystore: str, passphrase: str = PASS) -> str:
        reply = self.call(
            "POST", "/health/session", {"keystore": keystore, "passphrase": passphrase}
        )
        assert reply.status == 201, reply.body
        return m.SessionOut.model_validate(reply.body).token

    def act(self, token: str, action: str, fields: dict[str, Any]) -> m.ActionOut:
        reply = self.call("POST", f"/health/actions/{action}", fields, token=token)
        assert reply.status == 200, reply.body
        return m.ActionOut.model_validate(reply.body)


@dataclass
class World:
    node: LiveNode
    http: Http
    hospital: HealthClient
    patient: HealthClient
    doctor: HealthClient
    nurse: HealthClient
    device: HealthClient
    readings: list[tuple[bytes, int, int]]

    @property
    def patient_hex(self) -> str:
        return self.patient.identity_id.hex()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with LiveNode(tmp_path_factory.mktemp("web"), LIMITS) as node:
        hospital = node.client(node.keystore("hospital-0", HealthRole.INSTITUTION, node.hospital))
        patient = node.client(node.keystore("patient", HealthRole.PATIENT))
        doctor = node.client(node.keystore("doctor", HealthRole.PRACTITIONER))
        nurse = node.client(node.keystore("nurse", HealthRole.PRACTITIONER))
        device = node.client(node.keystore("meter", HealthRole.DEVICE))
        hospital.register(*patient.keystore.admission_keys(), role=HealthRole.PATIENT)
        for who, label in ((doctor, "Dr Who"), (nurse, "Nurse Joy")):
            hospital.register(
                *who.keystore.admission_keys(),
                role=HealthRole.PRACTITIONER,
                kind="endocrinology",
                label=label,
            )
        patient.register(
            *device.keystore.admission_keys(), role=HealthRole.DEVICE, kind="glucose_meter"
        )
        readings = []
        start = node.chain.now_ms() - len(VALUES) * 300_000
        custodians = [(node.custodian_party.id, node.url)]
        for index, value in enumerate(VALUES):
            time_ms = start + index * 300_000
            content = fhir.glucose_observation(
                observation_id=f"r{index}",
                patient_ref="Patient/p",
                mg_dl=value,
                time_ms=time_ms,
                device="glucose_meter",
            )
            record = device.upload_record(
                content,
                owner=patient.identity_id,
                resource_type=GLUCOSE_RESOURCE_TYPE,
                code=METER_CODE,
                data_time_ms=time_ms,
                custodians=custodians,
            )
            readings.append((record, time_ms, value))
        yield World(node, Http(node.url), hospital, patient, doctor, nurse, device, readings)


def window(world: World) -> str:
    now = world.node.chain.now_ms()
    return f"from_ms={now - 86_400_000}&to_ms={now}"


# -- the document ----------------------------------------------------------------------------


def test_the_openapi_document_describes_every_route_the_node_serves(world: World) -> None:
    reply = world.http.call("GET", "/openapi.json")
    assert reply.status == 200
    document = reply.body
    assert document["openapi"] == "3.1.0"
    paths = document["paths"]
    assert world.node.web is not None
    for spec in world.node.web.specs():
        assert spec.method.lower() in paths[spec.path], spec.path
    node_routes = (
        *("/status", "/health", "/metrics", "/blocks/{height}", "/blocks/latest", "/events"),
        *("/state/{module}/{path}", "/state/{module}", "/tx", "/tx/{hash}"),
        *("/accounts/{key}/nonce", "/records/{id}", "/records/keys", "/records/fetch"),
    )
    for path in node_routes:
        assert path in paths, path
    assert {f"/health/actions/{name}" for name in ACTIONS} <= set(paths)
    schemas = document["components"]["schemas"]
    text = json.dumps(document)
    for ref in {part.split('"')[0] for part in text.split('"$ref": "#/components/schemas/')[1:]}:
        assert ref in schemas, ref
    # one source of truth: the body schema is the model's own
    grant = schemas["GrantAction"]
    assert grant["properties"]["grantee"]["pattern"] == m.HEX32_INPUT_PATTERN
    assert grant["additionalProperties"] is False
    readings = paths["/health/patients/{id}/readings"]["get"]
    assert {p["name"] for p in readings["parameters"]} == {"id", "from_ms", "to_ms", "limit"}
    assert set(readings["responses"]) == {"200", "400", "401", "403", "404", "503"}
    assert readings["security"] == [{"bearer": []}, {"cookie": []}]


# -- reads -----------------------------------------------------------------------------------


def test_identities_institutions_and_children(world: World) -> None:
    http = world.http
    patient = http.get(f"/health/identities/{world.patient_hex}", m.IdentityOut)
    assert patient.role == "patient" and patient.parent == world.hospital.identity_id.hex()
    institutions = http.get("/health/institutions", m.InstitutionsOut)
    assert [i.label for i in institutions.institutions] == ["Hospital 0"]
    assert institutions.institutions[0].member.status == "active"
    children = http.get(
        f"/health/identities/{world.hospital.identity_id.hex()}/children", m.ChildrenOut
    )
    labels = {child.label for child in children.children if child.role == "practitioner"}
    assert labels == {"Dr Who", "Nurse Joy"} and not children.truncated
    page = http.get(
        f"/health/identities/{world.hospital.identity_id.hex()}/children?limit=1", m.ChildrenOut
    )
    assert len(page.children) == 1 and page.truncated
    devices = http.get(f"/health/identities/{world.patient_hex}/children", m.ChildrenOut)
    assert [d.kind for d in devices.children] == ["glucose_meter"]
    http.refused(http.call("GET", f"/health/identities/{'ab' * 32}"), 404, "not_found")
    http.refused(http.call("GET", "/health/identities/xyz"), 400, "malformed")


def test_listing_queries_are_validated_into_typed_400s(world: World) -> None:
    http, base = world.http, f"/health/identities/{world.hospital.identity_id.hex()}/children"
    for query in ("limit=0", "limit=501", "limit=ten", "limit=1&colour=red"):
        message = http.refused(http.call("GET", f"{base}?{query}"), 400, "malformed")
        assert message.startswith("query ")
    http.refused(http.call("GET", "/health/dao?x=1"), 400, "malformed")
    http.refused(http.call("GET", "/health/dao/proposals?status=pending"), 400, "malformed")
    http.refused(http.call("GET", "/health/nowhere"), 404)  # the node's own 404, JSON too


def test_the_dao_and_the_network(world: World) -> None:
    dao = world.http.get("/health/dao", m.DaoOut)
    assert dao.total_power == 10 and dao.total_weight == 1
    assert dao.validators[0].label == "Hospital 0"
    assert dao.params["quorum_pct"] >= 1
    network = world.http.get("/health/network", m.NetworkOut)
    status = world.http.get("/status", nm.StatusOut)
    assert network.chain_id == status.chain_id and network.height >= status.height - 1
    assert network.validators == dao.validators and network.peers == []
    assert network.window_blocks >= 2 and network.block_interval_ms is not None
    assert network.block_interval_ms > 0 and network.throughput_tx_per_s is not None


# -- sessions --------------------------------------------------------------------------------


def test_a_session_unlocks_a_keystore_and_ends(world: World) -> None:
    http = world.http
    reply = http.call("POST", "/health/session", {"keystore": "patient", "passphrase": PASS})
    assert reply.status == 201
    session = m.SessionOut.model_validate(reply.body)
    assert session.id == world.patient_hex and session.role == "patient"
    cookie = reply.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE_NAME}={session.token};")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Max-Age=600" in cookie
    me = http.get("/health/me", m.MeOut, token=session.token)
    assert me.identity is not None and me.identity.id == world.patient_hex
    assert http.get("/health/me", m.MeOut, cookie=session.token).id == me.id
    ended = http.call("DELETE", "/health/session", token=session.token)
    assert ended.status == 200 and ended.body == {"ended": True}
    assert "Max-Age=0" in ended.headers["set-cookie"]
    http.refused(http.call("GET", "/health/me", token=session.token), 401, "unauthorized")
    http.refused(http.call("GET", "/health/me"), 401, "unauthorized")
    assert http.call("DELETE", "/health/session").body == {"ended": False}


def test_a_session_expires(world: World) -> None:
    http = world.http
    token = http.unlock("patient")
    world.node.monotonic_offset_s += LIMITS.ttl_s - 1
    assert http.get("/health/me", m.MeOut, token=token).expires_in_s <= 1
    world.node.monotonic_offset_s += 1
    message = http.refused(http.call("GET", "/health/me", token=token), 401, "unauthorized")
    assert "expired" in message


def test_failed_unlocks_are_rate_limited_per_client(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    http, secret = world.http, "hunter2-secret"
    for keystore, passphrase in (("patient", secret), ("nobody", PASS), ("patient", "x")):
        reply = http.call(
            "POST", "/health/session", {"keystore": keystore, "passphrase": passphrase}
        )
        http.refused(reply, 401, "wrong_passphrase")
        assert secret not in json.dumps(reply.body)  # never echoed
    assert "failed unlock" in caplog.text and secret not in caplog.text  # nor logged
    blocked = http.call("POST", "/health/session", {"keystore": "patient", "passphrase": PASS})
    http.refused(blocked, 429, "rate_limited")
    assert 1 <= int(blocked.headers["retry-after"]) <= LIMITS.failure_window_s
    world.node.monotonic_offset_s += LIMITS.failure_window_s
    assert http.unlock("patient")


def test_session_bodies_are_validated(world: World) -> None:
    http = world.http
    for body in (
        {"keystore": "../etc/passwd", "passphrase": "x"},
        {"keystore": ".hidden", "passphrase": "x"},
        {"keystore": "patient"},
        {"keystore": "patient", "passphrase": "x", "extra": 1},
        {"keystore": "patient", "passphrase": 7},
    ):
        http.refused(http.call("POST", "/health/session", body), 400, "malformed")
    bad_json = http.call(
        "POST", "/health/session", raw=b"{", headers={"content-type": "application/json"}
    )
    http.refused(bad_json, 400, "malformed")
    form = http.call(
        "POST",
        "/health/session",
        raw=b"keystore=patient",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    http.refused(form, 415, "unsupported_media_type")
    big = http.call(
        "POST",
        "/health/session",
        raw=b" " * (MAX_BODY_BYTES + 1),
        headers={"content-type": "application/json"},
    )
    http.refused(big, 413, "too_large")


# -- consent, readings and statistics ------------------------------------------------------


def test_readings_need_a_grant_and_are_decrypted_on_this_node(world: World) -> None:
    http, patient = world.http, world.patient_hex
    doctor = http.unlock("doctor")
    readings_path = f"/health/patients/{patient}/readings?{window(world)}"
    http.refused(http.call("GET", readings_path), 401, "unauthorized")
    http.refused(http.call("GET", readings_path, token=doctor), 403, "forbidden")
    stats_path = f"/health/patients/{patient}/glucose-stats?{window(world)}"
    http.refused(http.call("GET", stats_path, token=doctor), 403, "forbidden")
    # the patient reads its own readings: decrypted with its keys
    own = http.get(readings_path, m.ReadingsOut, token=http.unlock("patient"))
    assert [r.mg_dl for r in own.readings] == list(VALUES) and own.unreadable == []
    # the patient grants through the API: the covered records' keys go to the custodian
    grant = http.act(
        http.unlock("patient"),
        "grant",
        {
            "grantee": world.doctor.identity_id.hex(),
            "expires_ms": world.node.chain.now_ms() + 86_400_000,
        },
    )
    assert grant.ok and grant.code == "ok" and grant.height > 0
    assert grant.result["shared_records"] == len(VALUES) and grant.result["share_failures"] == 0
    got = http.get(readings_path, m.ReadingsOut, token=doctor)
    assert [(bytes.fromhex(r.record), r.time_ms, r.mg_dl) for r in got.readings] == [
        (record, time_ms, float(value)) for record, time_ms, value in world.readings
    ]
    stats = http.get(stats_path, m.GlucoseStatsOut, token=doctor)
    expected = glucose.statistics(VALUES)
    assert stats.readings == len(VALUES) and stats.stats is not None
    assert stats.stats.in_range_pct == pytest.approx(expected.in_range_pct)
    assert stats.stats.very_low_pct == pytest.approx(expected.very_low_pct)
    assert stats.goals_met == expected.goals_met()
    assert [a.level for a in stats.alerts] == ["hypo_2", "hypo_1", "hyper_1", "hyper_2"]
    # another practitioner, without a grant, is still refused
    http.refused(http.call("GET", readings_path, token=http.unlock("nurse")), 403, "forbidden")
    # the consent routes show the grant
    grants = http.get(f"/health/patients/{patient}/grants", m.GrantsOut)
    assert [g.id for g in grants.grants] == [grant.result["grant"]]
    mine = http.get(
        f"/health/practitioners/{world.doctor.identity_id.hex()}/patients",
        m.PractitionerPatientsOut,
    )
    assert [p.patient for p in mine.patients] == [patient]
    # revoked: the doctor can read no more, and the audit log shows who read what
    revoke = http.act(http.unlock("patient"), "revoke", {"grant": grant.result["grant"]})
    assert revoke.ok and revoke.events[0].kind == "consent.revoked"
    http.refused(http.call("GET", readings_path, token=doctor), 403, "forbidden")
    assert (
        http.get(
            f"/health/practitioners/{world.doctor.identity_id.hex()}/patients",
            m.PractitionerPatientsOut,
        ).patients
        == []
    )
    read = {record.hex() for record, _, _ in world.readings}
    audit = wait_for_audit(world, world.doctor.identity_id.hex(), read)
    assert {e.record for e in audit.entries if e.reader == world.doctor.identity_id.hex()} == read


def wait_for_audit(world: World, reader: str, records: set[str] | None = None) -> m.AuditOut:
    """The patient's audit log once the custodian's batches with ``reader``'s reads — of
    every one of ``records``, if given, else of any — are on chain (the custodian flushes
    every 50 ms of the node's time, a read may land in the next batch: bounded real
    waits)."""
    import time  # noqa: PLC0415

    for _ in range(100):
        world.node.advance(1_000)
        audit: m.AuditOut = world.http.get(
            f"/health/patients/{world.patient_hex}/audit", m.AuditOut
        )
        read = {entry.record for entry in audit.entries if entry.reader == reader}
        if read and (records is None or records <= read):
            return audit
        time.sleep(0.05)
    raise AssertionError("the reader's audit entries were not all committed")


# -- care, referrals, governance: actions and their reads ---------------------------------


def test_a_plan_set_by_the_doctor_raises_reminders_the_patient_acknowledges(world: World) -> None:
    http, patient = world.http, world.patient_hex
    doctor, me = http.unlock("doctor"), http.unlock("patient")
    expires = world.node.chain.now_ms() + 86_400_000
    grant = http.act(
        me, "grant", {"grantee": world.doctor.identity_id.hex(), "expires_ms": expires}
    )
    assert http.get(f"/health/patients/{patient}/plan", m.PlanOut).plan is None
    now = world.node.chain.now_ms()
    minute = (now // 60_000 + 2) % 1440  # due two minutes from now (UTC: offset 0)
    items = [{"item": 1, "kind": "measurement", "times_of_day_minutes": [minute]}]
    body = {"patient": patient, "base_version": 0, "items": items}
    plan_set = http.act(doctor, "set_plan", body)
    assert plan_set.ok, plan_set.log
    plan = http.get(f"/health/patients/{patient}/plan", m.PlanOut).plan
    assert (
        plan is not None
        and plan.version == 1
        and plan.plan_record == plan_set.result["plan_record"]
    )
    assert plan.practitioner == world.doctor.identity_id.hex()
    again = http.call(
        "POST", "/health/actions/set_plan", body, token=doctor
    )  # base version 0 again
    assert again.status == 200 and again.body["ok"] is False and again.body["code"] == "conflict"
    world.node.advance(240_000)
    reminders = http.get(f"/health/patients/{patient}/reminders?from_ms={now}", m.RemindersOut)
    due = [r for r in reminders.reminders if r.item == 1]
    assert due and due[0].status == "open" and due[0].kind == "measurement"
    ack = http.act(me, "ack", {"item": 1, "due_ms": due[0].due_ms})
    assert ack.ok
    reminders = http.get(f"/health/patients/{patient}/reminders?from_ms={now}", m.RemindersOut)
    assert [r.status for r in reminders.reminders if r.due_ms == due[0].due_ms] == ["done"]
    adherence = http.get(f"/health/patients/{patient}/adherence", m.AdherenceOut)
    assert adherence.plan_version == 1
    assert [(a.item, a.due, a.done, a.done_pct) for a in adherence.items] == [(1, 1, 1, 100.0)]
    http.act(me, "revoke", {"grant": grant.result["grant"]})


def test_referrals_in_and_out(world: World) -> None:
    http, patient = world.http, world.patient_hex
    doctor, me = http.unlock("doctor"), http.unlock("patient")
    expires = world.node.chain.now_ms() + 86_400_000
    grant = http.act(
        me,
        "grant",
        {"grantee": world.doctor.identity_id.hex(), "expires_ms": expires, "share_records": False},
    )
    assert grant.result["shared_records"] == 0
    made = http.act(
        doctor,
        "request_referral",
        {"patient": patient, "to": world.nurse.identity_id.hex(), "specialty": "diabetology",
         "reason_code": "sct|44054006", "expires_ms": expires},
    )  # fmt: skip
    assert made.ok and len(made.result["referral"]) == 64
    out = http.get(
        f"/health/practitioners/{world.doctor.identity_id.hex()}/referrals",
        m.PractitionerReferralsOut,
    )
    assert [r.id for r in out.outgoing] == [made.result["referral"]] and out.incoming == []
    into = http.get(
        f"/health/practitioners/{world.nurse.identity_id.hex()}/referrals",
        m.PractitionerReferralsOut,
    )
    assert [(r.id, r.status) for r in into.incoming] == [(made.result["referral"], "requested")]
    declined = http.act(
        http.unlock("nurse"), "decline_referral", {"referral": made.result["referral"]}
    )
    assert declined.ok
    mine = http.get(f"/health/patients/{patient}/referrals", m.PatientReferralsOut)
    assert [r.status for r in mine.referrals] == ["declined"]
    http.act(me, "revoke", {"grant": grant.result["grant"]})


def test_a_member_proposes_and_votes(world: World) -> None:
    http = world.http
    member = http.unlock("hospital-0")
    proposed = http.act(
        member,
        "propose",
        {"kind": "set_param", "name": "quorum_pct", "value": 60, "reason": "more"},
    )
    assert proposed.ok
    number = proposed.result["proposal"]
    open_ = http.get("/health/dao/proposals?status=open", m.ProposalsOut)
    assert [(p.id, p.kind, p.status) for p in open_.proposals] == [(number, "set_param", "open")]
    assert open_.proposals[0].body == {"name": "quorum_pct", "value": 60}
    voted = http.act(member, "vote", {"proposal": number, "choice": "yes"})
    assert voted.ok
    assert http.get("/health/dao/proposals", m.ProposalsOut).proposals == []
    passed = http.get("/health/dao/proposals?status=passed", m.ProposalsOut).proposals
    assert [(p.id, p.ballots[0].choice) for p in passed] == [(number, "yes")]
    assert http.get("/health/dao", m.DaoOut).params["quorum_pct"] == 60
    # a patient is no member: the chain refuses at admission
    refused = http.call(
        "POST",
        "/health/actions/vote",
        {"proposal": number, "choice": "no"},
        token=http.unlock("patient"),
    )
    http.refused(refused, 409, "conflict")
    # a proposal that lacks its fields never reaches the chain
    lacking = http.call("POST", "/health/actions/propose", {"kind": "set_power"}, token=member)
    http.refused(lacking, 400, "malformed")


def test_actions_need_a_session_and_a_valid_body(world: World) -> None:
    http = world.http
    http.refused(
        http.call("POST", "/health/actions/ack", {"item": 1, "due_ms": 1}), 401, "unauthorized"
    )
    token = http.unlock("patient")
    for body in (
        {"item": 256, "due_ms": 1},
        {"item": "1", "due_ms": 1},
        {"item": 1},
        {"item": 1, "due_ms": 1, "x": 0},
    ):
        http.refused(http.call("POST", "/health/actions/ack", body, token=token), 400, "malformed")
    http.refused(http.call("POST", "/health/actions/fly", {}, token=token), 404)
    http.refused(http.call("GET", "/health/actions/ack", token=token), 405)
    failed = http.call("POST", "/health/actions/ack", {"item": 9, "due_ms": 1}, token=token)
    assert failed.status == 200 and failed.body["ok"] is False  # committed, refused by care
    assert m.ActionOut.model_validate(failed.body).code == "not_found"


def test_a_patient_sets_its_alert_policy_and_unpairs_its_device(world: World) -> None:
    http = world.http
    token = http.unlock("patient")
    policy = http.act(token, "set_policy", {"share_alerts": True})
    assert [(e.kind, e.attributes["share_alerts"]) for e in policy.events] == [
        ("care.policy_set", "1")
    ]
    device = world.device.identity_id.hex()
    assert http.get(f"/health/identities/{device}", m.IdentityOut).active
    unpaired = http.act(token, "deactivate", {"identity": device})
    assert unpaired.ok and unpaired.events[0].kind == "identity.deactivated"
    assert not http.get(f"/health/identities/{device}", m.IdentityOut).active


# -- the node's own routes, as documented ----------------------------------------------------


def test_the_node_routes_answer_what_the_document_says(world: World) -> None:
    http = world.http
    status = http.get("/status", nm.StatusOut)
    http.get("/health", nm.HealthOut)
    block = http.get("/blocks/latest", nm.BlockOut)
    assert http.get(f"/blocks/{block.height}", nm.BlockOut) == block
    record, _, _ = world.readings[0]
    commitment = http.get(f"/records/{record.hex()}", nm.CommitmentOut)
    assert commitment.held_here and commitment.owner == world.patient_hex
    state = http.get(f"/state/identity/i/{world.patient_hex}", nm.StateOut)
    assert state.value["role"] == "patient"
    http.get("/state/identity?prefix=i&limit=2", nm.EntriesOut)
    events = http.get("/events?after=0&limit=5", nm.EventsOut)
    tx_hash = next(
        e.tx_hash for e in http.get("/events?after=0&limit=100", nm.EventsOut).events if e.tx_hash
    )
    http.get(f"/tx/{tx_hash}", nm.TxOut)
    nonce = http.get(f"/accounts/{world.patient.identity_id.hex()}/nonce", nm.NonceOut)
    assert nonce.next_nonce > 0 and events.height <= status.height + 10
    submitted = http.call("POST", "/tx", {"tx": "00"})  # not a transaction
    assert submitted.status == 400
    assert nm.TxSubmitOut.model_validate(submitted.body).accepted is False
    metrics = http.call("GET", "/metrics")
    assert metrics.status == 200 and metrics.headers["content-type"].startswith("text/plain")


# -- generated from the document ------------------------------------------------------------

SCHEMA_EXAMPLES: Final = 6
"""Generated requests per operation and mode (the short form; ``slow`` runs more)."""


def test_generated_requests_get_no_5xx_and_answers_match_the_document(tmp_path: Path) -> None:
    """Schemathesis against ``/openapi.json`` on a live node: valid and invalid inputs for
    every operation; no 5xx, every status documented, every body matching its schema.
    Session routes run with a patient's session (its own data, so 200s happen too)."""
    report = run_schemathesis(tmp_path, SCHEMA_EXAMPLES)
    assert report.failures == [], "\n\n".join(report.failures[:5])
    assert report.calls > 300 and report.statuses & {200, 201, 202}


@pytest.mark.slow
def test_generated_requests_longer(tmp_path: Path) -> None:
    report = run_schemathesis(tmp_path, 60)
    assert report.failures == [], "\n\n".join(report.failures[:5])
