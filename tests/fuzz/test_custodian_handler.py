"""The custodian's protocol handler (``/bighealth/records/1``) answers any bytes a peer sends
with an answer (served, or a typed refusal), never an exception: random bytes, requests of
either kind with schema-shaped bodies, and mutations of a valid signed fetch of a record it
keeps (so the signature, time, nonce and consent paths are reached too)."""

from __future__ import annotations

import contextlib
from typing import Any, Final

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from health.records_wire import (
    FETCH_REQUEST_CODEC,
    RecordsError,
    decode_answer,
    encode_request,
)
from tests.fuzz.strategies import mutated_bytes
from tests.fuzz.targets import all_targets
from tests.health.access_attacks import CustodianAttacks
from tests.health.fakes import PEERS, Cluster

DEFAULT_EXAMPLES: Final = 20
DEEP_EXAMPLES: Final = 3_000


class Keeper:
    """A custodian keeping one record of the patient; fresh valid fetches of it."""

    def __init__(self) -> None:
        self.run = CustodianAttacks(Cluster())
        self.record = trio.run(self.run.store, "fuzzed").record_id

    def valid_fetch(self) -> bytes:
        request = self.run.ask(self.run.cluster.patient, self.record)
        return encode_request("fetch", FETCH_REQUEST_CODEC.encode(request))

    def answer(self, data: bytes) -> None:
        raw = trio.run(self.run.keeper.handle, PEERS["b"], data)
        with contextlib.suppress(RecordsError):  # a refusal is an answer too
            decode_answer(raw)


@pytest.fixture(scope="module")
def keeper() -> Keeper:
    return Keeper()


def _inputs(keeper: Keeper) -> st.SearchStrategy[bytes]:
    valid = st.just(None).map(lambda _: keeper.valid_fetch())
    return st.one_of(all_targets()["records.request"].inputs, valid, valid.flatmap(mutated_bytes))


_SETTINGS: Final[dict[str, Any]] = {
    "deadline": None,
    "database": None,
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
}


@settings(max_examples=DEFAULT_EXAMPLES, **_SETTINGS)
@given(data=st.data())
def test_the_handler_answers_any_bytes(keeper: Keeper, data: st.DataObject) -> None:
    keeper.answer(data.draw(_inputs(keeper)))


@pytest.mark.slow
@settings(max_examples=DEEP_EXAMPLES, **_SETTINGS)
@given(data=st.data())
def test_the_handler_answers_any_bytes_deep(keeper: Keeper, data: st.DataObject) -> None:
    keeper.answer(data.draw(_inputs(keeper)))


def test_a_valid_fetch_is_served(keeper: Keeper) -> None:
    """The structured inputs reach the end: a valid fetch is served."""
    raw = trio.run(keeper.run.keeper.handle, PEERS["b"], keeper.valid_fetch())
    assert decode_answer(raw)
