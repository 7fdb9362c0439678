"""The identity registry of the health chain, and its ``Authenticator``.

State (records and codecs in ``common.py``): ``identity/i/<id>`` the identity,
``identity/n/<id>`` the peer id of its node (custodians),
``identity/k/<signing key>`` every signing key ever bound (its nonce; inactive after a
rotation, so it can never sign again), ``identity/c/<parent><child>`` the children of an
institution (practitioners, patients) and of a patient (devices).

Transactions:

- ``identity.register`` (``Admission``): an acting institution registers a practitioner
  (kind = specialty, a label) or a patient; an acting patient pairs a device (kind
  ``glucose_meter``, ``cgm`` or ``insulin_pump``). Institutions and auditors are admitted by
  governance (module calls ``admit_institution``, ``admit_auditor``).
- ``identity.rotate_keys`` (``Rotation``): the identity replaces its signing key, its
  encryption key or both; the key epoch grows by one.
- ``identity.announce_node`` (``NodeAnnouncement``): an institution or a patient names the
  libp2p peer id of the node that keeps its records (``identity/n/<id>``), so peers can
  reach the custodians a record commitment lists.
- ``identity.deactivate``: the identity itself (not an institution: governance does that)
  or its parent deactivates it; a deactivated identity never acts again (``set_active``
  from governance may reinstate a suspended institution).

Proofs of possession: the signing key signs, and the encryption key XEdDSA-signs
(``health.xeddsa``), ``IDENTITY_DOMAIN ‖ msgpack([chain_id, registrar, role, signing key,
encryption key])`` — registrar is the registering identity's id, ``GOVERNANCE_REGISTRAR``
for admissions; a rotation signs ``ROTATION_DOMAIN ‖ msgpack([chain_id, id, new epoch,
signing key, encryption key])``. A proof binds the chain, the registrar and the role, so it
cannot be replayed elsewhere.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Final, cast

import msgpack
from nacl.public import PrivateKey

from crypto_core.signatures import verify
from health import xeddsa
from health.contracts.common import (
    CHILD_PREFIX,
    DEVICE_KINDS,
    ENCRYPTION_KEY_BYTES,
    IDENTITY_CODEC,
    IDENTITY_PREFIX,
    INSTITUTION_KINDS,
    KEY_ENTRY_CODEC,
    KEY_PREFIX,
    MAX_LABEL_CHARS,
    HealthRole,
    Identity,
    KeyEntry,
    check_name,
    child_key,
    get_identity,
    get_key_entry,
    identity_key,
    identity_of_sender,
    is_acting,
    signing_key_key,
)
from node.app.errors import TxFailed
from node.app.module import (
    CheckContext,
    ExecContext,
    JsonValue,
    KeyReader,
    Module,
    decode_payload,
)
from node.app.view import WriteBuffer
from node.codec import Bool, Bytes, EnumOf, StructCodec, Text
from node.ports import Signer
from node.types import PUBLIC_KEY_BYTES, SIGNATURE_BYTES, ResultCode, Transaction

IDENTITY: Final = "identity"
IDENTITY_DOMAIN: Final = b"bighealth/identity/v1\x00"
ROTATION_DOMAIN: Final = b"bighealth/identity-rotate/v1\x00"
GOVERNANCE_REGISTRAR: Final = bytes(32)
"""The registrar named in the proofs of identities that governance admits."""

# Which roles an identity of a role may register, and the kinds each registered role takes.
REGISTRATION_RIGHTS: Final = {
    HealthRole.INSTITUTION: frozenset({HealthRole.PRACTITIONER, HealthRole.PATIENT}),
    HealthRole.PATIENT: frozenset({HealthRole.DEVICE}),
}


@dataclass(frozen=True, slots=True)
class Admission:
    """A new identity with its keys and both proofs of possession (``identity.register``,
    and the body governance passes to ``admit_institution``/``admit_auditor``)."""

    role: HealthRole
    kind: str
    label: str
    signing_key: bytes
    encryption_key: bytes
    signing_proof: bytes
    encryption_proof: bytes


@dataclass(frozen=True, slots=True)
class Rotation:
    """``identity.rotate_keys``: the new keys (either may equal the current one)."""

    signing_key: bytes
    encryption_key: bytes
    signing_proof: bytes
    encryption_proof: bytes


@dataclass(frozen=True, slots=True)
class Deactivation:
    """``identity.deactivate``: the identity to deactivate."""

    identity: bytes


@dataclass(frozen=True, slots=True)
class NodeAnnouncement:
    """``identity.announce_node``: the libp2p peer id (text) of the sender's node."""

    peer_id: str


@dataclass(frozen=True, slots=True)
class SetActive:
    """Module call ``identity.set_active`` (governance): suspend or reinstate."""

    identity: bytes
    active: bool


@dataclass(frozen=True, slots=True)
class GenesisIdentity:
    """An identity that exists from the start (the genesis document is trusted: no proofs)."""

    role: HealthRole
    kind: str
    label: str
    signing_key: bytes
    encryption_key: bytes
    parent: bytes = b""


_KEY = Bytes.exactly(PUBLIC_KEY_BYTES)
_ENC_KEY = Bytes.exactly(ENCRYPTION_KEY_BYTES)
_PROOF = Bytes.exactly(SIGNATURE_BYTES)
ADMISSION_CODEC: Final = StructCodec(
    Admission,
    [
        ("role", EnumOf(HealthRole)),
        ("kind", Text(32)),
        ("label", Text(MAX_LABEL_CHARS)),
        ("signing_key", _KEY),
        ("encryption_key", _ENC_KEY),
        ("signing_proof", _PROOF),
        ("encryption_proof", _PROOF),
    ],
    512,
)
ROTATION_CODEC: Final = StructCodec(
    Rotation,
    [
        ("signing_key", _KEY),
        ("encryption_key", _ENC_KEY),
        ("signing_proof", _PROOF),
        ("encryption_proof", _PROOF),
    ],
    256,
)
DEACTIVATION_CODEC: Final = StructCodec(Deactivation, [("identity", _KEY)], 64)
SET_ACTIVE_CODEC: Final = StructCodec(SetActive, [("identity", _KEY), ("active", Bool())], 64)
PEER_ID_PATTERN: Final = re.compile(r"[1-9A-HJ-NP-Za-km-z]{32,64}", re.ASCII)
"""A libp2p peer id in its base58 text form (``12D3KooW…``, ``Qm…``)."""
NODE_ANNOUNCEMENT_CODEC: Final = StructCodec(
    NodeAnnouncement, [("peer_id", Text(64, PEER_ID_PATTERN))], 96
)
NODE_PREFIX: Final = b"identity/n/"
NODE_ANNOUNCERS: Final = frozenset({HealthRole.INSTITUTION, HealthRole.PATIENT})


# -- proofs and client helpers ---------------------------------------------------------------


def identity_statement(
    chain_id: str, registrar: bytes, role: HealthRole, signing_key: bytes, encryption_key: bytes
) -> bytes:
    """What both keys of a new identity sign as proof of possession."""
    body = msgpack.packb(
        [chain_id, registrar, int(role), signing_key, encryption_key], use_bin_type=True
    )
    return IDENTITY_DOMAIN + cast(bytes, body)


def rotation_statement(
    chain_id: str, identity: bytes, epoch: int, signing_key: bytes, encryption_key: bytes
) -> bytes:
    """What both new keys sign when an identity rotates to key epoch ``epoch``."""
    body = msgpack.packb(
        [chain_id, identity, epoch, signing_key, encryption_key], use_bin_type=True
    )
    return ROTATION_DOMAIN + cast(bytes, body)


def _x25519_public(private_key: bytes) -> bytes:
    return bytes(PrivateKey(private_key).public_key)


def admission(
    signer: Signer,
    encryption_private_key: bytes,
    *,
    chain_id: str,
    role: HealthRole,
    kind: str = "",
    label: str = "",
    registrar: bytes = GOVERNANCE_REGISTRAR,
) -> Admission:
    """A new identity's ``Admission``, both proofs made with its private keys (client)."""
    encryption_key = _x25519_public(encryption_private_key)
    statement = identity_statement(chain_id, registrar, role, signer.public_key, encryption_key)
    return Admission(
        role,
        kind,
        label,
        signer.public_key,
        encryption_key,
        signer.sign(statement),
        xeddsa.sign(encryption_private_key, statement),
    )


def register_payload(
    signer: Signer,
    encryption_private_key: bytes,
    *,
    chain_id: str,
    registrar: bytes,
    role: HealthRole,
    kind: str = "",
    label: str = "",
) -> bytes:
    """The payload of ``identity.register`` by ``registrar`` for a new identity (client)."""
    new = admission(
        signer,
        encryption_private_key,
        chain_id=chain_id,
        role=role,
        kind=kind,
        label=label,
        registrar=registrar,
    )
    return ADMISSION_CODEC.encode(new)


def rotate_payload(
    signer: Signer,
    encryption_private_key: bytes,
    *,
    chain_id: str,
    identity: bytes,
    new_epoch: int,
) -> bytes:
    """The payload of ``identity.rotate_keys`` to the given new keys (client)."""
    encryption_key = _x25519_public(encryption_private_key)
    statement = rotation_statement(chain_id, identity, new_epoch, signer.public_key, encryption_key)
    rotation = Rotation(
        signer.public_key,
        encryption_key,
        signer.sign(statement),
        xeddsa.sign(encryption_private_key, statement),
    )
    return ROTATION_CODEC.encode(rotation)


def announce_node_payload(peer_id: str) -> bytes:
    """The payload of ``identity.announce_node`` (client)."""
    return NODE_ANNOUNCEMENT_CODEC.encode(NodeAnnouncement(peer_id))


def node_key(identity_id: bytes) -> bytes:
    """The state key of an identity's announced node."""
    return NODE_PREFIX + identity_id


def node_of(reader: KeyReader, identity_id: bytes) -> str | None:
    """The peer id of the node ``identity_id`` announced, or None."""
    stored = reader.get(node_key(identity_id))
    return None if stored is None else NODE_ANNOUNCEMENT_CODEC.decode(stored).peer_id


def deactivate_payload(identity_id: bytes) -> bytes:
    """The payload of ``identity.deactivate`` (client)."""
    return DEACTIVATION_CODEC.encode(Deactivation(identity_id))


# -- checks ----------------------------------------------------------------------------------


def _check_kind_and_label(role: HealthRole, kind: str, label: str) -> None:
    if role is HealthRole.INSTITUTION:
        check_name(kind, "institution kind", INSTITUTION_KINDS)
    elif role is HealthRole.DEVICE:
        check_name(kind, "device kind", DEVICE_KINDS)
    elif role is HealthRole.PRACTITIONER:
        check_name(kind, "specialty")
    elif kind:
        raise TxFailed(ResultCode.INVALID_PAYLOAD, f"a {role.name.lower()} has no kind")
    public_label = role in (HealthRole.INSTITUTION, HealthRole.PRACTITIONER, HealthRole.AUDITOR)
    if public_label and not label.strip():
        raise TxFailed(ResultCode.INVALID_PAYLOAD, f"a {role.name.lower()} needs a label")
    if not public_label and label:
        raise TxFailed(ResultCode.INVALID_PAYLOAD, f"a {role.name.lower()} is pseudonymous")


def _check_new_keys(reader: KeyReader, signing_key: bytes) -> None:
    if get_key_entry(reader, signing_key) is not None:
        raise TxFailed(ResultCode.CONFLICT, f"signing key {signing_key.hex()} is bound")
    if get_identity(reader, signing_key) is not None:
        raise TxFailed(ResultCode.CONFLICT, f"identity {signing_key.hex()} exists")


def _check_proofs(statement: bytes, new: Admission | Rotation) -> None:
    if not verify(new.signing_key, statement, new.signing_proof):
        raise TxFailed(ResultCode.UNAUTHORIZED, "the signing key's proof does not verify")
    if not xeddsa.verify(new.encryption_key, statement, new.encryption_proof):
        raise TxFailed(ResultCode.UNAUTHORIZED, "the encryption key's proof does not verify")


def check_admission(reader: KeyReader, chain_id: str, registrar: bytes, new: Admission) -> None:
    """Everything a new identity must satisfy besides its registrar's rights."""
    _check_kind_and_label(new.role, new.kind, new.label)
    _check_new_keys(reader, new.signing_key)
    statement = identity_statement(
        chain_id, registrar, new.role, new.signing_key, new.encryption_key
    )
    _check_proofs(statement, new)


def _check_announcer(reader: KeyReader, sender: bytes) -> Identity:
    identity = identity_of_sender(reader, sender)
    if identity is None or identity.role not in NODE_ANNOUNCERS or not is_acting(reader, identity):
        raise TxFailed(
            ResultCode.UNAUTHORIZED, "only an acting institution or patient announces a node"
        )
    return identity


def _registrar_of(reader: KeyReader, sender: bytes, role: HealthRole) -> Identity:
    registrar = identity_of_sender(reader, sender)
    if registrar is None or not is_acting(reader, registrar):
        raise TxFailed(ResultCode.UNAUTHORIZED, "only an acting identity registers others")
    if role not in REGISTRATION_RIGHTS.get(registrar.role, frozenset()):
        raise TxFailed(
            ResultCode.UNAUTHORIZED,
            f"a {registrar.role.name.lower()} may not register a {role.name.lower()}",
        )
    return registrar


# -- the module ------------------------------------------------------------------------------


class IdentityModule(Module):
    """Health identities, their keys and nonces; the chain's ``Authenticator``."""

    name = IDENTITY
    actions = frozenset({"register", "rotate_keys", "announce_node", "deactivate"})

    def __init__(self, genesis_identities: Sequence[GenesisIdentity] = ()) -> None:
        keys = [identity.signing_key for identity in genesis_identities]
        if len(set(keys)) != len(keys):
            raise ValueError("a genesis identity is listed twice")
        for identity in genesis_identities:
            if len(identity.signing_key) != PUBLIC_KEY_BYTES:
                raise ValueError("genesis signing keys are 32-byte Ed25519 keys")
            if len(identity.encryption_key) != ENCRYPTION_KEY_BYTES:
                raise ValueError("genesis encryption keys are 32-byte X25519 keys")
            try:
                _check_kind_and_label(identity.role, identity.kind, identity.label)
            except TxFailed as exc:
                raise ValueError(f"genesis identity {identity.signing_key.hex()}: {exc}") from exc
        self.genesis_identities = tuple(genesis_identities)

    @classmethod
    def from_app_state(cls, value: JsonValue) -> IdentityModule:
        """The module for a genesis' ``app_state["identity"]`` (see docs/HEALTH.md);
        ``ValueError`` says what is wrong."""
        return cls(parse_genesis_identities(value))

    def init_genesis(self, ctx: ExecContext) -> None:
        for genesis in self.genesis_identities:
            identity = Identity(
                id=genesis.signing_key,
                role=genesis.role,
                kind=genesis.kind,
                label=genesis.label,
                parent=genesis.parent,
                signing_key=genesis.signing_key,
                encryption_key=genesis.encryption_key,
                key_epoch=0,
                active=True,
                registered_height=ctx.block.height,
            )
            _write_new(ctx, identity)

    # -- Authenticator ----------------------------------------------------------------------

    def authenticate(self, reader: KeyReader, sender: bytes) -> None:
        """``TxFailed`` unless ``sender`` is the current key of an acting identity."""
        entry = get_key_entry(reader, sender)
        if entry is None:
            raise TxFailed(ResultCode.UNKNOWN_SENDER, f"no identity with key {sender.hex()}")
        if not entry.active:
            raise TxFailed(ResultCode.ACCOUNT_INACTIVE, "this key was rotated out")
        if not is_acting(reader, get_identity(reader, entry.identity)):
            raise TxFailed(
                ResultCode.ACCOUNT_INACTIVE, f"identity {entry.identity.hex()} is inactive"
            )

    def next_nonce(self, reader: KeyReader, sender: bytes) -> int:
        """The nonce the next transaction signed by ``sender`` carries (0 if unknown)."""
        entry = get_key_entry(reader, sender)
        return 0 if entry is None else entry.next_nonce

    def consume_nonce(self, buffer: WriteBuffer, sender: bytes) -> None:
        """Advance the nonce of ``sender`` (authenticated before)."""
        entry = get_key_entry(buffer, sender)
        if entry is None:
            raise AssertionError("consume_nonce of an unauthenticated sender")
        updated = replace(entry, next_nonce=entry.next_nonce + 1)
        buffer.set(signing_key_key(sender), KEY_ENTRY_CODEC.encode_remembered(updated))

    # -- transactions -----------------------------------------------------------------------

    def check_tx(self, ctx: CheckContext, tx: Transaction) -> None:
        if tx.action == "register":
            new = decode_payload(ADMISSION_CODEC, tx.payload)
            registrar = _registrar_of(ctx.view, tx.sender, new.role)
            check_admission(ctx.view, tx.chain_id, registrar.id, new)
        elif tx.action == "rotate_keys":
            self._check_rotation(ctx.view, tx, decode_payload(ROTATION_CODEC, tx.payload))
        elif tx.action == "announce_node":
            decode_payload(NODE_ANNOUNCEMENT_CODEC, tx.payload)
            _check_announcer(ctx.view, tx.sender)
        else:
            target = decode_payload(DEACTIVATION_CODEC, tx.payload).identity
            self._check_deactivation(ctx.view, tx.sender, target)

    def deliver_tx(self, ctx: ExecContext, tx: Transaction) -> None:
        if tx.action == "register":
            new = decode_payload(ADMISSION_CODEC, tx.payload)
            registrar = _registrar_of(ctx.view, tx.sender, new.role)
            check_admission(ctx.view, tx.chain_id, registrar.id, new)
            self._admit(ctx, new, parent=registrar.id, registrar=registrar.id)
        elif tx.action == "rotate_keys":
            rotation = decode_payload(ROTATION_CODEC, tx.payload)
            self._rotate(ctx, self._check_rotation(ctx.view, tx, rotation), rotation)
        elif tx.action == "announce_node":
            announcement = decode_payload(NODE_ANNOUNCEMENT_CODEC, tx.payload)
            identity = _check_announcer(ctx.view, tx.sender)
            ctx.view.set(node_key(identity.id), NODE_ANNOUNCEMENT_CODEC.encode(announcement))
            ctx.emit("node_announced", identity=identity.id, peer_id=announcement.peer_id)
        else:
            target = decode_payload(DEACTIVATION_CODEC, tx.payload).identity
            identity = self._check_deactivation(ctx.view, tx.sender, target)
            _write(ctx, replace(identity, active=False))
            ctx.emit("deactivated", identity=target, by=tx.sender, role=_role(identity))

    def on_call(self, ctx: ExecContext, action: str, payload: bytes) -> bytes:
        if ctx.caller != "governance":
            raise TxFailed(ResultCode.UNAUTHORIZED, f"{ctx.caller} may not call identity")
        if action in ("admit_institution", "admit_auditor"):
            new = decode_payload(ADMISSION_CODEC, payload)
            wanted = HealthRole.INSTITUTION if action == "admit_institution" else HealthRole.AUDITOR
            if new.role is not wanted:
                raise TxFailed(ResultCode.INVALID_PAYLOAD, f"{action} of a {_role(new)}")
            check_admission(ctx.view, ctx.block.chain_id, GOVERNANCE_REGISTRAR, new)
            self._admit(ctx, new, parent=b"", registrar=GOVERNANCE_REGISTRAR)
            return new.signing_key
        if action == "set_active":
            change = decode_payload(SET_ACTIVE_CODEC, payload)
            identity = get_identity(ctx.view, change.identity)
            if identity is None:
                raise TxFailed(ResultCode.NOT_FOUND, f"no identity {change.identity.hex()}")
            _write(ctx, replace(identity, active=change.active))
            event = "reactivated" if change.active else "deactivated"
            ctx.emit(event, identity=identity.id, by="governance", role=_role(identity))
            return b""
        raise TxFailed(ResultCode.UNKNOWN_KIND, f"identity serves no call {action!r}")

    @staticmethod
    def _admit(ctx: ExecContext, new: Admission, *, parent: bytes, registrar: bytes) -> None:
        identity = Identity(
            id=new.signing_key,
            role=new.role,
            kind=new.kind,
            label=new.label,
            parent=parent,
            signing_key=new.signing_key,
            encryption_key=new.encryption_key,
            key_epoch=0,
            active=True,
            registered_height=ctx.block.height,
        )
        _write_new(ctx, identity)
        ctx.emit(
            "registered",
            identity=identity.id,
            role=_role(identity),
            kind=identity.kind,
            parent=parent,
            registrar=registrar,
        )

    @staticmethod
    def _check_rotation(reader: KeyReader, tx: Transaction, rotation: Rotation) -> Identity:
        identity = identity_of_sender(reader, tx.sender)
        if identity is None or not identity.active:
            raise TxFailed(ResultCode.UNAUTHORIZED, "only an active identity rotates its keys")
        if rotation.signing_key == identity.signing_key:
            if rotation.encryption_key == identity.encryption_key:
                raise TxFailed(ResultCode.INVALID_PAYLOAD, "the rotation changes no key")
        else:
            _check_new_keys(reader, rotation.signing_key)
        statement = rotation_statement(
            tx.chain_id,
            identity.id,
            identity.key_epoch + 1,
            rotation.signing_key,
            rotation.encryption_key,
        )
        _check_proofs(statement, rotation)
        return identity

    @staticmethod
    def _rotate(ctx: ExecContext, identity: Identity, rotation: Rotation) -> None:
        if rotation.signing_key != identity.signing_key:
            old = get_key_entry(ctx.view, identity.signing_key)
            assert old is not None, "an identity's current key has an entry"
            ctx.view.set(
                signing_key_key(identity.signing_key),
                KEY_ENTRY_CODEC.encode(replace(old, active=False)),
            )
            fresh = KeyEntry(identity.id, 0, True)
            ctx.view.set(signing_key_key(rotation.signing_key), KEY_ENTRY_CODEC.encode(fresh))
        rotated = replace(
            identity,
            signing_key=rotation.signing_key,
            encryption_key=rotation.encryption_key,
            key_epoch=identity.key_epoch + 1,
        )
        _write(ctx, rotated)
        ctx.emit(
            "keys_rotated",
            identity=identity.id,
            key_epoch=rotated.key_epoch,
            signing_key=rotated.signing_key,
            encryption_key=rotated.encryption_key,
        )

    @staticmethod
    def _check_deactivation(reader: KeyReader, sender: bytes, target: bytes) -> Identity:
        actor = identity_of_sender(reader, sender)
        identity = get_identity(reader, target)
        if identity is None:
            raise TxFailed(ResultCode.NOT_FOUND, f"no identity {target.hex()}")
        if actor is None or actor.id not in (identity.id, identity.parent):
            raise TxFailed(ResultCode.UNAUTHORIZED, "only the identity or its parent")
        if identity.role is HealthRole.INSTITUTION:
            raise TxFailed(ResultCode.UNAUTHORIZED, "institutions leave by a governance vote")
        if not identity.active:
            raise TxFailed(ResultCode.CONFLICT, "the identity is already inactive")
        return identity

    # -- queries ----------------------------------------------------------------------------

    def query_key(self, path: str) -> bytes:
        """``i/<id>``, ``k/<signing key>``, ``n/<id>``, ``c/<parent>`` or
        ``c/<parent>/<child>`` (hex)."""
        prefixes = {"i": IDENTITY_PREFIX, "k": KEY_PREFIX, "n": NODE_PREFIX, "c": CHILD_PREFIX}
        head, _, rest = path.partition("/")
        if head not in prefixes:
            raise ValueError("identity paths start with i/, k/, n/ or c/")
        try:
            return prefixes[head] + b"".join(bytes.fromhex(part) for part in rest.split("/"))
        except ValueError as exc:
            raise ValueError(f"identity path {path!r}: parts are hex") from exc

    def render(self, key: bytes, value: bytes) -> JsonValue:
        if key.startswith(IDENTITY_PREFIX):
            return render_identity(IDENTITY_CODEC.decode(value))
        if key.startswith(NODE_PREFIX):
            return {"identity": key[len(NODE_PREFIX) :].hex(), "peer_id": node_of_value(value)}
        if key.startswith(KEY_PREFIX):
            entry = KEY_ENTRY_CODEC.decode(value)
            return {
                "identity": entry.identity.hex(),
                "next_nonce": entry.next_nonce,
                "active": entry.active,
            }
        return {"child": key[-32:].hex(), "parent": key[len(CHILD_PREFIX) : -32].hex()}


def node_of_value(value: bytes) -> str:
    """The peer id of a stored node announcement."""
    return NODE_ANNOUNCEMENT_CODEC.decode(value).peer_id


def render_identity(identity: Identity) -> dict[str, JsonValue]:
    """An identity as JSON for clients."""
    return {
        "id": identity.id.hex(),
        "role": _role(identity),
        "kind": identity.kind,
        "label": identity.label,
        "parent": identity.parent.hex(),
        "signing_key": identity.signing_key.hex(),
        "encryption_key": identity.encryption_key.hex(),
        "key_epoch": identity.key_epoch,
        "active": identity.active,
        "registered_height": identity.registered_height,
    }


def _role(identity: Identity | Admission) -> str:
    return identity.role.name.lower()


def _write(ctx: ExecContext, identity: Identity) -> None:
    ctx.view.set(identity_key(identity.id), IDENTITY_CODEC.encode(identity))


def _write_new(ctx: ExecContext, identity: Identity) -> None:
    _write(ctx, identity)
    entry = KeyEntry(identity.id, 0, True)
    ctx.view.set(signing_key_key(identity.signing_key), KEY_ENTRY_CODEC.encode(entry))
    if identity.parent:
        ctx.view.set(child_key(identity.parent, identity.id), b"")


def parse_genesis_identities(value: JsonValue) -> list[GenesisIdentity]:
    """``{"identities": [{"role", "kind", "label", "signing_key", "encryption_key",
    "parent"}]}`` (hex keys) as ``GenesisIdentity`` values; ``ValueError`` if malformed."""
    if value is None:
        return []
    if not isinstance(value, dict) or not isinstance(value.get("identities", []), list):
        raise ValueError('app_state["identity"] is {"identities": [...]}')
    parsed: list[GenesisIdentity] = []
    for index, item in enumerate(cast(list[JsonValue], value.get("identities", []))):
        if not isinstance(item, dict):
            raise ValueError(f"identity {index} is not an object")
        try:
            parsed.append(
                GenesisIdentity(
                    role=HealthRole[str(item["role"]).upper()],
                    kind=str(item.get("kind", "")),
                    label=str(item.get("label", "")),
                    signing_key=bytes.fromhex(str(item["signing_key"])),
                    encryption_key=bytes.fromhex(str(item["encryption_key"])),
                    parent=bytes.fromhex(str(item.get("parent", ""))),
                )
            )
        except (KeyError, ValueError) as exc:
            raise ValueError(f"identity {index}: {exc!r}") from exc
    return parsed
