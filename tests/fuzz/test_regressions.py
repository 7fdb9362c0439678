"""Inputs the fuzzer found that once escaped a decoder with an untyped error: each is refused
with the typed error now (and kept in the corpus as ``crash-*.bin``)."""

from __future__ import annotations

from dataclasses import fields

import msgpack
import pytest

from node.chain.errors import InvalidGenesisError
from node.chain.genesis import _PARAMS_CODEC, GENESIS_CODEC, ConsensusParams, Genesis
from node.errors import SchemaError

ZERO_PARAMS = [0] * len(fields(ConsensusParams))
"""Every consensus parameter 0: each field fits its kind (a u64), the set breaks the rules."""
CRASHES: dict[str, bytes] = {
    "genesis-zero-params": msgpack.packb(["c", 0, [], [], ZERO_PARAMS, []]),
    "genesis-no-validators": msgpack.packb(
        ["c", 0, [], [], _PARAMS_CODEC.to_wire(ConsensusParams()), []]
    ),
}


@pytest.mark.parametrize("name", sorted(CRASHES))
def test_a_genesis_breaking_its_own_rules_is_a_schema_error(name: str) -> None:
    data = CRASHES[name]
    with pytest.raises(SchemaError):
        GENESIS_CODEC.decode(data)
    with pytest.raises(InvalidGenesisError):
        Genesis.decode(data)


def test_consensus_params_breaking_their_rules_are_a_schema_error() -> None:
    with pytest.raises(SchemaError, match="timeout_propose_ms"):
        _PARAMS_CODEC.decode(msgpack.packb(ZERO_PARAMS))
