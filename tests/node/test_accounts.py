"""The accounts module: roles, proof of possession, deactivation, nonces."""

from __future__ import annotations

import pytest

from crypto_core.signatures import Ed25519KeyPair
from node.app import AccountsModule, GenesisAccount, Role
from node.app.accounts import (
    REGISTER_CODEC,
    RegisterPayload,
    deactivate_payload,
    get_account,
    register_payload,
)
from node.app.kv import set_payload
from node.testing import TxFactory, key_pair
from node.types import ResultCode
from tests.node.helpers import CHAIN, INSTITUTION, Chain, make_app, registered

ALICE, DEVICE, OTHER = key_pair("alice"), key_pair("alice-meter"), key_pair("other")


@pytest.fixture
def chain() -> Chain:
    return Chain(make_app())


@pytest.fixture
def txs() -> TxFactory:
    return TxFactory(CHAIN)


def register(
    txs: TxFactory, registrar: Ed25519KeyPair, new_key: Ed25519KeyPair, role: Role
) -> bytes:
    payload = register_payload(new_key, chain_id=CHAIN, registrar=registrar.public_key, role=role)
    return txs.encoded(registrar, "accounts.register", payload)


def code_of(chain: Chain, raw: bytes) -> ResultCode:
    return chain.run([raw]).receipts[0].code


@pytest.mark.parametrize(
    ("registrar_role", "new_role", "expected"),
    [
        (Role.INSTITUTION, Role.PATIENT, ResultCode.OK),
        (Role.INSTITUTION, Role.DEVICE, ResultCode.OK),
        (Role.INSTITUTION, Role.OBSERVER, ResultCode.OK),
        (Role.INSTITUTION, Role.INSTITUTION, ResultCode.UNAUTHORIZED),  # governance's job
        (Role.PATIENT, Role.DEVICE, ResultCode.OK),
        (Role.PATIENT, Role.PATIENT, ResultCode.UNAUTHORIZED),
        (Role.DEVICE, Role.DEVICE, ResultCode.UNAUTHORIZED),
        (Role.OBSERVER, Role.DEVICE, ResultCode.UNAUTHORIZED),
    ],
)
def test_registration_rights(
    chain: Chain, txs: TxFactory, registrar_role: Role, new_role: Role, expected: ResultCode
) -> None:
    registrar = INSTITUTION
    if registrar_role is not Role.INSTITUTION:
        registrar = ALICE
        registered(chain, txs, "alice", role=registrar_role)
    assert code_of(chain, register(txs, registrar, DEVICE, new_role)) is expected
    account = get_account(chain.app, DEVICE.public_key)
    if expected is ResultCode.OK:
        assert account is not None and account.role is new_role
        assert account.registrar == registrar.public_key and account.active
    else:
        assert account is None


def test_registration_needs_a_proof_by_the_registered_key(chain: Chain, txs: TxFactory) -> None:
    forged = RegisterPayload(DEVICE.public_key, Role.PATIENT, OTHER.sign(b"whatever"))
    raw = txs.encoded(INSTITUTION, "accounts.register", REGISTER_CODEC.encode(forged))
    assert code_of(chain, raw) is ResultCode.UNAUTHORIZED
    for chain_id, registrar in [("other-chain", INSTITUTION), (CHAIN, OTHER)]:
        replayed = register_payload(
            DEVICE, chain_id=chain_id, registrar=registrar.public_key, role=Role.PATIENT
        )
        raw = txs.encoded(INSTITUTION, "accounts.register", replayed)
        assert code_of(chain, raw) is ResultCode.UNAUTHORIZED
    assert get_account(chain.app, DEVICE.public_key) is None


def test_a_key_is_registered_once(chain: Chain, txs: TxFactory) -> None:
    registered(chain, txs, "alice")
    assert code_of(chain, register(txs, INSTITUTION, ALICE, Role.OBSERVER)) is ResultCode.CONFLICT


def test_deactivation_by_self_or_registrar_only(chain: Chain, txs: TxFactory) -> None:
    registered(chain, txs, "alice", "other")
    assert code_of(chain, register(txs, ALICE, DEVICE, Role.DEVICE)) is ResultCode.OK
    stranger = txs.encoded(OTHER, "accounts.deactivate", deactivate_payload(DEVICE.public_key))
    assert code_of(chain, stranger) is ResultCode.UNAUTHORIZED
    by_owner = txs.encoded(ALICE, "accounts.deactivate", deactivate_payload(DEVICE.public_key))
    result = chain.run([by_owner])
    assert result.receipts[0].ok and result.receipts[0].events[0].name == "accounts.deactivated"
    again = txs.encoded(ALICE, "accounts.deactivate", deactivate_payload(DEVICE.public_key))
    assert code_of(chain, again) is ResultCode.CONFLICT
    missing = txs.encoded(ALICE, "accounts.deactivate", deactivate_payload(bytes(32)))
    assert code_of(chain, missing) is ResultCode.NOT_FOUND


def test_an_inactive_account_can_no_longer_send(chain: Chain, txs: TxFactory) -> None:
    registered(chain, txs, "alice")
    own = txs.encoded(ALICE, "accounts.deactivate", deactivate_payload(ALICE.public_key))
    assert code_of(chain, own) is ResultCode.OK
    after = txs.encoded(ALICE, "kv.set", set_payload(b"k", b"v"))
    assert code_of(chain, after) is ResultCode.ACCOUNT_INACTIVE
    assert chain.app.check_tx(TxFactory(CHAIN).make(ALICE, "kv.set", nonce=2)).code is (
        ResultCode.ACCOUNT_INACTIVE
    )


def test_nonces_count_every_authenticated_transaction(chain: Chain, txs: TxFactory) -> None:
    registered(chain, txs, "alice")
    chain.run(
        [
            txs.encoded(ALICE, "kv.set", set_payload(b"k", b"v")),
            txs.encoded(ALICE, "kv.delete", b"bad payload"),  # fails, still consumes nonce 1
        ]
    )
    assert chain.app.next_nonce(ALICE.public_key) == 2
    assert chain.app.next_nonce(OTHER.public_key) == 0


def test_check_tx_of_a_registration_checks_rights_and_proof(chain: Chain, txs: TxFactory) -> None:
    good = TxFactory(CHAIN).make(
        INSTITUTION,
        "accounts.register",
        register_payload(
            DEVICE, chain_id=CHAIN, registrar=INSTITUTION.public_key, role=Role.DEVICE
        ),
    )
    assert chain.app.check_tx(good).ok
    bad = TxFactory(CHAIN).make(
        INSTITUTION,
        "accounts.register",
        register_payload(DEVICE, chain_id=CHAIN, registrar=OTHER.public_key, role=Role.DEVICE),
    )
    assert chain.app.check_tx(bad).code is ResultCode.UNAUTHORIZED


def test_genesis_accounts_are_checked() -> None:
    key = INSTITUTION.public_key
    with pytest.raises(ValueError, match="twice"):
        AccountsModule([GenesisAccount(key, Role.INSTITUTION), GenesisAccount(key, Role.PATIENT)])
    with pytest.raises(ValueError, match="32-byte"):
        AccountsModule([GenesisAccount(b"short", Role.INSTITUTION)])
