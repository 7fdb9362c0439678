"""The records benchmark runs (smoke counts, real node processes) and reports its figures; the
readings it seals itself are what ``HealthClient.upload_record`` would send."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from nacl.public import PrivateKey

from bench import records
from crypto_core.signatures import verify
from health import fhir
from health.client import KDF_MIN, HealthClient, Keystore
from health.contracts.common import GLUCOSE_RESOURCE_TYPE, HealthRole, Identity
from health.contracts.records import COMMIT_PAYLOAD_CODEC
from health.envelopes import commitment_of, commitment_statement, open_sealed, unwrap_key

FIGURES = {
    "upload_single",
    "upload_committed",
    "upload_stored",
    *(f"upload_{step}" for step in records.STEPS),
    "upload_client_share",
    "fetch_p50",
    "fetch_p99",
    "fetch_local_p50",
    "fetch_local_p99",
    "rewrap_total",
    "rewrap_per_record",
    "seal_1k",
    "wrap_key",
}


def test_smoke_run_writes_every_figure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "records.json"
    assert records.main(["--smoke", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["mode"] == "smoke" and report["machine"]["cores"] >= 1
    figures = report["figures"]
    assert set(figures) == FIGURES
    assert all(value > 0 for value in figures.values())
    assert figures["fetch_p50"] <= figures["fetch_p99"]
    assert figures["fetch_local_p50"] <= figures["fetch_local_p99"]
    uploads = records.SMOKE.uploads
    assert report["counts"]["committed"] == report["counts"]["stored"] == uploads
    assert report["counts"]["blocks"] >= 1
    table = capsys.readouterr().out
    assert "fetch_p99" in table and "rd/s" in table and "cores" in table


def test_a_sealed_reading_is_what_the_client_uploads(tmp_path: Path) -> None:
    patient_key = PrivateKey.generate()
    owner = Identity(
        id=bytes(range(32)),
        role=HealthRole.PATIENT,
        signing_key=bytes(range(32)),
        encryption_key=bytes(patient_key.public_key),
        key_epoch=3,
        parent=bytes(32),
        kind="",
        label="",
        active=True,
        registered_height=1,
    )
    keystore = Keystore.create(
        tmp_path / "cgm.keystore", "pw", name="cgm", role=HealthRole.DEVICE, kdf=KDF_MIN
    )
    device = HealthClient("http://127.0.0.1:9", keystore, "chain")  # no request is sent
    steps = dict.fromkeys(records.STEPS, 0.0)
    sealed = records.seal_reading(device, owner, b"\x07" * 32, 5, steps)
    upload = sealed.upload
    assert steps["seal"] > 0 and steps["wrap"] > 0 and steps["sign"] > 0
    key = unwrap_key(upload.wrapped_keys[owner.id], upload.record, bytes(patient_key))
    content = open_sealed(
        upload.ciphertext, record_id=upload.record, owner=owner.id, key_epoch=3, data_key=key
    )
    reading = fhir.reading_of(fhir.loads(content))
    assert reading.mg_dl == 75 and reading.code == records.CGM_CODE
    commitment = commitment_of(upload.ciphertext)
    statement = commitment_statement(
        chain_id="chain",
        record_id=upload.record,
        owner=owner.id,
        resource_type=GLUCOSE_RESOURCE_TYPE,
        code=records.CGM_CODE,
        commitment=commitment,
        key_epoch=3,
        data_time_ms=upload.data_time_ms,
    )
    assert verify(keystore.signer.public_key, statement, upload.author_signature)
    payload = COMMIT_PAYLOAD_CODEC.decode(sealed.commit)
    assert payload.record == upload.record and payload.custodians == (b"\x07" * 32,)
    assert payload.ciphertext_sha256 == commitment.ciphertext_sha256


def test_percentiles_pick_the_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert records._percentile(values, 0.99) == 99.0
    assert records._percentile(values, 0.9) == 90.0
    assert records._percentile([5.0], 0.99) == 5.0
