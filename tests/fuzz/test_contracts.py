"""Fuzzing the health contracts through the application: transactions of every kind of every
module, from every kind of party (patient, practitioners, institutions, a stranger never
registered), with payloads that are valid encodings of the kind's own payload type (ids
often those of real parties), encodings of other types, mutations and random bytes. The
admission check answers each with a result and a block answers each with a receipt; no
exception escapes either, whatever the payload (a contract refuses with ``TxFailed``)."""

from __future__ import annotations

from typing import Any, Final

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from health.contracts.common import DAY_MS
from node.app import CheckTxResult
from node.codec import TX_CODEC
from node.codec.schema import StructCodec
from tests.fuzz.strategies import codec_wire_values, fuzz_inputs
from tests.fuzz.targets import struct_codecs
from tests.health.helpers import Party, party
from tests.health.test_consent import World, make_world

DEFAULT_EXAMPLES: Final = 20
DEEP_EXAMPLES: Final = 1_500
PAYLOAD_TYPES: Final = {
    "identity.register": "Admission",
    "identity.rotate_keys": "Rotation",
    "identity.deactivate": "Deactivation",
    "identity.announce_node": "NodeAnnouncement",
    "consent.grant": "GrantPayload",
    "consent.revoke": "RevokePayload",
    "consent.break_glass": "BreakGlassPayload",
    "records.commit": "CommitPayload",
    "records.erase": "ErasePayload",
    "audit.record": "RecordPayload",
    "governance.propose": "ProposePayload",
    "governance.vote": "VotePayload",
    "care.ack": "Ack",
    "care.alert": "Alert",
    "care.set_plan": "SetPlan",
    "care.set_policy": "SetPolicy",
    "referral.request": "RequestPayload",
    "referral.accept": "ReferralRef",
    "referral.close": "ReferralRef",
    "referral.decline": "DeclinePayload",
    "referral.answer": "AnswerPayload",
    "kv.set": "KvSet",
    "kv.delete": "KvDelete",
}
"""Every transaction kind of the health chain and the type its payload encodes."""
STEPS_MS: Final = (1_000, 60_000, DAY_MS, 40 * DAY_MS)
"""How far a fuzzed block's time moves (far enough for expiries and reminders to run)."""


def _codecs_by_type() -> dict[str, StructCodec[Any]]:
    by_type: dict[str, StructCodec[Any]] = {}
    for name, codec in struct_codecs().items():
        if name.startswith(("struct.health.contracts.", "struct.node.app.")):
            by_type.setdefault(codec.cls.__name__, codec)
    return by_type


class Fuzzed:
    """The world the transactions run in (one per test module: state carries over)."""

    def __init__(self) -> None:
        self.world: World = make_world()
        self.parties: tuple[Party, ...] = (
            self.world.patient,
            self.world.doctor,
            self.world.outsider,
            self.world.hospital,
            self.world.other_hospital,
            party("stranger"),
        )
        ids = tuple(p.id for p in self.parties)
        codecs = _codecs_by_type()
        self.payloads = {
            kind: fuzz_inputs(codec_wire_values(codecs[name], ids))
            for kind, name in PAYLOAD_TYPES.items()
        }

    def txs(self) -> st.SearchStrategy[list[tuple[int, str, bytes]]]:
        """Lists of ``(party index, kind, payload)``."""
        one = st.sampled_from(sorted(self.payloads)).flatmap(
            lambda kind: st.tuples(
                st.integers(0, len(self.parties) - 1), st.just(kind), self.payloads[kind]
            )
        )
        return st.lists(one, min_size=1, max_size=6)

    def run(self, txs: list[tuple[int, str, bytes]], step_ms: int) -> None:
        chain = self.world.chain
        raws = [chain.tx(self.parties[who], kind, payload) for who, kind, payload in txs]
        for raw in raws:
            assert isinstance(chain.app.check_tx(TX_CODEC.decode(raw)), CheckTxResult)
        result = chain.run(*raws, time_ms=chain.time_ms + step_ms)
        assert len(result.receipts) == len(raws)
        for member in self.parties:  # refused before the nonce was used: number again
            chain.factory.set_nonce(member.id, chain.app.next_nonce(member.id))


@pytest.fixture(scope="module")
def fuzzed() -> Fuzzed:
    return Fuzzed()


_SETTINGS: Final[dict[str, Any]] = {
    "deadline": None,
    "database": None,
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
}


def test_every_kind_of_the_health_chain_is_fuzzed(fuzzed: Fuzzed) -> None:
    app = fuzzed.world.chain.app
    modules = {kind.split(".")[0] for kind in PAYLOAD_TYPES}
    kinds = {f"{name}.{action}" for name in modules for action in app.module(name).actions}
    assert kinds == set(PAYLOAD_TYPES)


@settings(max_examples=DEFAULT_EXAMPLES, **_SETTINGS)
@given(data=st.data())
def test_contracts_answer_any_payload_with_a_result(fuzzed: Fuzzed, data: st.DataObject) -> None:
    fuzzed.run(data.draw(fuzzed.txs()), data.draw(st.sampled_from(STEPS_MS)))


@pytest.mark.slow
@settings(max_examples=DEEP_EXAMPLES, **_SETTINGS)
@given(data=st.data())
def test_contracts_answer_any_payload_with_a_result_deep(
    fuzzed: Fuzzed, data: st.DataObject
) -> None:
    fuzzed.run(data.draw(fuzzed.txs()), data.draw(st.sampled_from(STEPS_MS)))
