"""The custodian against a real health chain through fake node services: uploads, fetches
under consent (every refusal), the nonce cache, audit batches the chain accepts, commit
notices (gaps included), repair from another custodian, expiry."""

from __future__ import annotations

import itertools
from contextlib import nullcontext
from dataclasses import replace

import pytest
import trio
import trio.testing

from health.contracts.audit import MAX_PATIENTS_PER_BATCH, AccessEntry, list_audit
from health.contracts.common import DAY_MS, AccessBasis, Purpose
from health.contracts.consent import break_glass_payload, grant_payload, revoke_payload
from health.contracts.identity import rotate_payload
from health.contracts.records import erase_payload
from health.custodian import (
    NO_BASIS,
    Custodian,
    CustodianConfig,
    NonceCache,
    QueuedAccess,
    RepairOutcome,
)
from health.envelopes import open_sealed, rewrap_key, unwrap_key
from health.records_wire import (
    FETCH_REQUEST_CODEC,
    PROTOCOL,
    STORE_REQUEST_CODEC,
    FetchRequest,
    FetchResponse,
    RecordsError,
    decode_answer,
    decode_fetch_response,
    encode_request,
    keys_statement,
    sign_store_request,
)
from health.vault import Vault, VaultLimits
from node.codec import TX_CODEC
from node.errors import BigHealthError
from node.testing import MemoryStorage, key_pair
from tests.health.fakes import PEERS, Cluster, Upload
from tests.health.helpers import CHAIN, Party, attributes, party

SKEW = CustodianConfig().max_request_skew_ms


@pytest.fixture
def cluster() -> Cluster:
    return Cluster()


def custodian(
    cluster: Cluster, name: str = "a", config: CustodianConfig | None = None
) -> Custodian:
    """The custodian of hospital ``a`` or ``b`` on its fake node, its handler registered."""
    holder = {"a": cluster.hospital, "b": cluster.other_hospital}[name]
    services = cluster.node(name)
    made = Custodian(
        Vault(MemoryStorage()),
        services,
        holder.id,
        holder.signer,
        clock=cluster.clock,
        rng_bytes=cluster.rng,
        config=config or CustodianConfig(),
    )
    services.register_handler(PROTOCOL, made.handle)
    return made


async def stored(cluster: Cluster, keepers: list[Custodian], name: str, **kw: object) -> Upload:
    """A record uploaded to ``keepers``, committed naming both hospitals, applied."""
    upload = cluster.upload(name, **kw)  # type: ignore[arg-type]
    for keeper in keepers:
        assert not await keeper.accept_upload(upload.blob)
    _, notice = cluster.commit(cluster.commit_tx(upload))
    for keeper in keepers:
        await keeper.on_commit(notice)
        assert keeper.vault.has(upload.record_id)
    return upload


async def refused(keeper: Custodian, request: FetchRequest) -> str:
    with pytest.raises(RecordsError) as caught:
        await keeper.fetch(request)
    return caught.value.reason


def audited(keeper: Custodian) -> list[AccessEntry]:
    return [queued.entry for queued in keeper._audit]


def grant(cluster: Cluster, grantee: Party, **scope: object) -> bytes:
    expires_ms = cluster.chain.time_ms + 1_000 + DAY_MS
    payload = grant_payload(grantee.id, expires_ms=expires_ms, **scope)  # type: ignore[arg-type]
    notice = cluster.ok(cluster.patient, "consent.grant", payload)
    [event] = [e for e in notice.events if e.name == "consent.granted"]
    return bytes.fromhex(attributes(event)["grant"])


def share(cluster: Cluster, upload: Upload, reader: Party) -> tuple[dict[bytes, bytes], bytes]:
    """The patient's re-wrap of ``upload``'s key for ``reader``, and its signature."""
    mine = upload.blob.wrapped_keys[cluster.patient.id]
    rewrapped = rewrap_key(
        mine,
        upload.record_id,
        cluster.patient.encryption_private,
        bytes(reader.encryption.public_key),
    )
    keys = {reader.id: rewrapped}
    return keys, cluster.patient.signer.sign(keys_statement(CHAIN, upload.record_id, keys))


def opened(upload: Upload, response: FetchResponse, reader: Party) -> bytes:
    data_key = unwrap_key(response.wrapped_key, upload.record_id, reader.encryption_private)
    return open_sealed(
        response.ciphertext,
        record_id=upload.record_id,
        owner=upload.blob.owner,
        key_epoch=0,
        data_key=data_key,
    )


# -- uploads -------------------------------------------------------------------------------


async def test_an_upload_waits_pending_until_its_commitment_commits(cluster: Cluster) -> None:
    keeper = custodian(cluster)
    upload = cluster.upload("r1")
    assert not await keeper.accept_upload(upload.blob)
    assert not keeper.vault.has(upload.record_id) and keeper.vault.meta(upload.record_id)
    _, notice = cluster.commit(cluster.commit_tx(upload))
    await keeper.on_commit(notice)
    assert keeper.vault.has(upload.record_id)
    assert keeper.repairs_waiting == 0


async def test_an_upload_after_its_commitment_is_stored_at_once(cluster: Cluster) -> None:
    keeper = custodian(cluster)
    upload = cluster.upload("r1")
    cluster.commit(cluster.commit_tx(upload))  # the notice is not applied: the upload is late
    assert await keeper.accept_upload(upload.blob)
    assert keeper.vault.has(upload.record_id)


async def test_a_commitment_naming_other_custodians_leaves_the_blob_pending(
    cluster: Cluster,
) -> None:
    keeper = custodian(cluster)
    upload = cluster.upload("r1")
    await keeper.accept_upload(upload.blob)
    _, notice = cluster.commit(cluster.commit_tx(upload, [cluster.other_hospital.id]))
    await keeper.on_commit(notice)
    assert not keeper.vault.has(upload.record_id) and keeper.repairs_waiting == 0


async def test_uploads_are_refused_unless_the_author_signed_for_a_patient(
    cluster: Cluster,
) -> None:
    keeper = custodian(cluster)
    upload = cluster.upload("r1")
    forged = replace(upload.blob, author_signature=cluster.doctor.signer.sign(b"other"))
    unknown_author = replace(upload.blob, author=key_pair("nobody").public_key)
    not_a_patient = replace(upload.blob, owner=cluster.doctor.id)
    for blob, reason in (
        (forged, "bad_signature"),
        (unknown_author, "bad_signature"),
        (not_a_patient, "forbidden"),
        (replace(upload.blob, ciphertext=b"short"), "malformed"),
    ):
        with pytest.raises(RecordsError) as caught:
            await keeper.accept_upload(blob)
        assert caught.value.reason == reason
    assert keeper.vault.totals().pending == 0


async def test_uploads_of_committed_records_must_fit_the_commitment(cluster: Cluster) -> None:
    keeper = custodian(cluster)
    elsewhere, erased, changed = (cluster.upload(n) for n in ("else", "erased", "changed"))
    cluster.commit(cluster.commit_tx(elsewhere, [cluster.other_hospital.id]))
    cluster.commit(cluster.commit_tx(erased))
    cluster.ok(cluster.patient, "records.erase", erase_payload((erased.record_id,)))
    other_bytes = cluster.upload("changed", content=b"other content")
    cluster.commit(cluster.commit_tx(other_bytes))
    for blob, reason in (
        (elsewhere.blob, "not_custodian"),
        (erased.blob, "erased"),
        (changed.blob, "mismatch"),
    ):
        with pytest.raises(RecordsError) as caught:
            await keeper.accept_upload(blob)
        assert caught.value.reason == reason
    assert keeper.vault.totals().stored == 0


# -- fetch ---------------------------------------------------------------------------------


async def test_the_owner_is_served_and_the_read_is_audited(cluster: Cluster) -> None:
    keeper = custodian(cluster)
    upload = await stored(cluster, [keeper], "r1")
    response = await keeper.fetch(
        cluster.fetch_request(cluster.patient, upload.record_id, cluster.hospital)
    )
    assert opened(upload, response, cluster.patient) == upload.content
    [entry] = audited(keeper)
    assert (entry.reader, entry.basis, entry.basis_id, entry.served) == (
        cluster.patient.id,
        AccessBasis.OWNER,
        b"",
        True,
    )
    assert keeper.stats().served == 1


async def test_a_grantee_is_served_once_the_patient_wrapped_its_key(cluster: Cluster) -> None:
    keeper = custodian(cluster)
    upload = await stored(cluster, [keeper], "r1")
    grant_id = grant(cluster, cluster.doctor)
    ask = cluster.fetch_request
    assert await refused(keeper, ask(cluster.doctor, upload.record_id, cluster.hospital)) == (
        "key_pending"
    )
    keys, signature = share(cluster, upload, cluster.doctor)
    assert await keeper.add_keys(upload.record_id, keys, signature) == 2
    response = await keeper.fetch(ask(cluster.doctor, upload.record_id, cluster.hospital))
    assert opened(upload, response, cluster.doctor) == upload.content
    pending, served = audited(keeper)
    assert (pending.basis, pending.basis_id, pending.served) == (AccessBasis.GRANT, grant_id, False)
    assert (served.basis, served.basis_id, served.served) == (AccessBasis.GRANT, grant_id, True)


async def test_wrapped_keys_are_added_only_under_the_owners_signature(cluster: Cluster) -> None:
    keeper = custodian(cluster)
    upload = await stored(cluster, [keeper], "r1")
    keys, signature = share(cluster, upload, cluster.doctor)
    forged = cluster.doctor.signer.sign(keys_statement(CHAIN, upload.record_id, keys))
    other_keys = {cluster.outsider.id: next(iter(keys.values()))}
    for record_id, sent, sig, reason in (
        (upload.record_id, keys, forged, "bad_signature"),
        (upload.record_id, other_keys, signature, "bad_signature"),  # not what was signed
        (bytes(32), keys, signature, "not_found"),
    ):
        with pytest.raises(RecordsError) as caught:
            await keeper.add_keys(record_id, sent, sig)
        assert caught.value.reason == reason
    cluster.ok(cluster.patient, "records.erase", erase_payload((upload.record_id,)))
    with pytest.raises(RecordsError) as caught:
        await keeper.add_keys(upload.record_id, keys, signature)
    assert caught.value.reason == "erased"


async def test_a_reader_without_access_is_refused_and_audited(cluster: Cluster) -> None:
    keeper = custodian(cluster)
    upload = await stored(cluster, [keeper], "r1", readers=[cluster.outsider])
    request = cluster.fetch_request(cluster.outsider, upload.record_id, cluster.hospital)
    assert await refused(keeper, request) == "forbidden"
    [entry] = audited(keeper)
    assert (entry.reader, entry.served) == (cluster.outsider.id, False)
    assert (entry.basis, entry.basis_id) == (NO_BASIS.basis, NO_BASIS.basis_id)
    assert keeper.stats().refused == {"forbidden": 1}


async def test_grants_serve_research_and_institutions_and_revocation_stops_them(
    cluster: Cluster,
) -> None:
    keeper = custodian(cluster)
    upload = await stored(cluster, [keeper], "r1", readers=[cluster.outsider])
    research = grant(cluster, cluster.other_hospital, purpose=Purpose.RESEARCH)
    ask = cluster.fetch_request
    await keeper.fetch(ask(cluster.outsider, upload.record_id, cluster.hospital))
    assert audited(keeper)[-1].basis_id == research
    cluster.ok(cluster.patient, "consent.revoke", revoke_payload(cluster.patient.id, research))
    request = ask(cluster.outsider, upload.record_id, cluster.hospital)
    assert await refused(keeper, request) == "forbidden"
    scoped = grant(cluster, cluster.outsider, resource_types=("CarePlan",))
    assert await refused(keeper, ask(cluster.outsider, upload.record_id, cluster.hospital)) == (
        "forbidden"
    )
    assert scoped not in [entry.basis_id for entry in audited(keeper)]


async def test_an_emergency_access_is_served_and_audited_as_such(cluster: Cluster) -> None:
    keeper = custodian(cluster)
    upload = await stored(cluster, [keeper], "r1", readers=[cluster.outsider])
    notice = cluster.ok(
        cluster.outsider, "consent.break_glass", break_glass_payload(cluster.patient.id, "ETREAT")
    )
    access = bytes.fromhex(attributes(notice.events[0])["access"])
    await keeper.fetch(cluster.fetch_request(cluster.outsider, upload.record_id, cluster.hospital))
    assert (audited(keeper)[-1].basis, audited(keeper)[-1].basis_id) == (
        AccessBasis.EMERGENCY,
        access,
    )


async def test_only_the_requesters_current_key_signs_a_fetch(cluster: Cluster) -> None:
    keeper = custodian(cluster)
    upload = await stored(cluster, [keeper], "r1")
    ask = cluster.fetch_request
    wrong = ask(cluster.patient, upload.record_id, cluster.hospital, signer=cluster.doctor.signer)
    assert await refused(keeper, wrong) == "bad_signature"
    nobody = party("nobody")
    assert await refused(keeper, ask(nobody, upload.record_id, cluster.hospital)) == (
        "bad_signature"
    )
    new_key = key_pair("patient-a/rotated")
    rotation = rotate_payload(
        new_key,
        cluster.patient.encryption_private,
        chain_id=CHAIN,
        identity=cluster.patient.id,
        new_epoch=1,
    )
    cluster.ok(cluster.patient, "identity.rotate_keys", rotation)
    old = ask(cluster.patient, upload.record_id, cluster.hospital)
    assert await refused(keeper, old) == "bad_signature"
    await keeper.fetch(ask(cluster.patient, upload.record_id, cluster.hospital, signer=new_key))
    assert [entry.served for entry in audited(keeper)] == [True]  # the forgeries are not audited


@pytest.mark.parametrize(("offset", "reason"), [(SKEW + 1, "stale"), (-SKEW - 1, "stale")])
async def test_a_request_outside_the_time_window_is_stale(
    cluster: Cluster, offset: int, reason: str
) -> None:
    keeper = custodian(cluster)
    upload = await stored(cluster, [keeper], "r1")
    now = cluster.clock()
    request = cluster.fetch_request(
        cluster.patient, upload.record_id, cluster.hospital, time_ms=now + offset
    )
    assert await refused(keeper, request) == reason
    edge = -SKEW if offset < 0 else SKEW
    await keeper.fetch(
        cluster.fetch_request(
            cluster.patient, upload.record_id, cluster.hospital, time_ms=now + edge
        )
    )
    assert len(audited(keeper)) == 1


async def test_a_replayed_request_is_refused(cluster: Cluster) -> None:
    keeper = custodian(cluster)
    upload = await stored(cluster, [keeper], "r1")
    request = cluster.fetch_request(cluster.patient, upload.record_id, cluster.hospital)
    await keeper.fetch(request)
    assert await refused(keeper, request) == "replayed"
    cluster.clock.offset_ms = 2 * SKEW + 1  # the nonce is forgotten, but the time is stale
    assert await refused(keeper, request) == "stale"
    assert len(audited(keeper)) == 1


def test_the_nonce_cache_is_bounded_and_forgets_expired_nonces() -> None:
    cache = NonceCache(2)
    cache.remember(b"a", 100, 0)
    with pytest.raises(RecordsError) as caught:
        cache.remember(b"a", 100, 50)
    assert caught.value.reason == "replayed"
    cache.remember(b"b", 200, 50)
    with pytest.raises(RecordsError) as caught:
        cache.remember(b"c", 300, 60)
    assert caught.value.reason == "busy" and caught.value.retry_later
    cache.remember(b"c", 300, 101)  # "a" expired at 100
    assert len(cache) == 2
    cache.remember(b"a", 400, 201)  # "b" expired at 200; "a" may come again (stale anyway)
    assert len(cache) == 2


async def test_requests_for_other_custodians_or_unknown_records_are_refused(
    cluster: Cluster,
) -> None:
    keeper = custodian(cluster)
    upload = await stored(cluster, [keeper], "r1")
    ask = cluster.fetch_request
    assert await refused(
        keeper, ask(cluster.patient, upload.record_id, cluster.other_hospital)
    ) == ("not_custodian")
    assert await refused(keeper, ask(cluster.patient, bytes(32), cluster.hospital)) == "not_found"
    elsewhere = cluster.upload("elsewhere")
    cluster.commit(cluster.commit_tx(elsewhere, [cluster.other_hospital.id]))
    request = ask(cluster.patient, elsewhere.record_id, cluster.hospital)
    assert await refused(keeper, request) == "not_custodian"
    assert audited(keeper) == []  # none of these is a record kept here
    missing = cluster.upload("missing")
    cluster.commit(cluster.commit_tx(missing))
    assert await refused(keeper, ask(cluster.patient, missing.record_id, cluster.hospital)) == (
        "not_found"
    )
    assert [entry.served for entry in audited(keeper)] == [False]


async def test_an_erased_record_is_refused_and_destroyed_before_its_notice(
    cluster: Cluster,
) -> None:
    keeper = custodian(cluster)
    upload = await stored(cluster, [keeper], "r1")
    cluster.ok(cluster.patient, "records.erase", erase_payload((upload.record_id,)))
    request = cluster.fetch_request(cluster.patient, upload.record_id, cluster.hospital)
    assert await refused(keeper, request) == "erased"
    assert keeper.vault.meta(upload.record_id) is None
    assert [entry.served for entry in audited(keeper)] == [False]


async def test_the_protocol_handler_answers_garbage_with_a_refusal(cluster: Cluster) -> None:
    keeper = custodian(cluster)
    upload = await stored(cluster, [keeper], "r1")
    for data in (b"", b"\x92\xa5fetch\xc4\x01x", encode_request("fetch", b"\x90")):
        with pytest.raises(RecordsError) as caught:
            decode_answer(await keeper.handle(PEERS["b"], data))
        assert caught.value.reason == "malformed"
    request = cluster.fetch_request(cluster.patient, upload.record_id, cluster.hospital)
    answer = await keeper.handle(
        PEERS["b"], encode_request("fetch", FETCH_REQUEST_CODEC.encode(request))
    )
    assert decode_fetch_response(decode_answer(answer)).ciphertext == upload.blob.ciphertext
    assert keeper.stats().refused == {"malformed": 3}


# -- audit ---------------------------------------------------------------------------------


async def test_audit_batches_go_on_chain_within_the_batch_parameter() -> None:
    cluster = Cluster({"audit_batch_max": 2})
    keeper = custodian(cluster)
    upload = await stored(cluster, [keeper], "r1")
    for _ in range(5):
        await keeper.fetch(
            cluster.fetch_request(cluster.patient, upload.record_id, cluster.hospital)
        )
    assert await keeper.flush_audit() == 5
    services = cluster.node("a")
    assert len(services.submitted) == 3
    txs = [TX_CODEC.decode(raw) for raw in services.submitted]
    assert [tx.nonce for tx in txs] == [txs[0].nonce, txs[0].nonce + 1, txs[0].nonce + 2]
    assert {tx.kind for tx in txs} == {"audit.record"}
    result, _ = cluster.commit()
    assert [receipt.ok for receipt in result.receipts] == [True, True, True]
    on_chain = list_audit(cluster.state, cluster.patient.id)
    assert len(on_chain) == 5 and {entry.custodian for entry in on_chain} == {cluster.hospital.id}
    stats = keeper.stats()
    assert (stats.audit_batches, stats.audit_submitted, keeper.audit_backlog) == (3, 5, 0)


async def test_the_audit_queue_keeps_the_oldest_entries_when_full(cluster: Cluster) -> None:
    keeper = custodian(cluster, config=CustodianConfig(audit_queue_max=2))
    upload = await stored(cluster, [keeper], "r1")
    readers = [cluster.patient, cluster.outsider, cluster.doctor]
    for reader in readers:
        with pytest.raises(RecordsError) if reader is not cluster.patient else nullcontext():
            await keeper.fetch(cluster.fetch_request(reader, upload.record_id, cluster.hospital))
    assert [entry.reader for entry in audited(keeper)] == [cluster.patient.id, cluster.outsider.id]
    assert keeper.stats().audit_dropped == 1


def test_an_audit_batch_touches_at_most_sixteen_patients(cluster: Cluster) -> None:
    keeper = custodian(cluster)
    now = cluster.clock()
    for n in range(MAX_PATIENTS_PER_BATCH + 2):
        entry = AccessEntry(bytes([n]) * 32, bytes(32), now, AccessBasis.OWNER, b"", True)
        keeper._audit.append(QueuedAccess(entry, bytes([n % (MAX_PATIENTS_PER_BATCH + 1)]) * 32))
    first = keeper._take_batch(256)
    assert len(first) == MAX_PATIENTS_PER_BATCH and len({q.patient for q in first}) == 16
    assert len(keeper._take_batch(256)) == 2


async def test_access_times_ahead_of_the_chain_are_recorded_at_its_time(cluster: Cluster) -> None:
    keeper = custodian(cluster)
    upload = await stored(cluster, [keeper], "r1")
    cluster.clock.offset_ms = 30_000  # our clock runs ahead of block time
    request = cluster.fetch_request(cluster.patient, upload.record_id, cluster.hospital)
    await keeper.fetch(request)
    await keeper.flush_audit()
    result, _ = cluster.commit()
    assert result.receipts[0].ok, result.receipts[0].log
    [entry] = list_audit(cluster.state, cluster.patient.id)
    assert entry.accessed_ms == keeper.last_block_ms


async def test_an_audit_batch_the_node_refuses_is_dropped_and_counted(cluster: Cluster) -> None:
    keeper = custodian(cluster)
    upload = await stored(cluster, [keeper], "r1")
    await keeper.fetch(cluster.fetch_request(cluster.patient, upload.record_id, cluster.hospital))
    cluster.node("a").reject = "no"
    assert await keeper.flush_audit() == 1
    assert (keeper.stats().audit_rejected, keeper.audit_backlog) == (1, 0)


async def test_an_audit_batch_that_cannot_be_submitted_waits_for_the_next_flush(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    keeper = custodian(cluster)
    upload = await stored(cluster, [keeper], "r1")
    await keeper.fetch(cluster.fetch_request(cluster.patient, upload.record_id, cluster.hospital))

    async def down(raw: bytes) -> object:
        raise BigHealthError("the core is stopping")

    monkeypatch.setattr(cluster.node("a"), "submit_tx", down)
    assert await keeper.flush_audit() == 0
    assert keeper.audit_backlog == 1
    monkeypatch.undo()
    assert await keeper.flush_audit() == 1


async def test_the_audit_loop_flushes_on_its_interval_and_when_a_batch_is_full(
    mock_clock: trio.testing.MockClock,
) -> None:
    cluster = Cluster({"audit_batch_max": 2})
    config = CustodianConfig(audit_interval_ms=10_000)
    keeper = custodian(cluster, config=config)
    upload = await stored(cluster, [keeper], "r1")
    services = cluster.node("a")
    ask = cluster.fetch_request
    async with trio.open_nursery() as nursery:
        await nursery.start(keeper.run, services.commits(8))
        await keeper.flush_audit()  # learn the batch parameter
        await keeper.fetch(ask(cluster.patient, upload.record_id, cluster.hospital))
        await trio.testing.wait_all_tasks_blocked()
        assert services.submitted == []
        mock_clock.jump(10.0)
        await trio.testing.wait_all_tasks_blocked()
        assert len(services.submitted) == 1
        for _ in range(2):
            await keeper.fetch(ask(cluster.patient, upload.record_id, cluster.hospital))
        await trio.testing.wait_all_tasks_blocked()
        assert len(services.submitted) == 2  # a full batch does not wait for the interval
        nursery.cancel_scope.cancel()


# -- commit notices ------------------------------------------------------------------------


async def test_notices_store_and_erase_while_running(autojump_clock: trio.abc.Clock) -> None:
    cluster = Cluster()
    keeper = custodian(cluster)
    services = cluster.node("a")
    upload = cluster.upload("r1")
    async with trio.open_nursery() as nursery:
        await nursery.start(keeper.run, services.commits(8))
        await keeper.accept_upload(upload.blob)
        cluster.commit(cluster.commit_tx(upload))
        await trio.testing.wait_all_tasks_blocked()
        assert keeper.vault.has(upload.record_id)
        cluster.ok(cluster.patient, "records.erase", erase_payload((upload.record_id,)))
        await trio.testing.wait_all_tasks_blocked()
        assert keeper.vault.meta(upload.record_id) is None
        assert keeper.stats().erased == 1
        nursery.cancel_scope.cancel()


async def test_after_a_gap_pending_and_stored_blobs_are_reconciled(cluster: Cluster) -> None:
    keeper = custodian(cluster, config=CustodianConfig(reconcile_page=1))
    kept = await stored(cluster, [keeper], "kept")
    gone = await stored(cluster, [keeper], "gone")
    late = cluster.upload("late")
    waiting = cluster.upload("waiting")
    for upload in (late, waiting):
        await keeper.accept_upload(upload.blob)
    cluster.commit(cluster.commit_tx(late))  # notices missed from here on
    cluster.ok(cluster.patient, "records.erase", erase_payload((gone.record_id,)))
    _, notice = cluster.commit()
    await keeper.on_commit(replace(notice, gap=True))
    assert keeper.vault.has(late.record_id) and keeper.vault.has(kept.record_id)
    assert keeper.vault.meta(gone.record_id) is None
    meta = keeper.vault.meta(waiting.record_id)
    assert meta is not None and not meta.stored  # not committed: waits for its time
    assert keeper.stats().reconciliations == 1


async def test_a_notice_with_a_bad_record_attribute_is_skipped(cluster: Cluster) -> None:
    keeper = custodian(cluster)
    upload = cluster.upload("r1")
    await keeper.accept_upload(upload.blob)
    _, notice = cluster.commit(cluster.commit_tx(upload))
    [committed] = [e for e in notice.events if e.name == "records.committed"]
    broken = replace(
        committed,
        attributes=tuple(
            replace(a, value="zz" * 32) if a.key == "record" else a for a in committed.attributes
        ),
    )
    await keeper.on_commit(replace(notice, events=(broken, committed)))
    assert keeper.vault.has(upload.record_id)


# -- repair --------------------------------------------------------------------------------


async def test_a_custodian_that_missed_an_upload_repairs_it_from_another(
    cluster: Cluster,
) -> None:
    first, second = custodian(cluster, "a"), custodian(cluster, "b")
    upload = cluster.upload("r1", readers=[cluster.doctor])
    await first.accept_upload(upload.blob)  # b was down when the patient uploaded
    _, notice = cluster.commit(cluster.commit_tx(upload))
    await first.on_commit(notice)
    await second.on_commit(notice)
    assert second.repairs_waiting == 1
    assert await second.repair_once(upload.record_id) is RepairOutcome.DONE
    repaired = second.vault.get(upload.record_id)
    assert repaired is not None and repaired.ciphertext == upload.blob.ciphertext
    assert repaired.wrapped_keys == upload.blob.wrapped_keys
    assert repaired.author_signature == upload.blob.author_signature
    assert first.stats().stores_served == 1
    assert await second.repair_once(upload.record_id) is RepairOutcome.DONE  # held already


async def test_repair_retries_with_back_off_then_gives_up(autojump_clock: trio.abc.Clock) -> None:
    cluster = Cluster()
    config = CustodianConfig(repair_attempts=4, repair_backoff_ms=1_000)
    first, second = custodian(cluster, "a"), custodian(cluster, "b", config)
    upload = cluster.upload("r1")
    await first.accept_upload(upload.blob)
    cluster.network.down.add(PEERS["a"])
    services = cluster.node("b")
    times: list[float] = []
    original = services.request

    async def timed(*args: object) -> bytes:
        times.append(trio.current_time())
        return await original(*args)  # type: ignore[arg-type]

    services.request = timed  # type: ignore[method-assign,assignment]
    async with trio.open_nursery() as nursery:
        await nursery.start(second.run, services.commits(8))
        cluster.commit(cluster.commit_tx(upload))
        await trio.sleep(60)
        nursery.cancel_scope.cancel()
    gaps = [round(b - a) for a, b in itertools.pairwise(times)]
    assert gaps == [1, 2, 4]
    stats = second.stats()
    assert (stats.repair_failed, stats.repaired, second.repairs_waiting) == (1, 0, 0)


async def test_repair_succeeds_when_the_other_custodian_comes_back(
    autojump_clock: trio.abc.Clock,
) -> None:
    cluster = Cluster()
    first, second = custodian(cluster, "a"), custodian(cluster, "b")
    upload = cluster.upload("r1")
    await first.accept_upload(upload.blob)
    cluster.network.down.add(PEERS["a"])
    async with trio.open_nursery() as nursery:
        await nursery.start(second.run, cluster.node("b").commits(8))
        _, notice = cluster.commit(cluster.commit_tx(upload))
        await first.on_commit(notice)
        await trio.sleep(3)
        assert not second.vault.has(upload.record_id)
        cluster.network.down.clear()
        await trio.sleep(60)
        nursery.cancel_scope.cancel()
    assert second.vault.has(upload.record_id) and second.stats().repaired == 1


async def test_a_blob_that_does_not_match_the_commitment_is_not_repaired(
    cluster: Cluster,
) -> None:
    first, second = custodian(cluster, "a"), custodian(cluster, "b")
    upload = cluster.upload("r1")
    cluster.commit(cluster.commit_tx(upload))
    tampered = replace(upload.blob, ciphertext=upload.blob.ciphertext[:-1] + b"\x00")
    first.vault.put_pending(tampered, cluster.clock())
    meta = first.vault.meta(upload.record_id)
    assert meta is not None
    first.vault.commitment_committed(
        upload.record_id, meta.owner, meta.ciphertext_sha256, meta.size_bytes
    )
    assert await second.repair_once(upload.record_id) is RepairOutcome.RETRY
    assert not second.vault.has(upload.record_id)
    assert second.stats().repair_mismatch == 1


async def test_nothing_is_repaired_that_is_not_ours_or_is_erased(cluster: Cluster) -> None:
    second = custodian(cluster, "b")
    elsewhere, erased = cluster.upload("else"), cluster.upload("erased")
    cluster.commit(cluster.commit_tx(elsewhere, [cluster.hospital.id]))
    cluster.commit(cluster.commit_tx(erased))
    cluster.ok(cluster.patient, "records.erase", erase_payload((erased.record_id,)))
    for record_id in (elsewhere.record_id, erased.record_id, bytes(32)):
        assert await second.repair_once(record_id) is RepairOutcome.DROP


async def test_the_repair_queue_is_bounded(autojump_clock: trio.abc.Clock) -> None:
    cluster = Cluster()
    second = custodian(cluster, "b", CustodianConfig(repair_queue_max=1))
    second.schedule_repair(bytes([1]) * 32)
    second.schedule_repair(bytes([1]) * 32)  # once
    second.schedule_repair(bytes([2]) * 32)
    assert second.repairs_waiting == 1 and second.stats().repair_dropped == 1


async def test_store_requests_are_served_only_to_custodians_of_the_record(
    cluster: Cluster,
) -> None:
    first = custodian(cluster, "a")
    upload = await stored(cluster, [first], "r1")
    third = cluster.chain.members[2]

    def store(signer: object, requester: bytes, record: bytes = upload.record_id) -> bytes:
        request = sign_store_request(
            signer,  # type: ignore[arg-type]
            chain_id=CHAIN,
            requester=requester,
            record=record,
            custodian=cluster.hospital.id,
            nonce=cluster.rng(16),
            time_ms=cluster.clock(),
        )
        return encode_request("store", STORE_REQUEST_CODEC.encode(request))

    other = cluster.other_hospital
    for data, reason in (
        (store(third.signer, third.id), "forbidden"),
        (store(cluster.doctor.signer, other.id), "bad_signature"),
        (store(other.signer, other.id, bytes(32)), "not_found"),
    ):
        with pytest.raises(RecordsError) as caught:
            decode_answer(await first.handle(PEERS["c"], data))
        assert caught.value.reason == reason
    cluster.ok(cluster.patient, "records.erase", erase_payload((upload.record_id,)))
    with pytest.raises(RecordsError) as caught:
        decode_answer(await first.handle(PEERS["b"], store(other.signer, other.id)))
    assert caught.value.reason == "erased"


# -- expiry --------------------------------------------------------------------------------


async def test_pending_blobs_expire_while_running(autojump_clock: trio.abc.Clock) -> None:
    cluster = Cluster()
    config = CustodianConfig(expire_interval_ms=1_000)
    keeper = custodian(cluster, config=config)
    upload = cluster.upload("r1")
    await keeper.accept_upload(upload.blob)
    async with trio.open_nursery() as nursery:
        await nursery.start(keeper.run, cluster.node("a").commits(8))
        await trio.sleep(2)
        assert keeper.vault.meta(upload.record_id) is not None
        cluster.clock.offset_ms = VaultLimits().pending_ttl_ms + 1
        await trio.sleep(2)
        assert keeper.vault.meta(upload.record_id) is None
        nursery.cancel_scope.cancel()


def test_a_config_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError):
        CustodianConfig(audit_queue_max=0)


async def test_the_handler_answers_busy_when_the_node_cannot_read_its_state(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    keeper = custodian(cluster)
    upload = await stored(cluster, [keeper], "r1")

    async def stopping(read: object) -> object:
        raise BigHealthError("the core is stopping")

    monkeypatch.setattr(cluster.node("a"), "query", stopping)
    request = cluster.fetch_request(cluster.patient, upload.record_id, cluster.hospital)
    answer = await keeper.handle(
        PEERS["b"], encode_request("fetch", FETCH_REQUEST_CODEC.encode(request))
    )
    with pytest.raises(RecordsError) as caught:
        decode_answer(answer)
    assert caught.value.reason == "busy"


async def test_what_happened_while_the_node_was_down_is_reconciled_at_start(
    autojump_clock: trio.abc.Clock,
) -> None:
    cluster = Cluster()
    keeper = custodian(cluster)
    erased, late = await stored(cluster, [keeper], "erased"), cluster.upload("late")
    await keeper.accept_upload(late.blob)
    cluster.ok(cluster.patient, "records.erase", erase_payload((erased.record_id,)))  # unseen
    cluster.commit(cluster.commit_tx(late))  # unseen
    async with trio.open_nursery() as nursery:
        await nursery.start(keeper.run, cluster.node("a").commits(8))
        await trio.testing.wait_all_tasks_blocked()
        assert keeper.vault.meta(erased.record_id) is None
        assert keeper.vault.has(late.record_id)
        nursery.cancel_scope.cancel()
