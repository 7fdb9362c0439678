"""Modules' genesis states: one canonical encoding per value, what is refused, the genesis
hash committing to them, and the genesis file and command line carrying them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from node import cli
from node.chain.app_state import (
    MAX_APP_STATE_DEPTH,
    check_app_states,
    decode_app_state,
    encode_app_state,
    encode_app_states,
)
from node.chain.errors import InvalidGenesisError
from node.chain.genesis import Genesis
from node.home import GenesisFileError, format_genesis, parse_genesis
from tests.core.helpers import GENESIS

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(1 << 63), (1 << 64) - 1) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=20,
)
STATE = {"kv": {"b": [1, 2, {"z": None, "a": True}], "a": "text"}, "accounts": -5}


def with_state(states: dict[str, Any]) -> Genesis:
    return Genesis(
        chain_id=GENESIS.chain_id,
        genesis_time_ms=GENESIS.genesis_time_ms,
        validators=GENESIS.validators,
        accounts=GENESIS.accounts,
        params=GENESIS.params,
        app_state=encode_app_states(states),
    )


@given(JSON_VALUES)
def test_a_value_has_one_encoding_and_decodes_back_equal(value: Any) -> None:
    data = encode_app_state(value)
    assert decode_app_state(data) == value
    assert encode_app_state(decode_app_state(data)) == data


def test_map_order_does_not_change_the_encoding() -> None:
    one = encode_app_state({"a": 1, "b": {"y": 2, "x": 3}})
    other = encode_app_state({"b": {"x": 3, "y": 2}, "a": 1})
    assert one == other
    assert one == msgpack.packb({"a": 1, "b": {"x": 3, "y": 2}})


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (1.5, "float is not allowed"),
        ({"a": [b"x"]}, "app_state.a[0]: a bytes is not allowed"),
        ({1: "x"}, "map keys must be strings"),
        (1 << 64, "outside msgpack's range"),
        ((1, 2), "tuple is not allowed"),
        ("\ud800", "not valid UTF-8"),
        ([[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]], f"nested over {MAX_APP_STATE_DEPTH} levels"),
    ],
)
def test_what_is_no_json_value_is_refused(value: object, message: str) -> None:
    with pytest.raises(InvalidGenesisError, match=message.replace("[", r"\[")):
        encode_app_state(value)


def test_sixteen_levels_are_allowed_and_size_is_bounded() -> None:
    deep: list[Any] = []
    inner = deep
    for _ in range(MAX_APP_STATE_DEPTH - 1):
        inner.append([])
        inner = inner[0]
    assert decode_app_state(encode_app_state(deep)) == deep
    with pytest.raises(InvalidGenesisError, match="exceeds 8 bytes"):
        encode_app_state("a long text", max_bytes=8)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        msgpack.packb({"b": 1, "a": 2}),  # keys out of order
        msgpack.packb(1.0),
        msgpack.packb(b"x", use_bin_type=True),
        b"\xd1\x00\x01",  # 1 as an int16: not the shortest form
        msgpack.packb(1) + b"\x00",  # trailing bytes
        b"\x91" * 100_000 + b"\xc0",  # nested deeper than msgpack unpacks
    ],
)
def test_bytes_that_are_not_a_canonical_value_are_refused(data: bytes) -> None:
    with pytest.raises(InvalidGenesisError):
        decode_app_state(data)


def test_module_states_are_sorted_and_checked() -> None:
    entries = encode_app_states({"kv": 1, "accounts": 2})
    assert [name for name, _ in entries] == ["accounts", "kv"]
    with pytest.raises(InvalidGenesisError, match="must match"):
        encode_app_states({"Bad-Name": 1})
    with pytest.raises(InvalidGenesisError, match="reserved"):
        encode_app_states({"system": 1})
    with pytest.raises(InvalidGenesisError, match=r"module kv: .*float"):
        encode_app_states({"kv": 0.5})
    with pytest.raises(InvalidGenesisError, match="unique and ascending"):
        check_app_states((("kv", encode_app_state(1)), ("accounts", encode_app_state(2))))
    with pytest.raises(InvalidGenesisError, match="unique and ascending"):
        check_app_states((("kv", encode_app_state(1)), ("kv", encode_app_state(2))))
    with pytest.raises(InvalidGenesisError, match="exceeds"):
        encode_app_states({"kv": "x" * 100}, max_total_bytes=50)


def test_the_genesis_hash_commits_to_the_module_states() -> None:
    plain, stated = with_state({}), with_state(STATE)
    assert plain == GENESIS and plain.hash() == GENESIS.hash()
    assert stated.hash() != plain.hash()
    assert with_state({**STATE, "accounts": -6}).hash() != stated.hash()
    assert Genesis.decode(stated.encode()) == stated
    assert stated.app_state_of("kv") == STATE["kv"]
    assert stated.app_state_of("accounts") == -5
    assert stated.app_state_of("care") is None
    assert stated.app_state_modules() == ("accounts", "kv")


def test_a_genesis_refuses_bad_module_states() -> None:
    with pytest.raises(InvalidGenesisError, match="module kv"):
        Genesis(GENESIS.chain_id, 1, GENESIS.validators, app_state=(("kv", msgpack.packb(0.5)),))
    with pytest.raises(InvalidGenesisError, match="tuple"):
        Genesis(GENESIS.chain_id, 1, GENESIS.validators, app_state=[])  # type: ignore[arg-type]


def test_the_genesis_file_carries_module_states_and_reads_back_with_the_same_hash() -> None:
    stated = with_state(STATE)
    text = format_genesis(stated)
    assert json.loads(text)["app_state"] == STATE
    assert parse_genesis(text) == stated
    assert parse_genesis(text).hash() == stated.hash()
    assert "app_state" not in json.loads(format_genesis(GENESIS))
    reordered = json.loads(text)
    reordered["app_state"] = {
        "kv": {"a": "text", "b": [1, 2, {"a": True, "z": None}]},
        "accounts": -5,
    }
    assert parse_genesis(json.dumps(reordered)).hash() == stated.hash()


@pytest.mark.parametrize(
    ("app_state", "message"),
    [
        ([1], "app_state must be a JSON object"),
        ({"kv": 1.5}, "module kv: .*float"),
        ({"no such": 1}, "must match"),
    ],
)
def test_a_genesis_file_with_bad_module_states_says_what_is_wrong(
    app_state: object, message: str
) -> None:
    document = json.loads(format_genesis(GENESIS))
    document["app_state"] = app_state
    with pytest.raises(GenesisFileError, match=f"g.json: .*{message}"):
        parse_genesis(json.dumps(document), "g.json")


def test_genesis_create_takes_module_states_and_show_names_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    states = tmp_path / "states.json"
    states.write_text(json.dumps(STATE))
    out = tmp_path / "genesis.json"
    code = cli.main(
        ["genesis", "create", "--chain-id", "c1", "--validator", "11" * 32,
         "--genesis-time-ms", "5", "--app-state", str(states), "--output", str(out)]
    )  # fmt: skip
    created = json.loads(capsys.readouterr().out)
    assert code == 0 and created["app_state_modules"] == ["accounts", "kv"]
    assert parse_genesis(out.read_text()).app_state_of("kv") == STATE["kv"]
    assert cli.main(["genesis", "show", str(out)]) == 0
    assert json.loads(capsys.readouterr().out) == created
    states.write_text('{"kv": 0.5}')
    code = cli.main(
        ["genesis", "create", "--chain-id", "c1", "--validator", "11" * 32,
         "--app-state", str(states), "--output", str(tmp_path / "g2.json")]
    )  # fmt: skip
    assert code == 1 and "float" in capsys.readouterr().err
    assert not (tmp_path / "g2.json").exists()
