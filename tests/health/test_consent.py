"""Consent: grants, revocation, expiry, emergency access, and the access decision."""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from health.contracts.common import DAY_MS, Access, AccessBasis, HealthRole, Purpose
from health.contracts.consent import (
    MAX_ACTIVE_GRANTS_PER_PAIR,
    MAX_ACTIVE_GRANTS_PER_PATIENT,
    ConsentModule,
    GrantStatus,
    active_grant_count,
    break_glass_payload,
    emergency_key,
    find_access,
    get_emergency_access,
    get_grant,
    grant_key,
    grant_payload,
    list_emergency_accesses,
    list_grants,
    revoke_payload,
)
from health.contracts.identity import deactivate_payload
from node.errors import EncodeError
from node.types import ResultCode, TxReceipt
from tests.health.helpers import HealthChain, Party, attributes

HOUR_MS = 3600 * 1000
BLOCK_MS = 1000
"""The helper chain's block interval: a transaction runs 1 s after the last block."""
GLUCOSE = "http://loinc.org|41653-7"
HBA1C = "http://loinc.org|4548-4"


class StateScan:
    """The committed state of a test chain as a ``ScanReader`` (``find_access`` & co.)."""

    def __init__(self, chain: HealthChain) -> None:
        self._app = chain.app

    def get(self, key: bytes) -> bytes | None:
        return self._app.get(key)

    def iterate(self, prefix: bytes, limit: int) -> list[tuple[bytes, bytes]]:
        entries = [(k, v) for k, v in self._app.state_entries() if k.startswith(prefix)]
        return entries[:limit]


@dataclass
class World:
    """A chain with two hospitals' practitioners and a patient of hospital 0."""

    chain: HealthChain
    hospital: Party
    other_hospital: Party
    doctor: Party
    colleague: Party
    outsider: Party
    patient: Party


def make_world(params: dict[str, int] | None = None) -> World:
    chain = HealthChain(params=params or {})
    hospital, other = chain.members[0], chain.members[1]
    return World(
        chain=chain,
        hospital=hospital,
        other_hospital=other,
        doctor=chain.register(hospital, "dr-a", HealthRole.PRACTITIONER, "endocrinology", "A"),
        colleague=chain.register(hospital, "dr-b", HealthRole.PRACTITIONER, "nursing", "B"),
        outsider=chain.register(other, "dr-c", HealthRole.PRACTITIONER, "cardiology", "C"),
        patient=chain.register(hospital, "patient-a", HealthRole.PATIENT),
    )


@pytest.fixture
def world() -> World:
    return make_world()


def access_of(
    world: World,
    requester: Party,
    *,
    resource_type: str = "Observation",
    code: str = GLUCOSE,
    data_time_ms: int | None = None,
    purposes: Collection[Purpose] = (Purpose.TREATMENT,),
    now_ms: int | None = None,
) -> Access | None:
    chain = world.chain
    return find_access(
        StateScan(chain),
        patient=world.patient.id,
        requester=requester.id,
        resource_type=resource_type,
        code=code,
        data_time_ms=chain.time_ms if data_time_ms is None else data_time_ms,
        now_ms=chain.time_ms if now_ms is None else now_ms,
        purposes=purposes,
    )


def grant(world: World, grantee: Party, duration_ms: int = DAY_MS, **scope: Any) -> bytes:
    """The id of a grant of ``world.patient`` to ``grantee`` lasting ``duration_ms``."""
    expires_ms = world.chain.time_ms + BLOCK_MS + duration_ms
    payload = grant_payload(grantee.id, expires_ms=expires_ms, **scope)
    receipt = world.chain.ok(world.patient, "consent.grant", payload)
    return bytes.fromhex(attributes(receipt.events[0])["grant"])


def only_event(receipt: TxReceipt) -> dict[str, str]:
    assert len(receipt.events) == 1
    return attributes(receipt.events[0])


# -- grants and the access decision --------------------------------------------------------


def test_the_owner_reads_its_own_data_without_a_grant(world: World) -> None:
    assert access_of(world, world.patient) == Access(AccessBasis.OWNER, b"")
    assert access_of(world, world.doctor) is None


def test_a_grant_covers_exactly_its_scope(world: World) -> None:
    chain = world.chain
    start_ms = chain.time_ms
    expires_ms = start_ms + BLOCK_MS + DAY_MS
    payload = grant_payload(
        world.doctor.id,
        expires_ms=expires_ms,
        resource_types=("Observation", "CarePlan"),
        codes=(GLUCOSE,),
        data_from_ms=start_ms - HOUR_MS,
        data_to_ms=start_ms + HOUR_MS,
    )
    receipt = chain.ok(world.patient, "consent.grant", payload)
    event = only_event(receipt)
    assert receipt.events[0].name == "consent.granted"
    grant_id = bytes.fromhex(event["grant"])
    assert event["patient"] == world.patient.id.hex()
    assert event["grantee"] == world.doctor.id.hex()
    assert (event["purpose"], event["expires_ms"]) == ("treatment", str(expires_ms))

    assert access_of(world, world.doctor, data_time_ms=start_ms) == Access(
        AccessBasis.GRANT, grant_id
    )
    assert access_of(world, world.doctor, data_time_ms=start_ms - HOUR_MS) is not None
    assert access_of(world, world.doctor, data_time_ms=start_ms + HOUR_MS) is not None
    refusals: list[dict[str, Any]] = [
        {"resource_type": "MedicationRequest", "data_time_ms": start_ms},
        {"code": HBA1C, "data_time_ms": start_ms},
        {"data_time_ms": start_ms - HOUR_MS - 1},
        {"data_time_ms": start_ms + HOUR_MS + 1},
        {"purposes": (Purpose.RESEARCH,), "data_time_ms": start_ms},
    ]
    for refused in refusals:
        assert access_of(world, world.doctor, **refused) is None, refused
    # the grantee only: a colleague of the same hospital is not covered
    assert access_of(world, world.colleague, data_time_ms=start_ms) is None

    stored = get_grant(chain.app, world.patient.id, grant_id)
    assert stored is not None and stored.status is GrantStatus.ACTIVE
    assert stored.issued_ms == chain.time_ms and stored.codes == (GLUCOSE,)
    assert active_grant_count(chain.app, world.patient.id) == 1


def test_a_research_grant_serves_research_only(world: World) -> None:
    grant(world, world.doctor, purpose=Purpose.RESEARCH)
    assert access_of(world, world.doctor) is None
    access = access_of(world, world.doctor, purposes=(Purpose.RESEARCH, Purpose.TREATMENT))
    assert access is not None and access.basis is AccessBasis.GRANT


def test_an_institution_grant_covers_its_acting_practitioners_only(world: World) -> None:
    grant_id = grant(world, world.hospital)
    for practitioner in (world.doctor, world.colleague):
        assert access_of(world, practitioner) == Access(AccessBasis.GRANT, grant_id)
    assert access_of(world, world.hospital) == Access(AccessBasis.GRANT, grant_id)
    # a practitioner of another institution is not covered
    assert access_of(world, world.outsider) is None
    # nor is a practitioner its institution deactivated
    world.chain.ok(world.hospital, "identity.deactivate", deactivate_payload(world.colleague.id))
    assert access_of(world, world.colleague) is None
    assert access_of(world, world.doctor) is not None


def test_a_direct_grant_is_preferred_to_an_institution_grant(world: World) -> None:
    grant(world, world.hospital)
    direct = grant(world, world.doctor)
    assert access_of(world, world.doctor) == Access(AccessBasis.GRANT, direct)


def test_only_a_patient_grants_and_only_to_an_acting_practitioner_or_institution(
    world: World,
) -> None:
    chain = world.chain
    expires_ms = chain.time_ms + DAY_MS
    to_doctor = grant_payload(world.doctor.id, expires_ms=expires_ms)
    for sender in (world.doctor, world.hospital):
        receipt = chain.fails(sender, "consent.grant", to_doctor, ResultCode.UNAUTHORIZED)
        assert "patient" in receipt.log
    other_patient = chain.register(world.hospital, "patient-b", HealthRole.PATIENT)
    chain.fails(
        world.patient,
        "consent.grant",
        grant_payload(other_patient.id, expires_ms=expires_ms),
        ResultCode.UNAUTHORIZED,
    )
    chain.fails(
        world.patient,
        "consent.grant",
        grant_payload(bytes(32), expires_ms=expires_ms),
        ResultCode.NOT_FOUND,
    )
    chain.ok(world.hospital, "identity.deactivate", deactivate_payload(world.doctor.id))
    receipt = chain.fails(world.patient, "consent.grant", to_doctor, ResultCode.UNAUTHORIZED)
    assert "grantee" in receipt.log
    assert list_grants(StateScan(chain), world.patient.id) == []


def test_a_grant_lasts_at_most_max_grant_ms() -> None:
    world = make_world({"max_grant_ms": 10 * DAY_MS})
    chain = world.chain
    too_long = chain.time_ms + BLOCK_MS + 10 * DAY_MS + 1
    receipt = chain.fails(
        world.patient,
        "consent.grant",
        grant_payload(world.doctor.id, expires_ms=too_long),
        ResultCode.LIMIT_EXCEEDED,
    )
    assert "max_grant_ms" in receipt.log
    grant(world, world.doctor, duration_ms=10 * DAY_MS)  # exactly the limit is fine
    past = grant_payload(world.doctor.id, expires_ms=chain.time_ms + BLOCK_MS)
    chain.fails(world.patient, "consent.grant", past, ResultCode.INVALID_PAYLOAD)


@pytest.mark.parametrize(
    "scope",
    [
        {"resource_types": ("Observation", "Observation")},
        {"codes": (GLUCOSE, GLUCOSE)},
        {"data_from_ms": 2_000, "data_to_ms": 1_000},
        {"referral": bytes(5)},
    ],
)
def test_malformed_grants_are_refused(world: World, scope: dict[str, Any]) -> None:
    payload = grant_payload(world.doctor.id, expires_ms=world.chain.time_ms + DAY_MS, **scope)
    world.chain.fails(world.patient, "consent.grant", payload, ResultCode.INVALID_PAYLOAD)


def test_scope_lists_are_bounded_by_the_codec(world: World) -> None:
    expires_ms = world.chain.time_ms + DAY_MS
    types = tuple(f"Type{chr(65 + i)}" for i in range(17))
    with pytest.raises(EncodeError):
        grant_payload(world.doctor.id, expires_ms=expires_ms, resource_types=types)
    with pytest.raises(EncodeError):
        grant_payload(world.doctor.id, expires_ms=expires_ms, codes=tuple(map(str, range(33))))
    with pytest.raises(EncodeError):
        grant_payload(world.doctor.id, expires_ms=expires_ms, resource_types=("observation",))


def test_a_referral_grant_names_its_referral(world: World) -> None:
    referral = bytes(range(32))
    grant_id = grant(world, world.outsider, referral=referral)
    stored = get_grant(world.chain.app, world.patient.id, grant_id)
    assert stored is not None and stored.referral == referral


def test_grants_per_pair_are_bounded(world: World) -> None:
    chain = world.chain
    expires_ms = chain.time_ms + BLOCK_MS + DAY_MS
    txs = [
        chain.tx(
            world.patient,
            "consent.grant",
            grant_payload(world.doctor.id, expires_ms=expires_ms, codes=(f"c{i}",)),
        )
        for i in range(MAX_ACTIVE_GRANTS_PER_PAIR + 1)
    ]
    codes = [receipt.code for receipt in chain.run(*txs).receipts]
    assert codes == [ResultCode.OK] * MAX_ACTIVE_GRANTS_PER_PAIR + [ResultCode.LIMIT_EXCEEDED]
    # the last of them is still found: the scan covers the whole pair
    assert access_of(world, world.doctor, code=f"c{MAX_ACTIVE_GRANTS_PER_PAIR - 1}") is not None
    # another grantee is not limited by this pair
    grant(world, world.colleague)


def test_grants_per_patient_are_bounded(world: World) -> None:
    chain = world.chain
    grantees = [
        chain.register(world.hospital, f"dr-{i}", HealthRole.PRACTITIONER, "nursing", f"N{i}")
        for i in range(MAX_ACTIVE_GRANTS_PER_PATIENT // MAX_ACTIVE_GRANTS_PER_PAIR)
    ]
    expires_ms = chain.time_ms + BLOCK_MS + DAY_MS
    txs = [
        chain.tx(world.patient, "consent.grant", grant_payload(g.id, expires_ms=expires_ms))
        for g in grantees
        for _ in range(MAX_ACTIVE_GRANTS_PER_PAIR)
    ]
    assert all(r.code is ResultCode.OK for r in chain.run(*txs).receipts)
    assert active_grant_count(chain.app, world.patient.id) == MAX_ACTIVE_GRANTS_PER_PATIENT
    receipt = chain.fails(
        world.patient,
        "consent.grant",
        grant_payload(world.doctor.id, expires_ms=chain.time_ms + DAY_MS),
        ResultCode.LIMIT_EXCEEDED,
    )
    assert str(MAX_ACTIVE_GRANTS_PER_PATIENT) in receipt.log


# -- revocation and expiry -----------------------------------------------------------------


def test_the_patient_revokes_a_grant_at_once(world: World) -> None:
    chain = world.chain
    grant_id = grant(world, world.doctor, duration_ms=HOUR_MS)
    assert access_of(world, world.doctor) is not None
    receipt = chain.ok(world.patient, "consent.revoke", revoke_payload(world.patient.id, grant_id))
    assert receipt.events[0].name == "consent.revoked"
    assert only_event(receipt) == {
        "patient": world.patient.id.hex(),
        "grantee": world.doctor.id.hex(),
        "grant": grant_id.hex(),
    }
    assert access_of(world, world.doctor) is None
    stored = get_grant(chain.app, world.patient.id, grant_id)
    assert stored is not None and stored.status is GrantStatus.REVOKED
    assert stored.ended_ms == chain.time_ms
    assert active_grant_count(chain.app, world.patient.id) == 0
    # revoking cancelled the expiry: nothing happens when the grant would have expired
    assert chain.events(chain.advance(2 * HOUR_MS), "consent.") == []
    chain.fails(
        world.patient,
        "consent.revoke",
        revoke_payload(world.patient.id, grant_id),
        ResultCode.CONFLICT,
    )


def test_only_the_patient_revokes(world: World) -> None:
    chain = world.chain
    grant_id = grant(world, world.doctor)
    payload = revoke_payload(world.patient.id, grant_id)
    for sender in (world.doctor, world.hospital):
        chain.fails(sender, "consent.revoke", payload, ResultCode.UNAUTHORIZED)
    other_patient = chain.register(world.hospital, "patient-b", HealthRole.PATIENT)
    chain.fails(other_patient, "consent.revoke", payload, ResultCode.UNAUTHORIZED)
    chain.fails(
        other_patient,
        "consent.revoke",
        revoke_payload(other_patient.id, grant_id),
        ResultCode.NOT_FOUND,
    )
    assert access_of(world, world.doctor) == Access(AccessBasis.GRANT, grant_id)


def test_a_grant_expires_by_itself(world: World) -> None:
    chain = world.chain
    grant_id = grant(world, world.doctor, duration_ms=HOUR_MS)
    stored = get_grant(chain.app, world.patient.id, grant_id)
    assert stored is not None
    # past the expiry, find_access refuses even before the expiry task has run
    assert access_of(world, world.doctor, now_ms=stored.expires_ms - 1) is not None
    assert access_of(world, world.doctor, now_ms=stored.expires_ms) is None
    result = chain.advance(HOUR_MS - 1)
    assert chain.events(result, "consent.") == []
    result = chain.advance(1)  # the first block reaching the expiry runs the task
    [expired] = chain.events(result, "consent.expired")
    assert attributes(expired)["grant"] == grant_id.hex()
    assert attributes(expired)["patient"] == world.patient.id.hex()
    after = get_grant(chain.app, world.patient.id, grant_id)
    assert after is not None and after.status is GrantStatus.EXPIRED
    assert after.ended_ms == chain.time_ms
    assert access_of(world, world.doctor) is None
    chain.fails(
        world.patient,
        "consent.revoke",
        revoke_payload(world.patient.id, grant_id),
        ResultCode.CONFLICT,
    )


# -- emergency access ----------------------------------------------------------------------


def test_break_glass_opens_a_bounded_emergency_access(world: World) -> None:
    chain = world.chain
    assert access_of(world, world.outsider) is None
    receipt = chain.ok(
        world.outsider, "consent.break_glass", break_glass_payload(world.patient.id, "ETREAT")
    )
    opened = only_event(receipt)
    assert receipt.events[0].name == "consent.emergency_opened"
    access_id = bytes.fromhex(opened["access"])
    assert opened["patient"] == world.patient.id.hex()
    assert opened["practitioner"] == world.outsider.id.hex()
    assert opened["institution"] == world.other_hospital.id.hex()
    assert opened["expires_ms"] == str(chain.time_ms + DAY_MS)
    assert access_of(world, world.outsider) == Access(AccessBasis.EMERGENCY, access_id)
    assert access_of(world, world.outsider, resource_type="CarePlan", code="x") is not None
    assert access_of(world, world.outsider, purposes=(Purpose.RESEARCH,)) is None
    assert access_of(world, world.doctor) is None  # the one who broke the glass only
    chain.fails(
        world.outsider,
        "consent.break_glass",
        break_glass_payload(world.patient.id, "ETREAT"),
        ResultCode.CONFLICT,
    )
    result = chain.advance(DAY_MS)
    [closed] = chain.events(result, "consent.emergency_closed")
    assert attributes(closed)["access"] == access_id.hex()
    assert attributes(closed)["patient"] == world.patient.id.hex()
    assert access_of(world, world.outsider) is None
    stored = get_emergency_access(chain.app, world.patient.id, access_id)
    assert stored is not None and not stored.open and stored.closed_ms == chain.time_ms
    # once closed, it may be opened again (a new access)
    again = chain.ok(
        world.outsider, "consent.break_glass", break_glass_payload(world.patient.id, "ETREAT")
    )
    assert attributes(again.events[0])["access"] != access_id.hex()
    assert len(list_emergency_accesses(StateScan(chain), world.patient.id)) == 2


def test_only_acting_practitioners_break_the_glass(world: World) -> None:
    chain = world.chain
    payload = break_glass_payload(world.patient.id, "ETREAT")
    for sender in (world.patient, world.hospital):
        chain.fails(sender, "consent.break_glass", payload, ResultCode.UNAUTHORIZED)
    chain.fails(
        world.doctor,
        "consent.break_glass",
        break_glass_payload(world.doctor.id, "ETREAT"),
        ResultCode.UNAUTHORIZED,
    )
    chain.fails(
        world.doctor,
        "consent.break_glass",
        break_glass_payload(bytes(32), "ETREAT"),
        ResultCode.NOT_FOUND,
    )


def test_governance_can_disable_emergency_access() -> None:
    world = make_world({"emergency_access_ms": 0})
    receipt = world.chain.fails(
        world.doctor,
        "consent.break_glass",
        break_glass_payload(world.patient.id, "ETREAT"),
        ResultCode.UNAUTHORIZED,
    )
    assert "disabled" in receipt.log


def test_a_deactivated_practitioner_loses_its_emergency_access(world: World) -> None:
    chain = world.chain
    chain.ok(world.doctor, "consent.break_glass", break_glass_payload(world.patient.id, "E"))
    assert access_of(world, world.doctor) is not None
    chain.ok(world.hospital, "identity.deactivate", deactivate_payload(world.doctor.id))
    assert access_of(world, world.doctor) is None


# -- queries -------------------------------------------------------------------------------


def test_query_paths_and_the_fhir_consent_shape(world: World) -> None:
    chain = world.chain
    module = ConsentModule()
    grant_id = grant(world, world.doctor, resource_types=("Observation",))
    patient_hex, grant_hex = world.patient.id.hex(), grant_id.hex()
    key = module.query_key(f"g/{patient_hex}/{grant_hex}")
    assert key == grant_key(world.patient.id, grant_id)
    assert module.query_key(f"g/{patient_hex}") == b"consent/g/" + world.patient.id
    assert module.query_key("g") == b"consent/g/"
    value = chain.get(key)
    assert value is not None
    rendered = module.render(key, value)
    json.dumps(rendered)
    assert isinstance(rendered, dict)
    assert rendered["resourceType"] == "Consent"
    assert (rendered["id"], rendered["status"], rendered["state"]) == (
        grant_hex,
        "active",
        "active",
    )
    provision = rendered["provision"]
    assert isinstance(provision, dict)
    assert provision["class"] == ["Observation"] and provision["purpose"] == ["treatment"]
    assert provision["actor"] == [{"role": "grantee", "reference": world.doctor.id.hex()}]
    for bad in ("", "z/00", f"g/{patient_hex}/{grant_hex}/00", "g/abc", f"g/{grant_hex}x"):
        with pytest.raises(ValueError):
            module.query_key(bad)

    receipt = chain.ok(
        world.doctor, "consent.break_glass", break_glass_payload(world.patient.id, "E")
    )
    access_id = bytes.fromhex(attributes(receipt.events[0])["access"])
    key = module.query_key(f"e/{patient_hex}/{access_id.hex()}")
    assert key == emergency_key(world.patient.id, access_id)
    value = chain.get(key)
    assert value is not None
    assert module.render(key, value) == {
        "id": access_id.hex(),
        "patient": patient_hex,
        "practitioner": world.doctor.id.hex(),
        "institution": world.hospital.id.hex(),
        "reason_code": "E",
        "opened_ms": chain.time_ms,
        "expires_ms": chain.time_ms + DAY_MS,
        "open": True,
        "closed_ms": None,
    }
    index_key = module.query_key(f"x/{world.doctor.id.hex()}/{patient_hex}/{grant_hex}")
    index_value = chain.get(index_key)
    assert index_value is not None
    rendered_index = module.render(index_key, index_value)
    assert isinstance(rendered_index, dict) and rendered_index["grant"] == grant_hex


# -- the property: find_access agrees with a simple model -----------------------------------

TYPES = ("Observation", "CarePlan", "MedicationRequest")


@dataclass
class ModelGrant:
    grantee: int
    types: tuple[str, ...]
    purpose: Purpose
    expires_ms: int
    revoked: bool = False
    grant_id: bytes = b""


grant_op = st.tuples(
    st.just("grant"),
    st.integers(0, 3),  # grantee: doctor, colleague, outsider, hospital
    st.lists(st.sampled_from(TYPES), max_size=2, unique=True),
    st.sampled_from(Purpose),
    st.integers(1, 6).map(lambda n: n * 10_000),
)
revoke_op = st.tuples(st.just("revoke"), st.integers(0, 20))
advance_op = st.tuples(st.just("advance"), st.integers(1, 40).map(lambda n: n * 1_000))
operations = st.lists(st.one_of(grant_op, revoke_op, advance_op), max_size=12)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations)
def test_find_access_agrees_with_a_model(ops: list[tuple[Any, ...]]) -> None:
    world = make_world()
    chain = world.chain
    grantees = [world.doctor, world.colleague, world.outsider, world.hospital]
    institution_of = {0: 3, 1: 3, 2: None}  # requester index -> grantee index of its hospital
    grants: list[ModelGrant] = []
    for op in ops:
        if op[0] == "grant":
            _, who, types, purpose, duration_ms = op
            model = ModelGrant(who, tuple(types), purpose, chain.time_ms + BLOCK_MS + duration_ms)
            model.grant_id = grant(
                world,
                grantees[who],
                duration_ms,
                resource_types=model.types,
                purpose=model.purpose,
            )
            grants.append(model)
        elif op[0] == "revoke" and grants:
            target = grants[op[1] % len(grants)]
            block_ms = chain.time_ms + BLOCK_MS
            expect_ok = not target.revoked and block_ms < target.expires_ms
            receipt = chain.receipt(
                world.patient, "consent.revoke", revoke_payload(world.patient.id, target.grant_id)
            )
            assert (receipt.code is ResultCode.OK) == expect_ok, receipt.log
            target.revoked = target.revoked or expect_ok
        elif op[0] == "advance":
            chain.advance(op[1])
    now_ms = chain.time_ms
    for requester, party in enumerate(grantees[:3]):
        for resource_type in TYPES:
            allowed_by_model = any(
                not g.revoked
                and now_ms < g.expires_ms
                and g.purpose is Purpose.TREATMENT
                and (not g.types or resource_type in g.types)
                and g.grantee in (requester, institution_of[requester])
                for g in grants
            )
            access = access_of(world, party, resource_type=resource_type)
            assert (access is not None) == allowed_by_model, (requester, resource_type)
    active = sum(1 for g in grants if not g.revoked and now_ms < g.expires_ms)
    assert active_grant_count(chain.app, world.patient.id) == active
