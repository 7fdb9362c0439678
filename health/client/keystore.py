"""A party's keys in one file, encrypted at rest under a passphrase.

A keystore holds what a client must never lose nor leak: its Ed25519 signing seed, its
X25519 private key (and the previous ones, to open keys wrapped before a rotation), a
pending rotation, and the data keys of records it owns (the client-side copies that
erasure destroys: crypto-shredding).

The file is JSON::

    {"format": "bighealth-keystore", "version": 1,
     "kdf": {"algorithm": "argon2id13", "opslimit": N, "memlimit": N},
     "salt": b64, "nonce": b64, "ciphertext": b64}

The key is Argon2id (``nacl.pwhash.argon2id.kdf``) of the passphrase with the file's own
random salt and the stored costs (bounded when read, so a file cannot make us spend
unbounded memory); the contents are a JSON document sealed by ``nacl.secret.SecretBox``
(XSalsa20-Poly1305) under a fresh nonce at every save. A wrong passphrase and a modified
file look alike: the contents do not authenticate (``KeystoreError("wrong_passphrase")``).
The costs are fixed at creation: ``KDF_MODERATE`` for real files (about half a second),
``KDF_INTERACTIVE`` or ``KDF_MIN`` for tests.

Every change is saved at once, atomically (a temporary file in the same directory, written
with mode 0600, flushed, then renamed over the old one, the directory flushed): a crash
leaves the old file or the new one, never half of one. The derived key stays in memory
while the keystore is open, so saving does not pay the KDF again.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import nacl.utils
from nacl.exceptions import CryptoError
from nacl.public import PrivateKey
from nacl.pwhash import argon2id
from nacl.secret import SecretBox

from crypto_core.signatures import Ed25519KeyPair
from health.client.errors import KeystoreError
from health.contracts.common import ID_BYTES, HealthRole
from health.contracts.identity import rotate_payload
from health.envelopes import DATA_KEY_BYTES

FORMAT: Final = "bighealth-keystore"
VERSION: Final = 1
KDF_ALGORITHM: Final = "argon2id13"
MAX_FILE_BYTES: Final = 32 * 1024 * 1024
"""Largest keystore file read (100,000 data keys take about 18 MB)."""
DEFAULT_MAX_DATA_KEYS: Final = 100_000
MAX_PREVIOUS_ENCRYPTION_KEYS: Final = 32
"""Rotated-out X25519 keys kept to open records wrapped before a rotation (oldest dropped)."""
MAX_NAME_CHARS: Final = 64
FILE_MODE: Final = 0o600


@dataclass(frozen=True, slots=True)
class KdfParams:
    """Argon2id costs: ``opslimit`` passes over ``memlimit`` bytes."""

    opslimit: int
    memlimit: int


KDF_MODERATE: Final = KdfParams(argon2id.OPSLIMIT_MODERATE, argon2id.MEMLIMIT_MODERATE)
KDF_INTERACTIVE: Final = KdfParams(argon2id.OPSLIMIT_INTERACTIVE, argon2id.MEMLIMIT_INTERACTIVE)
KDF_MIN: Final = KdfParams(argon2id.OPSLIMIT_MIN, argon2id.MEMLIMIT_MIN)
_MAX_KDF: Final = KdfParams(argon2id.OPSLIMIT_SENSITIVE * 4, argon2id.MEMLIMIT_SENSITIVE)


@dataclass(frozen=True, slots=True)
class PendingRotation:
    """New keys made for ``identity.rotate_keys`` to key epoch ``epoch``, not in use until
    the rotation commits (``Keystore.complete_rotation``)."""

    epoch: int
    signing_seed: bytes
    encryption_key: bytes

    @property
    def signer(self) -> Ed25519KeyPair:
        """The new signing key."""
        return Ed25519KeyPair.from_seed(self.signing_seed)

    @property
    def encryption_public_key(self) -> bytes:
        """The new X25519 public key."""
        return bytes(PrivateKey(self.encryption_key).public_key)


@dataclass(slots=True)
class _Contents:
    """What the sealed part of the file holds."""

    name: str
    role: HealthRole
    identity: bytes
    signing_seed: bytes
    encryption_key: bytes
    previous_encryption_keys: list[bytes]
    pending: PendingRotation | None
    data_keys: dict[bytes, bytes]
    max_data_keys: int


class Keystore:
    """An open keystore (``create`` or ``open``; see the module docstring)."""

    def __init__(
        self, path: Path, box_key: bytes, salt: bytes, kdf: KdfParams, contents: _Contents
    ) -> None:
        """Use ``Keystore.create`` or ``Keystore.open``."""
        self._path = path
        self._box_key = box_key
        self._salt = salt
        self._kdf = kdf
        self._contents = contents
        self._signer = Ed25519KeyPair.from_seed(contents.signing_seed)

    # -- creation and opening ---------------------------------------------------------------

    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        passphrase: str | bytes,
        *,
        name: str,
        role: HealthRole | str,
        kdf: KdfParams = KDF_MODERATE,
        max_data_keys: int = DEFAULT_MAX_DATA_KEYS,
        signing_seed: bytes | None = None,
        encryption_private_key: bytes | None = None,
    ) -> Keystore:
        """A new keystore at ``path`` with fresh keys from the operating system's generator
        (or the given ones: importing the keys of an identity that exists, e.g. a genesis
        institution's); its identity id is the signing key (what ``identity.register``
        binds). ``KeystoreError("exists")`` if ``path`` exists; ``ValueError`` for an empty
        passphrase, a bad name, role, cost or key size."""
        target = Path(path)
        secret = _passphrase_bytes(passphrase)
        _check_kdf(kdf, ValueError)
        if not 0 < len(name) <= MAX_NAME_CHARS:
            raise ValueError(f"a keystore name has 1..{MAX_NAME_CHARS} characters")
        if max_data_keys < 0:
            raise ValueError("max_data_keys must be >= 0")
        if target.exists():
            raise KeystoreError("exists", f"{target} exists: refusing to overwrite a keystore")
        if signing_seed is None:
            signing_seed = nacl.utils.random(32)
        if encryption_private_key is None:
            encryption_private_key = bytes(PrivateKey.generate())
        if len(signing_seed) != 32 or len(encryption_private_key) != 32:
            raise ValueError("a signing seed and an X25519 private key are 32 bytes each")
        contents = _Contents(
            name=name,
            role=_role_of(role),
            identity=Ed25519KeyPair.from_seed(signing_seed).public_key,
            signing_seed=bytes(signing_seed),
            encryption_key=bytes(encryption_private_key),
            previous_encryption_keys=[],
            pending=None,
            data_keys={},
            max_data_keys=max_data_keys,
        )
        salt = nacl.utils.random(argon2id.SALTBYTES)
        keystore = cls(target, _derive(secret, salt, kdf), salt, kdf, contents)
        keystore._save()
        return keystore

    @classmethod
    def open(cls, path: str | os.PathLike[str], passphrase: str | bytes) -> Keystore:
        """The keystore at ``path``. ``KeystoreError``: ``missing``, ``malformed``,
        ``unsupported``, ``wrong_passphrase`` or ``io`` (see ``KeystoreError``)."""
        target = Path(path)
        secret = _passphrase_bytes(passphrase)
        document = _read_document(target)
        kdf, salt, nonce, ciphertext = _parse_header(document, target)
        box_key = _derive(secret, salt, kdf)
        try:
            plain = SecretBox(box_key).decrypt(ciphertext, nonce)
        except CryptoError:
            raise KeystoreError(
                "wrong_passphrase",
                f"{target} does not open with this passphrase (or the file was modified)",
            ) from None
        return cls(target, box_key, salt, kdf, _parse_contents(plain, target))

    # -- identity and keys ------------------------------------------------------------------

    @property
    def path(self) -> Path:
        """Where the keystore lives."""
        return self._path

    @property
    def name(self) -> str:
        """The local name given at creation."""
        return self._contents.name

    @property
    def role(self) -> HealthRole:
        """The role the party has (or will have) on chain."""
        return self._contents.role

    @property
    def identity_id(self) -> bytes:
        """The party's identity id: its first signing key (it stays through rotations)."""
        return self._contents.identity

    @property
    def signer(self) -> Ed25519KeyPair:
        """The current signing key (a ``node.ports.Signer``)."""
        return self._signer

    @property
    def encryption_private_key(self) -> bytes:
        """The current X25519 private key (32 bytes)."""
        return self._contents.encryption_key

    @property
    def encryption_public_key(self) -> bytes:
        """The current X25519 public key (32 bytes)."""
        return bytes(PrivateKey(self._contents.encryption_key).public_key)

    @property
    def decryption_keys(self) -> tuple[bytes, ...]:
        """Every X25519 private key that may open a key wrapped for us: the current one,
        then the rotated-out ones, newest first."""
        return (self._contents.encryption_key, *reversed(self._contents.previous_encryption_keys))

    @property
    def pending_rotation(self) -> PendingRotation | None:
        """A rotation made and not yet completed or cancelled."""
        return self._contents.pending

    def admission_keys(self) -> tuple[Ed25519KeyPair, bytes]:
        """The signing key and X25519 private key to register (``identity.register_payload``
        or ``identity.admission`` with a registrar's chain id)."""
        return self._signer, self._contents.encryption_key

    # -- rotation ---------------------------------------------------------------------------

    def rotate(
        self, *, chain_id: str, new_epoch: int, signing: bool = True, encryption: bool = True
    ) -> bytes:
        """The payload of ``identity.rotate_keys`` to new keys for key epoch ``new_epoch``
        (the identity's current epoch + 1); the new keys are saved as pending and used only
        after ``complete_rotation`` (the transaction is signed by the current key). Called
        again for the same epoch, it reuses the pending keys (a retry after a crash).
        ``ValueError`` if neither key changes; ``KeystoreError("state")`` if another
        epoch's rotation is pending."""
        if not (signing or encryption):
            raise ValueError("a rotation changes the signing key, the encryption key or both")
        pending = self._contents.pending
        if pending is not None and pending.epoch != new_epoch:
            raise KeystoreError(
                "state", f"a rotation to epoch {pending.epoch} is pending: complete or cancel it"
            )
        if pending is None:
            pending = PendingRotation(
                epoch=new_epoch,
                signing_seed=nacl.utils.random(32) if signing else self._contents.signing_seed,
                encryption_key=(
                    bytes(PrivateKey.generate()) if encryption else self._contents.encryption_key
                ),
            )
            self._contents.pending = pending
            self._save()
        return rotate_payload(
            pending.signer,
            pending.encryption_key,
            chain_id=chain_id,
            identity=self.identity_id,
            new_epoch=pending.epoch,
        )

    def complete_rotation(self) -> None:
        """Use the pending keys (the rotation committed); the old X25519 key is kept to open
        records wrapped for it. ``KeystoreError("state")`` without a pending rotation."""
        pending = self._require_pending()
        contents = self._contents
        if pending.encryption_key != contents.encryption_key:
            contents.previous_encryption_keys.append(contents.encryption_key)
            del contents.previous_encryption_keys[:-MAX_PREVIOUS_ENCRYPTION_KEYS]
        contents.signing_seed = pending.signing_seed
        contents.encryption_key = pending.encryption_key
        contents.pending = None
        self._signer = Ed25519KeyPair.from_seed(pending.signing_seed)
        self._save()

    def cancel_rotation(self) -> None:
        """Forget the pending keys (the rotation failed or was never sent)."""
        self._require_pending()
        self._contents.pending = None
        self._save()

    def _require_pending(self) -> PendingRotation:
        if self._contents.pending is None:
            raise KeystoreError("state", "no rotation is pending")
        return self._contents.pending

    # -- data keys --------------------------------------------------------------------------

    def remember_data_key(self, record: bytes, key: bytes) -> None:
        """Keep the data key of ``record`` (saved at once). ``ValueError`` for bad sizes;
        ``KeystoreError("state")`` when the keystore already holds ``max_data_keys``."""
        if len(record) != ID_BYTES or len(key) != DATA_KEY_BYTES:
            raise ValueError(f"a record id and a data key are {ID_BYTES} bytes each")
        keys = self._contents.data_keys
        if keys.get(record) == key:
            return
        if record not in keys and len(keys) >= self._contents.max_data_keys:
            raise KeystoreError(
                "state", f"the keystore holds {self._contents.max_data_keys} data keys already"
            )
        keys[record] = bytes(key)
        self._save()

    def data_key(self, record: bytes) -> bytes | None:
        """The remembered data key of ``record``, or None."""
        return self._contents.data_keys.get(record)

    def forget_data_keys(self, records: list[bytes] | tuple[bytes, ...]) -> int:
        """Delete the data keys of ``records`` (crypto-shredding after an erasure); how many
        were held. Saved at once (the file is rewritten under a new nonce)."""
        removed = sum(self._contents.data_keys.pop(r, None) is not None for r in records)
        if removed:
            self._save()
        return removed

    @property
    def data_key_count(self) -> int:
        """How many data keys are held."""
        return len(self._contents.data_keys)

    def change_passphrase(self, passphrase: str | bytes, *, kdf: KdfParams | None = None) -> None:
        """Re-encrypt the file under a new passphrase (a new salt; the costs kept unless
        ``kdf`` says otherwise)."""
        secret = _passphrase_bytes(passphrase)
        costs = self._kdf if kdf is None else kdf
        _check_kdf(costs, ValueError)
        salt = nacl.utils.random(argon2id.SALTBYTES)
        self._box_key, self._salt, self._kdf = _derive(secret, salt, costs), salt, costs
        self._save()

    def __repr__(self) -> str:  # never print a key
        return f"Keystore({str(self._path)!r}, identity={self.identity_id.hex()})"

    # -- persistence ------------------------------------------------------------------------

    def _save(self) -> None:
        plain = json.dumps(_contents_document(self._contents), sort_keys=True).encode()
        nonce = nacl.utils.random(SecretBox.NONCE_SIZE)
        sealed = SecretBox(self._box_key).encrypt(plain, nonce)
        document = {
            "format": FORMAT,
            "version": VERSION,
            "kdf": {
                "algorithm": KDF_ALGORITHM,
                "opslimit": self._kdf.opslimit,
                "memlimit": self._kdf.memlimit,
            },
            "salt": _b64(self._salt),
            "nonce": _b64(nonce),
            "ciphertext": _b64(sealed.ciphertext),
        }
        write_atomic(self._path, json.dumps(document, indent=1).encode() + b"\n")


# -- helpers ---------------------------------------------------------------------------------


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` by ``data`` atomically, the file mode 0600 (see the module
    docstring). ``KeystoreError("io")`` if the file system refuses."""
    temporary = path.with_name(f".{path.name}.{nacl.utils.random(6).hex()}.tmp")
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        try:
            os.fchmod(descriptor, FILE_MODE)
            view = memoryview(data)
            while view:
                view = view[os.write(descriptor, view) :]
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        os.replace(temporary, path)
        _sync_directory(path.parent)
    except OSError as exc:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise KeystoreError("io", f"cannot write {path}: {exc.strerror or exc}") from exc


def _sync_directory(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not every file system lets a directory be flushed
        descriptor = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def _passphrase_bytes(passphrase: str | bytes) -> bytes:
    secret = passphrase.encode("utf-8") if isinstance(passphrase, str) else bytes(passphrase)
    if not secret:
        raise ValueError("a keystore needs a non-empty passphrase")
    return secret


def _check_kdf(kdf: KdfParams, error: type[Exception]) -> None:
    if not (
        argon2id.OPSLIMIT_MIN <= kdf.opslimit <= _MAX_KDF.opslimit
        and argon2id.MEMLIMIT_MIN <= kdf.memlimit <= _MAX_KDF.memlimit
    ):
        raise error(
            f"Argon2id costs out of range: opslimit {argon2id.OPSLIMIT_MIN}..{_MAX_KDF.opslimit},"
            f" memlimit {argon2id.MEMLIMIT_MIN}..{_MAX_KDF.memlimit}"
        )


def _derive(secret: bytes, salt: bytes, kdf: KdfParams) -> bytes:
    return bytes(
        argon2id.kdf(SecretBox.KEY_SIZE, secret, salt, opslimit=kdf.opslimit, memlimit=kdf.memlimit)
    )


def _role_of(role: HealthRole | str) -> HealthRole:
    if isinstance(role, HealthRole):
        return role
    try:
        return HealthRole[role.upper()]
    except KeyError:
        names = ", ".join(r.name.lower() for r in HealthRole)
        raise ValueError(f"role {role!r} is not one of {names}") from None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _read_document(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise KeystoreError("missing", f"no keystore at {path}") from None
    except OSError as exc:
        raise KeystoreError("io", f"cannot read {path}: {exc.strerror or exc}") from exc
    if len(raw) > MAX_FILE_BYTES:
        raise KeystoreError("malformed", f"{path} is larger than any keystore")
    try:
        document = json.loads(raw)
    except ValueError:
        raise KeystoreError("malformed", f"{path} is not a keystore (not JSON)") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise KeystoreError("malformed", f"{path} is not a {FORMAT} file")
    return document


def _parse_header(document: dict[str, Any], path: Path) -> tuple[KdfParams, bytes, bytes, bytes]:
    """The costs, salt, nonce and ciphertext of a keystore document."""
    if document.get("version") != VERSION:
        raise KeystoreError(
            "unsupported", f"{path}: keystore version {document.get('version')!r} is not read here"
        )
    kdf = document.get("kdf")
    if not isinstance(kdf, dict) or kdf.get("algorithm") != KDF_ALGORITHM:
        raise KeystoreError("unsupported", f"{path}: the key derivation is not {KDF_ALGORITHM}")
    opslimit, memlimit = kdf.get("opslimit"), kdf.get("memlimit")
    if type(opslimit) is not int or type(memlimit) is not int:
        raise KeystoreError("malformed", f"{path}: the Argon2id costs are not integers")
    costs = KdfParams(opslimit, memlimit)
    try:
        _check_kdf(costs, ValueError)
    except ValueError as exc:
        raise KeystoreError("unsupported", f"{path}: {exc}") from None
    salt = _b64_field(document, "salt", path)
    nonce = _b64_field(document, "nonce", path)
    ciphertext = _b64_field(document, "ciphertext", path)
    if len(salt) != argon2id.SALTBYTES or len(nonce) != SecretBox.NONCE_SIZE:
        raise KeystoreError("malformed", f"{path}: the salt or the nonce has a wrong size")
    return costs, salt, nonce, ciphertext


def _b64_field(document: dict[str, Any], name: str, path: Path) -> bytes:
    value = document.get(name)
    if not isinstance(value, str):
        raise KeystoreError("malformed", f"{path}: no {name}")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise KeystoreError("malformed", f"{path}: the {name} is not base64") from None


def _contents_document(contents: _Contents) -> dict[str, Any]:
    pending = contents.pending
    return {
        "name": contents.name,
        "role": contents.role.name.lower(),
        "identity": contents.identity.hex(),
        "signing_seed": contents.signing_seed.hex(),
        "encryption_key": contents.encryption_key.hex(),
        "previous_encryption_keys": [key.hex() for key in contents.previous_encryption_keys],
        "pending_rotation": None
        if pending is None
        else {
            "epoch": pending.epoch,
            "signing_seed": pending.signing_seed.hex(),
            "encryption_key": pending.encryption_key.hex(),
        },
        "data_keys": {record.hex(): key.hex() for record, key in contents.data_keys.items()},
        "max_data_keys": contents.max_data_keys,
    }


def _parse_contents(plain: bytes, path: Path) -> _Contents:
    """The sealed contents (authenticated, so only a bug or another version could make
    them malformed: still a typed error, never a crash)."""
    try:
        document = json.loads(plain)
        pending = document["pending_rotation"]
        contents = _Contents(
            name=str(document["name"]),
            role=_role_of(str(document["role"])),
            identity=_hex_of(document["identity"], ID_BYTES),
            signing_seed=_hex_of(document["signing_seed"], 32),
            encryption_key=_hex_of(document["encryption_key"], 32),
            previous_encryption_keys=[
                _hex_of(key, 32) for key in document["previous_encryption_keys"]
            ],
            pending=None
            if pending is None
            else PendingRotation(
                epoch=int(pending["epoch"]),
                signing_seed=_hex_of(pending["signing_seed"], 32),
                encryption_key=_hex_of(pending["encryption_key"], 32),
            ),
            data_keys={
                _hex_of(record, ID_BYTES): _hex_of(key, DATA_KEY_BYTES)
                for record, key in document["data_keys"].items()
            },
            max_data_keys=int(document["max_data_keys"]),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise KeystoreError("malformed", f"{path}: the keystore's contents are damaged") from exc
    return contents


def _hex_of(value: object, size: int) -> bytes:
    if not isinstance(value, str):
        raise TypeError("expected hex text")
    data = bytes.fromhex(value)
    if len(data) != size:
        raise ValueError(f"expected {size} bytes")
    return data
