"""The keystore: keys encrypted at rest under a passphrase, saved atomically, mode 0600."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest

from crypto_core.signatures import verify
from health.client.errors import KeystoreError
from health.client.keystore import KDF_INTERACTIVE, KDF_MIN, KdfParams, Keystore
from health.contracts.common import HealthRole
from health.contracts.identity import ROTATION_CODEC, rotation_statement
from health.envelopes import unwrap_key, wrap_key
from health.xeddsa import verify as xeddsa_verify

PASS = "correct horse battery staple"
RECORD = bytes(range(32))
KEY = bytes(range(32, 64))


def make(tmp_path: Path, name: str = "alice", max_data_keys: int = 100) -> Keystore:
    return Keystore.create(
        tmp_path / f"{name}.keystore",
        PASS,
        name=name,
        role="patient",
        kdf=KDF_MIN,
        max_data_keys=max_data_keys,
    )


def test_round_trip_keeps_every_key(tmp_path: Path) -> None:
    keystore = make(tmp_path)
    keystore.remember_data_key(RECORD, KEY)
    opened = Keystore.open(keystore.path, PASS)
    assert opened.name == "alice"
    assert opened.role is HealthRole.PATIENT
    assert opened.identity_id == keystore.identity_id == keystore.signer.public_key
    assert opened.signer.public_key == keystore.signer.public_key
    assert opened.encryption_private_key == keystore.encryption_private_key
    assert opened.encryption_public_key == keystore.encryption_public_key
    assert opened.data_key(RECORD) == KEY
    signature = opened.signer.sign(b"message")
    assert verify(keystore.signer.public_key, b"message", signature)


def test_keys_are_fresh_per_keystore(tmp_path: Path) -> None:
    one, two = make(tmp_path, "one"), make(tmp_path, "two")
    assert one.signer.public_key != two.signer.public_key
    assert one.encryption_private_key != two.encryption_private_key


def test_the_file_holds_no_key_in_clear(tmp_path: Path) -> None:
    keystore = make(tmp_path)
    keystore.remember_data_key(RECORD, KEY)
    raw = keystore.path.read_bytes()
    for secret in (keystore.signer.seed, keystore.encryption_private_key, KEY):
        assert secret.hex().encode() not in raw
        assert base64.b64encode(secret) not in raw
    document = json.loads(raw)
    assert document["format"] == "bighealth-keystore"
    assert document["version"] == 1
    assert document["kdf"] == {
        "algorithm": "argon2id13",
        "opslimit": KDF_MIN.opslimit,
        "memlimit": KDF_MIN.memlimit,
    }


def test_file_mode_is_0600_and_stays_so(tmp_path: Path) -> None:
    keystore = make(tmp_path)
    assert stat.S_IMODE(keystore.path.stat().st_mode) == 0o600
    keystore.remember_data_key(RECORD, KEY)
    assert stat.S_IMODE(keystore.path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["alice.keystore"]  # no temporary left


def test_every_save_uses_a_new_nonce(tmp_path: Path) -> None:
    keystore = make(tmp_path)
    before = json.loads(keystore.path.read_bytes())
    keystore.remember_data_key(RECORD, KEY)
    after = json.loads(keystore.path.read_bytes())
    assert before["nonce"] != after["nonce"]
    assert before["salt"] == after["salt"]


def test_wrong_passphrase_is_refused(tmp_path: Path) -> None:
    keystore = make(tmp_path)
    with pytest.raises(KeystoreError) as caught:
        Keystore.open(keystore.path, "not the passphrase")
    assert caught.value.reason == "wrong_passphrase"


def test_tampered_ciphertext_is_refused(tmp_path: Path) -> None:
    keystore = make(tmp_path)
    document = json.loads(keystore.path.read_bytes())
    sealed = bytearray(base64.b64decode(document["ciphertext"]))
    sealed[len(sealed) // 2] ^= 1
    document["ciphertext"] = base64.b64encode(bytes(sealed)).decode()
    keystore.path.write_text(json.dumps(document))
    with pytest.raises(KeystoreError) as caught:
        Keystore.open(keystore.path, PASS)
    assert caught.value.reason == "wrong_passphrase"


def test_tampered_costs_or_salt_do_not_open(tmp_path: Path) -> None:
    keystore = make(tmp_path)
    original = json.loads(keystore.path.read_bytes())
    salted = dict(original, salt=base64.b64encode(bytes(16)).decode())
    keystore.path.write_text(json.dumps(salted))
    with pytest.raises(KeystoreError) as caught:
        Keystore.open(keystore.path, PASS)
    assert caught.value.reason == "wrong_passphrase"
    costly = dict(original, kdf=dict(original["kdf"], memlimit=2**40))
    keystore.path.write_text(json.dumps(costly))
    with pytest.raises(KeystoreError) as caught:
        Keystore.open(keystore.path, PASS)
    assert caught.value.reason == "unsupported"  # a file cannot make us spend a terabyte


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "malformed"),
        (b"not json", "malformed"),
        (b"[1, 2]", "malformed"),
        (b'{"format": "something-else"}', "malformed"),
        (b'{"format": "bighealth-keystore", "version": 99}', "unsupported"),
        (
            b'{"format": "bighealth-keystore", "version": 1, "kdf": {"algorithm": "scrypt"}}',
            "unsupported",
        ),
    ],
)
def test_foreign_or_damaged_files_are_refused(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "foreign"
    path.write_bytes(content)
    with pytest.raises(KeystoreError) as caught:
        Keystore.open(path, PASS)
    assert caught.value.reason == reason


def test_damaged_header_fields_are_malformed(tmp_path: Path) -> None:
    keystore = make(tmp_path)
    original = json.loads(keystore.path.read_bytes())
    for broken in (
        dict(original, nonce="!!!"),
        dict(original, nonce=base64.b64encode(b"short").decode()),
        {k: v for k, v in original.items() if k != "ciphertext"},
        dict(original, kdf=dict(original["kdf"], opslimit="1")),
    ):
        keystore.path.write_text(json.dumps(broken))
        with pytest.raises(KeystoreError) as caught:
            Keystore.open(keystore.path, PASS)
        assert caught.value.reason == "malformed"


def test_missing_file_and_existing_file(tmp_path: Path) -> None:
    with pytest.raises(KeystoreError) as caught:
        Keystore.open(tmp_path / "nothing", PASS)
    assert caught.value.reason == "missing"
    keystore = make(tmp_path)
    with pytest.raises(KeystoreError) as caught:
        Keystore.create(keystore.path, PASS, name="again", role="patient", kdf=KDF_MIN)
    assert caught.value.reason == "exists"


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="passphrase"):
        Keystore.create(tmp_path / "k", "", name="a", role="patient", kdf=KDF_MIN)
    with pytest.raises(ValueError, match="role"):
        Keystore.create(tmp_path / "k", PASS, name="a", role="janitor", kdf=KDF_MIN)
    with pytest.raises(ValueError, match="costs"):
        Keystore.create(tmp_path / "k", PASS, name="a", role="patient", kdf=KdfParams(0, 0))
    keystore = make(tmp_path)
    with pytest.raises(ValueError):
        keystore.remember_data_key(b"short", KEY)


def test_interactive_costs_round_trip(tmp_path: Path) -> None:
    keystore = Keystore.create(
        tmp_path / "k", PASS, name="clinic", role=HealthRole.INSTITUTION, kdf=KDF_INTERACTIVE
    )
    assert Keystore.open(keystore.path, PASS).role is HealthRole.INSTITUTION


def test_data_keys_are_forgotten_for_good(tmp_path: Path) -> None:
    keystore = make(tmp_path)
    other = bytes(32)
    keystore.remember_data_key(RECORD, KEY)
    keystore.remember_data_key(other, KEY)
    assert keystore.forget_data_keys([RECORD, bytes([9] * 32)]) == 1
    reopened = Keystore.open(keystore.path, PASS)
    assert reopened.data_key(RECORD) is None
    assert reopened.data_key(other) == KEY
    assert reopened.data_key_count == 1


def test_data_keys_are_bounded(tmp_path: Path) -> None:
    keystore = make(tmp_path, max_data_keys=2)
    keystore.remember_data_key(bytes([1] * 32), KEY)
    keystore.remember_data_key(bytes([2] * 32), KEY)
    keystore.remember_data_key(bytes([2] * 32), KEY)  # the same again: no growth
    with pytest.raises(KeystoreError) as caught:
        keystore.remember_data_key(bytes([3] * 32), KEY)
    assert caught.value.reason == "state"


def test_rotation_is_pending_until_completed(tmp_path: Path) -> None:
    keystore = make(tmp_path)
    old_signer, old_encryption = keystore.signer, keystore.encryption_private_key
    identity = keystore.identity_id
    payload = keystore.rotate(chain_id="bh-test", new_epoch=1)
    rotation = ROTATION_CODEC.decode(payload)
    statement = rotation_statement(
        "bh-test", identity, 1, rotation.signing_key, rotation.encryption_key
    )
    assert verify(rotation.signing_key, statement, rotation.signing_proof)
    assert xeddsa_verify(rotation.encryption_key, statement, rotation.encryption_proof)
    assert keystore.signer == old_signer  # the rotation is not committed yet
    # A crash now: the pending keys survive, and the same epoch gives the same keys.
    reopened = Keystore.open(keystore.path, PASS)
    pending = reopened.pending_rotation
    assert pending is not None and pending.signer.public_key == rotation.signing_key
    again = ROTATION_CODEC.decode(reopened.rotate(chain_id="bh-test", new_epoch=1))
    assert again.signing_key == rotation.signing_key
    with pytest.raises(KeystoreError):
        reopened.rotate(chain_id="bh-test", new_epoch=2)
    reopened.complete_rotation()
    assert reopened.signer.public_key == rotation.signing_key
    assert reopened.encryption_public_key == rotation.encryption_key
    assert reopened.identity_id == identity  # the id stays through rotations
    assert reopened.decryption_keys == (reopened.encryption_private_key, old_encryption)
    final = Keystore.open(keystore.path, PASS)
    assert final.signer.public_key == rotation.signing_key
    assert final.pending_rotation is None
    assert final.decryption_keys[1] == old_encryption


def test_old_encryption_keys_still_open_old_records(tmp_path: Path) -> None:
    keystore = make(tmp_path)
    wrapped = wrap_key(KEY, RECORD, keystore.encryption_public_key)
    keystore.rotate(chain_id="bh-test", new_epoch=1, signing=False)
    keystore.complete_rotation()
    opened = [
        private
        for private in Keystore.open(keystore.path, PASS).decryption_keys
        if _opens(wrapped, private)
    ]
    assert len(opened) == 1


def _opens(wrapped: bytes, private: bytes) -> bool:
    try:
        return unwrap_key(wrapped, RECORD, private) == KEY
    except Exception:
        return False


def test_rotation_of_the_encryption_key_only_and_cancel(tmp_path: Path) -> None:
    keystore = make(tmp_path)
    signer = keystore.signer
    keystore.rotate(chain_id="bh-test", new_epoch=1, signing=False)
    keystore.cancel_rotation()
    assert keystore.pending_rotation is None
    assert Keystore.open(keystore.path, PASS).pending_rotation is None
    keystore.rotate(chain_id="bh-test", new_epoch=1, signing=False)
    keystore.complete_rotation()
    assert keystore.signer == signer
    with pytest.raises(KeystoreError):
        keystore.complete_rotation()
    with pytest.raises(ValueError):
        keystore.rotate(chain_id="bh-test", new_epoch=2, signing=False, encryption=False)


def test_change_passphrase(tmp_path: Path) -> None:
    keystore = make(tmp_path)
    keystore.change_passphrase("a new one")
    with pytest.raises(KeystoreError):
        Keystore.open(keystore.path, PASS)
    assert Keystore.open(keystore.path, "a new one").signer == keystore.signer


def test_repr_shows_no_secret(tmp_path: Path) -> None:
    keystore = make(tmp_path)
    text = repr(keystore) + repr(keystore.signer)
    assert keystore.signer.seed.hex() not in text
    assert keystore.encryption_private_key.hex() not in text


def test_existing_keys_can_be_imported(tmp_path: Path) -> None:
    seed, private = bytes([7] * 32), bytes([8] * 32)
    keystore = Keystore.create(
        tmp_path / "k",
        PASS,
        name="hospital",
        role="institution",
        kdf=KDF_MIN,
        signing_seed=seed,
        encryption_private_key=private,
    )
    opened = Keystore.open(keystore.path, PASS)
    assert opened.signer.seed == seed and opened.encryption_private_key == private
    assert opened.identity_id == opened.signer.public_key
    with pytest.raises(ValueError, match="32 bytes"):
        Keystore.create(
            tmp_path / "short", PASS, name="h", role="institution", kdf=KDF_MIN, signing_seed=b"x"
        )
