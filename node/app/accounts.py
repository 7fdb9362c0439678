"""Accounts and identities: who may send transactions, in which role, with which nonce.

An account is bound to an Ed25519 public key (the key signs the account's transactions) and
has a role: ``INSTITUTION`` (a hospital or clinic), ``PATIENT``, ``DEVICE`` (a glucose meter,
an insulin pump; belongs to a patient or an institution) or ``OBSERVER`` (read-mostly, e.g.
an auditor). Institutions come from genesis (later: DAO governance); an active institution
registers patients, devices and observers; an active patient registers its own devices.

Registration needs a proof of possession: the new key signs
``REGISTRATION_DOMAIN + msgpack([chain_id, registrar, public_key, role])``, so nobody can bind
a key they do not hold, and the proof cannot be replayed on another chain or by another
registrar. An account can be deactivated by itself or by its registrar; a deactivated account
can no longer send, and its key cannot be registered again.

The module is also the framework's ``Authenticator``: the nonce lives in the account record.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import IntEnum
from typing import Final, cast

import msgpack

from crypto_core.signatures import verify
from node.app.errors import TxFailed
from node.app.module import (
    CheckContext,
    ExecContext,
    KeyReader,
    Module,
    decode_payload,
)
from node.app.view import WriteBuffer
from node.codec import Bool, Bytes, EnumOf, StructCodec, UInt
from node.errors import DecodeError
from node.ports import Signer
from node.types import PUBLIC_KEY_BYTES, SIGNATURE_BYTES, ResultCode, Transaction

ACCOUNTS: Final = "accounts"
ACCOUNT_PREFIX: Final = b"accounts/a/"
REGISTRATION_DOMAIN: Final = b"bighealth/register/v1\x00"


class Role(IntEnum):
    """What an account is."""

    INSTITUTION = 1
    PATIENT = 2
    DEVICE = 3
    OBSERVER = 4


# Which roles an account of a role may register.
REGISTRATION_RIGHTS: Final[Mapping[Role, frozenset[Role]]] = {
    Role.INSTITUTION: frozenset({Role.PATIENT, Role.DEVICE, Role.OBSERVER}),
    Role.PATIENT: frozenset({Role.DEVICE}),
}


@dataclass(frozen=True, slots=True)
class Account:
    """The record of one account."""

    role: Role
    active: bool
    registrar: bytes
    next_nonce: int
    registered_height: int


@dataclass(frozen=True, slots=True)
class GenesisAccount:
    """An account that exists from the start (its own registrar)."""

    public_key: bytes
    role: Role


@dataclass(frozen=True, slots=True)
class RegisterPayload:
    """``accounts.register``: bind ``public_key`` as ``role``; ``proof`` by that key."""

    public_key: bytes
    role: Role
    proof: bytes


@dataclass(frozen=True, slots=True)
class DeactivatePayload:
    """``accounts.deactivate``: the account (itself or one it registered) to deactivate."""

    public_key: bytes


_KEY = Bytes.exactly(PUBLIC_KEY_BYTES)
ACCOUNT_CODEC = StructCodec(
    Account,
    [
        ("role", EnumOf(Role)),
        ("active", Bool()),
        ("registrar", _KEY),
        ("next_nonce", UInt()),
        ("registered_height", UInt()),
    ],
    128,
    memo_entries=16_384,  # read at admission, recheck and execution of every transaction
)
REGISTER_CODEC = StructCodec(
    RegisterPayload,
    [("public_key", _KEY), ("role", EnumOf(Role)), ("proof", Bytes.exactly(SIGNATURE_BYTES))],
    256,
)
DEACTIVATE_CODEC = StructCodec(DeactivatePayload, [("public_key", _KEY)], 64)


def account_key(public_key: bytes) -> bytes:
    """The state key of an account record."""
    return ACCOUNT_PREFIX + public_key


def get_account(reader: KeyReader, public_key: bytes) -> Account | None:
    """The account of ``public_key`` (for any module), or ``None``."""
    stored = reader.get(account_key(public_key))
    if stored is None:
        return None
    try:
        return ACCOUNT_CODEC.decode(stored)
    except DecodeError as exc:  # our own writes are canonical: corruption is a bug
        raise AssertionError(f"corrupt account record: {exc}") from exc


def registration_proof_message(
    chain_id: str, registrar: bytes, public_key: bytes, role: Role
) -> bytes:
    """What the registered key signs as proof of possession."""
    body = msgpack.packb([chain_id, registrar, public_key, int(role)], use_bin_type=True)
    return REGISTRATION_DOMAIN + cast(bytes, body)


def register_payload(new_key: Signer, *, chain_id: str, registrar: bytes, role: Role) -> bytes:
    """The payload of an ``accounts.register`` transaction for ``new_key`` (client helper)."""
    message = registration_proof_message(chain_id, registrar, new_key.public_key, role)
    payload = RegisterPayload(new_key.public_key, role, new_key.sign(message))
    return REGISTER_CODEC.encode(payload)


def deactivate_payload(public_key: bytes) -> bytes:
    """The payload of an ``accounts.deactivate`` transaction (client helper)."""
    return DEACTIVATE_CODEC.encode(DeactivatePayload(public_key))


class AccountsModule(Module):
    """The accounts/identity module and the framework's ``Authenticator``."""

    name = ACCOUNTS
    actions = frozenset({"register", "deactivate"})

    def __init__(self, genesis_accounts: Sequence[GenesisAccount] = ()) -> None:
        keys = [account.public_key for account in genesis_accounts]
        if len(set(keys)) != len(keys):
            raise ValueError("a genesis account is listed twice")
        if any(len(key) != PUBLIC_KEY_BYTES for key in keys):
            raise ValueError("genesis account keys are 32-byte Ed25519 public keys")
        self.genesis_accounts = tuple(genesis_accounts)

    def init_genesis(self, ctx: ExecContext) -> None:
        for genesis in self.genesis_accounts:
            record = Account(genesis.role, True, genesis.public_key, 0, ctx.block.height)
            ctx.view.set(account_key(genesis.public_key), ACCOUNT_CODEC.encode(record))

    # -- Authenticator ----------------------------------------------------------------------

    def authenticate(self, reader: KeyReader, sender: bytes) -> None:
        account = get_account(reader, sender)
        if account is None:
            raise TxFailed(ResultCode.UNKNOWN_SENDER, f"no account {sender.hex()}")
        if not account.active:
            raise TxFailed(ResultCode.ACCOUNT_INACTIVE, f"account {sender.hex()} is inactive")

    def next_nonce(self, reader: KeyReader, sender: bytes) -> int:
        account = get_account(reader, sender)
        return 0 if account is None else account.next_nonce

    def consume_nonce(self, buffer: WriteBuffer, sender: bytes) -> None:
        account = get_account(buffer, sender)
        if account is None:
            raise AssertionError("consume_nonce of an unauthenticated sender")
        # Built directly: dataclasses.replace costs as much as the rest of this method.
        updated = Account(
            account.role,
            account.active,
            account.registrar,
            account.next_nonce + 1,
            account.registered_height,
        )
        buffer.set(account_key(sender), ACCOUNT_CODEC.encode_remembered(updated))

    # -- transactions -----------------------------------------------------------------------

    def check_tx(self, ctx: CheckContext, tx: Transaction) -> None:
        if tx.action == "register":
            self._check_register(ctx.view, tx, decode_payload(REGISTER_CODEC, tx.payload))
        else:
            self._check_deactivate(ctx.view, tx, decode_payload(DEACTIVATE_CODEC, tx.payload))

    def deliver_tx(self, ctx: ExecContext, tx: Transaction) -> None:
        if tx.action == "register":
            payload = decode_payload(REGISTER_CODEC, tx.payload)
            self._check_register(ctx.view, tx, payload)
            record = Account(payload.role, True, tx.sender, 0, ctx.block.height)
            ctx.view.set(account_key(payload.public_key), ACCOUNT_CODEC.encode(record))
            ctx.emit(
                "registered",
                account=payload.public_key,
                role=payload.role.name.lower(),
                registrar=tx.sender,
            )
        else:
            target = decode_payload(DEACTIVATE_CODEC, tx.payload).public_key
            account = self._check_deactivate(ctx.view, tx, DeactivatePayload(target))
            updated = replace(account, active=False)
            ctx.view.set(account_key(target), ACCOUNT_CODEC.encode(updated))
            ctx.emit("deactivated", account=target, by=tx.sender)

    @staticmethod
    def _check_register(reader: KeyReader, tx: Transaction, payload: RegisterPayload) -> None:
        registrar = get_account(reader, tx.sender)
        allowed = REGISTRATION_RIGHTS.get(registrar.role, frozenset()) if registrar else None
        if not allowed or payload.role not in allowed:
            raise TxFailed(
                ResultCode.UNAUTHORIZED, f"this account may not register a {payload.role.name}"
            )
        if get_account(reader, payload.public_key) is not None:
            raise TxFailed(ResultCode.CONFLICT, f"{payload.public_key.hex()} is registered")
        message = registration_proof_message(
            tx.chain_id, tx.sender, payload.public_key, payload.role
        )
        if not verify(payload.public_key, message, payload.proof):
            raise TxFailed(ResultCode.UNAUTHORIZED, "the proof of possession does not verify")

    @staticmethod
    def _check_deactivate(
        reader: KeyReader, tx: Transaction, payload: DeactivatePayload
    ) -> Account:
        account = get_account(reader, payload.public_key)
        if account is None:
            raise TxFailed(ResultCode.NOT_FOUND, f"no account {payload.public_key.hex()}")
        if tx.sender not in (payload.public_key, account.registrar):
            raise TxFailed(ResultCode.UNAUTHORIZED, "only the account or its registrar")
        if not account.active:
            raise TxFailed(ResultCode.CONFLICT, "the account is already inactive")
        return account
