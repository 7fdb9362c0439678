"""Referrals: requested under a treatment access, accepted only with the patient's grant
naming the referral, declined, answered with a record the specialist wrote, closed by the
referrer, or expired in block time."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from health.contracts.common import DAY_MS, HealthRole, derive_id
from health.contracts.consent import grant_payload, revoke_payload
from health.contracts.records import commit_payload, erase_payload
from health.contracts.referral import (
    MAX_REFERRAL_MS,
    REFERRAL_ID_DOMAIN,
    ReferralModule,
    ReferralStatus,
    accept_payload,
    answer_payload,
    close_payload,
    decline_payload,
    get_referral,
    index_keys,
    list_for_patient,
    list_incoming,
    list_outgoing,
    referral_key,
    request_payload,
)
from node.app.view import GasMeter, GasSchedule, MeteredReader
from node.types import ResultCode
from tests.health.helpers import HealthChain, Party, attributes

REASON = "http://snomed.info/sct|44054006"  # type 2 diabetes mellitus
NOTE_TYPE = "Composition"
NOTE_CODE = "http://loinc.org|11488-4"  # consult note


class Snapshot:
    """The committed state as a reader with bounded prefix scans."""

    def __init__(self, chain: HealthChain) -> None:
        self._entries = dict(chain.app.state_entries())

    def get(self, key: bytes) -> bytes | None:
        return self._entries.get(key)

    def iterate(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        return iter(sorted((k, v) for k, v in self._entries.items() if k.startswith(prefix)))


def reader(chain: HealthChain) -> MeteredReader:
    return MeteredReader(Snapshot(chain), GasMeter(10**12), GasSchedule())


class Referrals:
    """A GP of hospital-0 with a treatment grant from its patient; an endocrinologist and a
    colleague at hospital-1; a practitioner of hospital-2 with nothing to do with it."""

    def __init__(self, chain: HealthChain) -> None:
        self.chain = chain
        self.home, self.specialist_site, self.elsewhere = chain.members[:3]
        self.gp = self.practitioner(self.home, "gp", "general_practice")
        self.specialist = self.practitioner(self.specialist_site, "endo", "endocrinology")
        self.colleague = self.practitioner(self.specialist_site, "endo-2", "endocrinology")
        self.outsider = self.practitioner(self.elsewhere, "outsider", "cardiology")
        self.patient = chain.register(self.home, "patient-ref", HealthRole.PATIENT)
        self.grant(self.gp.id)
        self.records = 0

    def practitioner(self, institution: Party, name: str, specialty: str) -> Party:
        return self.chain.register(institution, name, HealthRole.PRACTITIONER, specialty, name)

    def grant(self, grantee: bytes, referral: bytes = b"") -> bytes:
        payload = grant_payload(
            grantee, expires_ms=self.chain.time_ms + 30 * DAY_MS, referral=referral
        )
        receipt = self.chain.ok(self.patient, "consent.grant", payload)
        (event,) = self.chain.events(receipt, "consent.granted")
        return bytes.fromhex(attributes(event)["grant"])

    def request(self, to: bytes | None = None, expires_in_ms: int = 14 * DAY_MS) -> bytes:
        payload = self.request_payload(to, expires_in_ms)
        receipt = self.chain.ok(self.gp, "referral.request", payload)
        referral_id = derive_id(REFERRAL_ID_DOMAIN, receipt.tx_hash)
        (event,) = self.chain.events(receipt, "referral.requested")
        assert attributes(event)["referral"] == referral_id.hex()
        return referral_id

    def request_payload(self, to: bytes | None = None, expires_in_ms: int = 14 * DAY_MS) -> bytes:
        return request_payload(
            self.patient.id,
            self.specialist.id if to is None else to,
            specialty="endocrinology",
            reason_code=REASON,
            expires_ms=self.chain.time_ms + 1_000 + expires_in_ms,
        )

    def accepted(self, to: bytes | None = None) -> bytes:
        referral_id = self.request(to)
        self.grant(self.specialist.id, referral_id)
        self.chain.ok(self.specialist, "referral.accept", accept_payload(referral_id))
        return referral_id

    def note(self, author: Party, owner: Party | None = None) -> bytes:
        """A consult note committed by ``author`` for the patient (or ``owner``)."""
        self.records += 1
        record = bytes([self.records]) * 32
        payload = commit_payload(
            record,
            (owner or self.patient).id,
            resource_type=NOTE_TYPE,
            code=NOTE_CODE,
            ciphertext_sha256=bytes(32),
            size_bytes=2_000,
            custodians=(self.specialist_site.id,),
            key_epoch=0,
            data_time_ms=self.chain.time_ms,
        )
        self.chain.ok(author, "records.commit", payload)
        return record

    def status(self, referral_id: bytes) -> ReferralStatus:
        referral = get_referral(self.chain.app, referral_id)
        assert referral is not None
        return referral.status


@pytest.fixture
def ref() -> Referrals:
    return Referrals(HealthChain())


# -- request -------------------------------------------------------------------------------------


def test_a_practitioner_with_treatment_access_refers_the_patient(ref: Referrals) -> None:
    receipt = ref.chain.ok(ref.gp, "referral.request", ref.request_payload())
    referral_id = derive_id(REFERRAL_ID_DOMAIN, receipt.tx_hash)
    (event,) = ref.chain.events(receipt, "referral.requested")
    assert {k: v for k, v in attributes(event).items() if k in ("patient", "from", "to")} == {
        "patient": ref.patient.id.hex(),
        "from": ref.gp.id.hex(),
        "to": ref.specialist.id.hex(),
    }
    referral = get_referral(ref.chain.app, referral_id)
    assert referral is not None
    assert referral.status is ReferralStatus.REQUESTED
    assert (referral.from_practitioner, referral.from_institution) == (ref.gp.id, ref.home.id)
    assert (referral.specialty, referral.reason_code) == ("endocrinology", REASON)
    assert referral.created_ms == ref.chain.time_ms and referral.accepted_by == b""
    for key in index_keys(referral):
        assert ref.chain.get(key) == b""
    state = reader(ref.chain)
    assert list_incoming(state, ref.specialist.id) == [referral]
    assert list_outgoing(state, ref.gp.id) == [referral]
    assert list_for_patient(state, ref.patient.id) == [referral]
    assert list_incoming(state, ref.colleague.id) == []


def test_a_request_needs_a_treatment_access_and_a_sound_target_and_expiry(ref: Referrals) -> None:
    chain = ref.chain
    fails = chain.fails
    fails(ref.outsider, "referral.request", ref.request_payload(), ResultCode.UNAUTHORIZED)
    fails(ref.patient, "referral.request", ref.request_payload(), ResultCode.UNAUTHORIZED)
    fails(ref.gp, "referral.request", ref.request_payload(ref.gp.id), ResultCode.INVALID_PAYLOAD)
    fails(ref.gp, "referral.request", ref.request_payload(bytes(32)), ResultCode.NOT_FOUND)
    to_patient = ref.request_payload(ref.patient.id)
    fails(ref.gp, "referral.request", to_patient, ResultCode.UNAUTHORIZED)
    too_long = ref.request_payload(expires_in_ms=MAX_REFERRAL_MS + 1)
    fails(ref.gp, "referral.request", too_long, ResultCode.LIMIT_EXCEEDED)
    past = ref.request_payload(expires_in_ms=-2_000)
    fails(ref.gp, "referral.request", past, ResultCode.INVALID_PAYLOAD)
    assert list_for_patient(reader(chain), ref.patient.id) == []
    # a referral to an institution is fine
    ref.request(ref.specialist_site.id)


# -- accept --------------------------------------------------------------------------------------


def test_accepting_requires_the_patients_grant_naming_the_referral(ref: Referrals) -> None:
    referral_id = ref.request()
    accept = accept_payload(referral_id)
    ref.chain.fails(ref.specialist, "referral.accept", accept, ResultCode.UNAUTHORIZED)
    ref.grant(ref.specialist.id)  # a treatment grant, but for no referral
    ref.chain.fails(ref.specialist, "referral.accept", accept, ResultCode.UNAUTHORIZED)
    other = ref.request()
    ref.grant(ref.specialist.id, other)  # a grant naming another referral
    ref.chain.fails(ref.specialist, "referral.accept", accept, ResultCode.UNAUTHORIZED)
    revoked = ref.grant(ref.specialist.id, referral_id)
    ref.chain.ok(ref.patient, "consent.revoke", revoke_payload(ref.patient.id, revoked))
    ref.chain.fails(ref.specialist, "referral.accept", accept, ResultCode.UNAUTHORIZED)
    grant = ref.grant(ref.specialist.id, referral_id)
    receipt = ref.chain.ok(ref.specialist, "referral.accept", accept)
    (event,) = ref.chain.events(receipt, "referral.accepted")
    assert attributes(event)["grant"] == grant.hex()
    assert attributes(event)["by"] == ref.specialist.id.hex()
    referral = get_referral(ref.chain.app, referral_id)
    assert referral is not None
    assert referral.status is ReferralStatus.ACCEPTED and referral.accepted_by == ref.specialist.id
    ref.chain.fails(ref.specialist, "referral.accept", accept, ResultCode.CONFLICT)


def test_only_the_target_accepts_even_with_a_grant(ref: Referrals) -> None:
    referral_id = ref.request()
    ref.grant(ref.colleague.id, referral_id)
    ref.grant(ref.outsider.id, referral_id)
    for stranger in (ref.colleague, ref.outsider):
        ref.chain.fails(
            stranger, "referral.accept", accept_payload(referral_id), ResultCode.UNAUTHORIZED
        )
    assert ref.status(referral_id) is ReferralStatus.REQUESTED


def test_a_practitioner_of_the_target_institution_accepts_under_its_grant(ref: Referrals) -> None:
    referral_id = ref.request(ref.specialist_site.id)
    ref.grant(ref.specialist_site.id, referral_id)
    accept = accept_payload(referral_id)
    ref.chain.fails(ref.outsider, "referral.accept", accept, ResultCode.UNAUTHORIZED)
    ref.chain.ok(ref.colleague, "referral.accept", accept)
    referral = get_referral(ref.chain.app, referral_id)
    assert referral is not None and referral.accepted_by == ref.colleague.id


def test_an_unknown_referral_is_not_found(ref: Referrals) -> None:
    ref.chain.fails(
        ref.specialist, "referral.accept", accept_payload(bytes(32)), ResultCode.NOT_FOUND
    )


# -- decline -------------------------------------------------------------------------------------


def test_the_target_declines_and_the_referral_no_longer_expires(ref: Referrals) -> None:
    referral_id = ref.request(expires_in_ms=DAY_MS)
    requested = get_referral(ref.chain.app, referral_id)
    assert requested is not None and ref.chain.get(requested.expiry_task) is not None
    decline = decline_payload(referral_id, "busy")
    ref.chain.fails(ref.outsider, "referral.decline", decline, ResultCode.UNAUTHORIZED)
    ref.chain.fails(ref.gp, "referral.decline", decline, ResultCode.UNAUTHORIZED)
    receipt = ref.chain.ok(ref.specialist, "referral.decline", decline)
    (event,) = ref.chain.events(receipt, "referral.declined")
    assert attributes(event)["reason_code"] == "busy"
    assert ref.status(referral_id) is ReferralStatus.DECLINED
    assert ref.chain.get(requested.expiry_task) is None  # the expiry left the queue
    assert not ref.chain.events(ref.chain.advance(2 * DAY_MS), "referral.")
    assert ref.status(referral_id) is ReferralStatus.DECLINED
    ref.chain.fails(ref.specialist, "referral.decline", decline, ResultCode.CONFLICT)


def test_an_accepted_referral_is_declined_by_its_accepter_only(ref: Referrals) -> None:
    referral_id = ref.request(ref.specialist_site.id)
    ref.grant(ref.specialist_site.id, referral_id)
    ref.chain.ok(ref.specialist, "referral.accept", accept_payload(referral_id))
    decline = decline_payload(referral_id)
    ref.chain.fails(ref.colleague, "referral.decline", decline, ResultCode.UNAUTHORIZED)
    ref.chain.ok(ref.specialist, "referral.decline", decline)
    assert ref.status(referral_id) is ReferralStatus.DECLINED


# -- answer and close ----------------------------------------------------------------------------


def test_the_specialist_answers_with_its_own_record_and_the_referrer_closes(
    ref: Referrals,
) -> None:
    referral_id = ref.accepted()
    by_gp = ref.note(ref.gp)
    other_patient = ref.chain.register(ref.specialist_site, "patient-other", HealthRole.PATIENT)
    answer = answer_payload
    ref.chain.fails(
        ref.specialist, "referral.answer", answer(referral_id, by_gp), ResultCode.UNAUTHORIZED
    )
    ref.chain.fails(
        ref.specialist, "referral.answer", answer(referral_id, bytes(32)), ResultCode.NOT_FOUND
    )
    theirs = ref.note(other_patient, other_patient)
    ref.chain.fails(
        ref.specialist, "referral.answer", answer(referral_id, theirs), ResultCode.INVALID_PAYLOAD
    )
    note = ref.note(ref.specialist)
    ref.chain.fails(
        ref.colleague, "referral.answer", answer(referral_id, note), ResultCode.UNAUTHORIZED
    )
    close = close_payload(referral_id)
    ref.chain.fails(ref.specialist, "referral.close", close, ResultCode.UNAUTHORIZED)
    receipt = ref.chain.ok(ref.specialist, "referral.answer", answer(referral_id, note))
    (event,) = ref.chain.events(receipt, "referral.answered")
    assert attributes(event)["record"] == note.hex()
    referral = get_referral(ref.chain.app, referral_id)
    assert referral is not None
    assert referral.status is ReferralStatus.ANSWERED and referral.answer_record == note
    ref.chain.fails(
        ref.specialist, "referral.answer", answer(referral_id, note), ResultCode.CONFLICT
    )
    ref.chain.fails(ref.patient, "referral.close", close, ResultCode.UNAUTHORIZED)
    ref.chain.fails(ref.specialist, "referral.close", close, ResultCode.UNAUTHORIZED)
    receipt = ref.chain.ok(ref.gp, "referral.close", close)
    assert [e.name for e in ref.chain.events(receipt, "referral.")] == ["referral.closed"]
    assert ref.status(referral_id) is ReferralStatus.CLOSED
    ref.chain.fails(ref.gp, "referral.close", close, ResultCode.CONFLICT)
    # closed referrals do not expire
    assert not ref.chain.events(ref.chain.advance(30 * DAY_MS), "referral.")


def test_an_erased_record_does_not_answer(ref: Referrals) -> None:
    referral_id = ref.accepted()
    note = ref.note(ref.specialist)
    ref.chain.ok(ref.patient, "records.erase", erase_payload((note,)))
    ref.chain.fails(
        ref.specialist, "referral.answer", answer_payload(referral_id, note), ResultCode.CONFLICT
    )


def test_a_requested_referral_cannot_be_answered_or_closed(ref: Referrals) -> None:
    referral_id = ref.request()
    ref.chain.fails(ref.gp, "referral.close", close_payload(referral_id), ResultCode.CONFLICT)
    ref.grant(ref.specialist.id)
    note = ref.note(ref.specialist)
    ref.chain.fails(
        ref.specialist, "referral.answer", answer_payload(referral_id, note), ResultCode.CONFLICT
    )


def test_an_accepted_referral_may_be_closed_without_an_answer(ref: Referrals) -> None:
    referral_id = ref.accepted()
    ref.chain.ok(ref.gp, "referral.close", close_payload(referral_id))
    assert ref.status(referral_id) is ReferralStatus.CLOSED


# -- expiry --------------------------------------------------------------------------------------


@pytest.mark.parametrize("accept", [False, True])
def test_an_unanswered_referral_expires_in_block_time(ref: Referrals, accept: bool) -> None:
    referral_id = ref.accepted() if accept else ref.request()
    referral = get_referral(ref.chain.app, referral_id)
    assert referral is not None
    assert not ref.chain.events(ref.chain.advance(referral.expires_ms - 1 - ref.chain.time_ms))
    result = ref.chain.advance(1)
    (event,) = ref.chain.events(result, "referral.")
    assert event.name == "referral.expired"
    assert attributes(event)["patient"] == ref.patient.id.hex()
    assert attributes(event)["from"] == ref.gp.id.hex()
    assert ref.status(referral_id) is ReferralStatus.EXPIRED
    ref.grant(ref.specialist.id, referral_id)
    for sender, kind in ((ref.specialist, "referral.accept"), (ref.gp, "referral.close")):
        ref.chain.fails(sender, kind, accept_payload(referral_id), ResultCode.CONFLICT)


# -- queries -------------------------------------------------------------------------------------


def test_query_paths_and_rendering(ref: Referrals) -> None:
    referral_id = ref.request()
    module = ReferralModule()
    key = module.query_key(f"r/{referral_id.hex()}")
    assert key == referral_key(referral_id)
    rendered = module.render(key, ref.chain.get(key) or b"")
    assert isinstance(rendered, dict)
    assert rendered["status"] == "requested" and rendered["to"] == ref.specialist.id.hex()
    incoming = module.query_key(f"i/{ref.specialist.id.hex()}/{referral_id.hex()}")
    assert module.render(incoming, b"") == {
        "to": ref.specialist.id.hex(),
        "referral": referral_id.hex(),
    }
    assert module.query_key(f"p/{ref.patient.id.hex()}") == b"referral/p/" + ref.patient.id
    for bad in ("q/00", "r/zz", f"r/{referral_id.hex()}/{referral_id.hex()}"):
        with pytest.raises(ValueError):
            module.query_key(bad)
