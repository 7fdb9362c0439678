"""The node home: config.toml (writer, strict reader), genesis JSON, key files, layout."""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.app.accounts import GenesisAccount, Role
from node.chain.config import NodeConfig
from node.chain.genesis import ConsensusParams, Genesis
from node.home import (
    ACCOUNT_KEY,
    VALIDATOR_KEY,
    ApiConfig,
    ConfigFileError,
    GenesisFileError,
    HomeConfig,
    HomeError,
    HomeExistsError,
    HomeNotFoundError,
    KeyFileError,
    P2PConfig,
    create_home,
    format_config,
    format_genesis,
    load_home,
    parse_config,
    parse_genesis,
    parse_host_port,
    read_key_file,
    write_key_file,
)
from node.home.manifest import read_manifest
from node.home.toml import Entry, Table, dumps, quote
from node.mempool import MempoolLimits
from node.testing import key_pair, make_validators

PEER = "/ip4/10.0.0.7/tcp/26656/p2p/12D3KooWLg7N2rWTQzZhjXmTAvRNAJzPaWP46mFUaqVxvkk1ujBc"
SEED = bytes(range(32))


def genesis() -> Genesis:
    return Genesis(
        chain_id="home-chain",
        genesis_time_ms=1_700_000_000_000,
        validators=make_validators(3).validators,
        accounts=(GenesisAccount(key_pair("client").public_key, Role.PATIENT),),
        params=ConsensusParams(timeout_propose_ms=1_500, max_block_bytes=512 * 1024),
    )


# -- TOML writer --------------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=40))
def test_any_string_is_written_so_that_tomllib_reads_it_back(text: str) -> None:
    assert tomllib.loads(f"key = {quote(text)}\n")["key"] == text


def test_tables_entries_and_comments_read_back() -> None:
    text = dumps(
        [
            Table(None, (Entry("name", "x", "a comment\non two lines"),)),
            Table("t", (Entry("n", 5), Entry("flag", True), Entry("list", ("a", "b"))), "doc"),
            Table("empty", (Entry("list", ()),)),
        ],
        header="header",
    )
    assert text.startswith("# header\n")
    assert "# a comment\n# on two lines\nname" in text
    assert tomllib.loads(text) == {
        "name": "x",
        "t": {"n": 5, "flag": True, "list": ["a", "b"]},
        "empty": {"list": []},
    }


def test_the_writer_refuses_what_it_cannot_write() -> None:
    with pytest.raises(ValueError, match="bare"):
        dumps([Table("has space", ())])
    with pytest.raises(ValueError, match="root"):
        dumps([Table("a", ()), Table(None, ())])
    with pytest.raises(TypeError):
        dumps([Table("a", (Entry("f", 1.5),))])  # type: ignore[arg-type]


# -- config.toml --------------------------------------------------------------------------------


def test_a_config_reads_back_equal_and_every_key_has_a_comment_or_table_doc() -> None:
    config = HomeConfig(
        moniker="hospital-a",
        role="observer",
        p2p=P2PConfig(listen="/ip4/127.0.0.1/tcp/4001", bootstrap=(PEER,), max_peers=9),
        api=ApiConfig(listen="[::1]:9000", max_connections=3),
        chain=NodeConfig(commit_wait_ms=0, mempool=MempoolLimits(max_txs=7)),
    )
    text = format_config(config)
    assert parse_config(text) == config
    assert "[chain]" in text and "[mempool]" in text and "# The HTTP API" in text


def test_missing_keys_take_their_defaults() -> None:
    assert parse_config("") == HomeConfig()
    config = parse_config('moniker = "m"\n[chain]\ncommit_wait_ms = 5\n')
    assert config.moniker == "m"
    assert config.chain == NodeConfig(commit_wait_ms=5)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("moniker = ", "not valid TOML"),
        ("color = 1", "unknown setting or table 'color'"),
        ("[p2p]\nlisten_addr = 'x'", "unknown setting [p2p] 'listen_addr'"),
        ("[p2p]\nmax_peers = '5'", "[p2p] max_peers must be an integer"),
        ("[p2p]\nmax_peers = true", "[p2p] max_peers must be an integer"),
        ("[p2p]\nmax_peers = 0", "max_peers must be in 1..1000"),
        ("[p2p]\nlisten = '/ip4/1.2.3.4/udp/5'", "not a TCP multiaddr"),
        ("[p2p]\nbootstrap = ['/ip4/1.2.3.4/tcp/5']", "not a peer address"),
        ("[p2p]\nbootstrap = [1]", "array of strings"),
        ("[api]\nlisten = 'localhost'", "not host:port"),
        ("[api]\nlisten = '127.0.0.1:70000'", "not host:port"),
        ("[log]\nlevel = 'loud'", "[log] level must be one of"),
        ("role = 'king'", "role must be one of"),
        ("moniker = 'has space'", "moniker"),
        ("[chain]\ncommit_wait_ms = -1", "[chain]"),
        ("[mempool]\nmax_txs = 0", "[mempool]"),
        ("chain = 3", "[chain] must be a table"),
    ],
)
def test_a_bad_config_names_the_file_and_the_setting(text: str, message: str) -> None:
    with pytest.raises(ConfigFileError) as error:
        parse_config(text, "/home/h/config.toml")
    assert str(error.value).startswith("/home/h/config.toml: ")
    assert message in str(error.value)


def test_host_port_parsing() -> None:
    assert parse_host_port("127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert parse_host_port("[::1]:1") == ("::1", 1)
    assert parse_host_port("node.example:443") == ("node.example", 443)
    with pytest.raises(ConfigFileError):
        parse_host_port("127.0.0.1:0")


# -- genesis.json -------------------------------------------------------------------------------


def test_a_genesis_reads_back_equal_with_the_same_hash() -> None:
    original = genesis()
    text = format_genesis(original)
    parsed = parse_genesis(text)
    assert parsed == original
    assert parsed.hash() == original.hash()
    assert json.loads(text)["accounts"][0]["role"] == "patient"


def test_params_may_be_left_out_and_take_the_defaults() -> None:
    document = json.loads(format_genesis(genesis()))
    del document["params"]
    del document["accounts"]
    parsed = parse_genesis(json.dumps(document))
    assert parsed.params == ConsensusParams()
    assert parsed.accounts == ()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.pop("chain_id"), "lacks 'chain_id'"),
        (lambda d: d.update(extra=1), "unknown field 'extra'"),
        (lambda d: d.update(genesis_time_ms="now"), "genesis_time_ms must be an integer"),
        (lambda d: d.update(validators=[]), "validators"),
        (lambda d: d["validators"][0].update(public_key="zz"), "not hexadecimal"),
        (lambda d: d["validators"][0].update(public_key="00"), "64 hex digits"),
        (lambda d: d["validators"][0].update(voting_power=True), "must be an integer"),
        (lambda d: d["accounts"][0].update(role="doctor"), "role must be one of"),
        (lambda d: d["params"].update(timeout_propose_ms=-5), "timeout"),
        (lambda d: d["params"].update(max_blocks=5), "unknown field 'max_blocks'"),
        (lambda d: d.update(chain_id="bad chain"), "chain id"),
    ],
)
def test_a_bad_genesis_says_what_is_wrong(edit: object, message: str) -> None:
    document = json.loads(format_genesis(genesis()))
    edit(document)  # type: ignore[operator]
    with pytest.raises(GenesisFileError) as error:
        parse_genesis(json.dumps(document), "g.json")
    assert str(error.value).startswith("g.json: ")
    assert message in str(error.value)


def test_a_genesis_file_that_is_not_json_is_refused() -> None:
    with pytest.raises(GenesisFileError, match="not valid JSON"):
        parse_genesis(b"\xff\xfe{")


# -- key files ----------------------------------------------------------------------------------


def test_a_key_file_is_private_and_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "key"
    written = write_key_file(path, VALIDATOR_KEY, SEED)
    assert path.stat().st_mode & 0o777 == 0o600
    assert read_key_file(path, VALIDATOR_KEY) == written
    with pytest.raises(HomeExistsError):
        write_key_file(path, VALIDATOR_KEY, bytes(32))
    assert read_key_file(path, VALIDATOR_KEY).seed == SEED  # not overwritten


def test_key_files_refuse_loose_modes_wrong_kinds_and_garbage(tmp_path: Path) -> None:
    path = tmp_path / "key"
    write_key_file(path, ACCOUNT_KEY, SEED)
    with pytest.raises(KeyFileError, match="not a validator key file"):
        read_key_file(path, VALIDATOR_KEY)
    os.chmod(path, 0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        read_key_file(path, ACCOUNT_KEY)
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"bighealth-account-key/1 ed25519\nzz\n")
    os.chmod(garbage, 0o600)
    with pytest.raises(KeyFileError, match="not hexadecimal"):
        read_key_file(garbage, ACCOUNT_KEY)
    with pytest.raises(HomeNotFoundError):
        read_key_file(tmp_path / "absent", ACCOUNT_KEY)


# -- layout -------------------------------------------------------------------------------------


def test_a_created_home_loads_with_its_config_genesis_and_key(tmp_path: Path) -> None:
    home = create_home(tmp_path / "h", HomeConfig(moniker="a"), genesis(), SEED)
    assert home.path.stat().st_mode & 0o777 == 0o700
    loaded = load_home(home.path)
    assert loaded.config.moniker == "a"
    assert loaded.genesis == genesis()
    assert loaded.validator_key is not None and loaded.validator_key.seed == SEED
    with pytest.raises(HomeExistsError):
        create_home(home.path, HomeConfig(), genesis(), SEED)


def test_loading_a_missing_or_damaged_home_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(HomeNotFoundError, match="bighealth init --home"):
        load_home(tmp_path / "nowhere")
    with pytest.raises(HomeNotFoundError, match=r"no config\.toml"):
        load_home(tmp_path)
    home = create_home(tmp_path / "h", HomeConfig(), genesis(), SEED)
    home.genesis_path.unlink()
    with pytest.raises(HomeNotFoundError, match=r"genesis\.json"):
        load_home(home.path)
    home.genesis_path.write_text("{}")
    with pytest.raises(GenesisFileError, match="lacks 'chain_id'"):
        load_home(home.path)
    home.genesis_path.write_text(format_genesis(genesis()))
    home.validator_key_path.unlink()
    with pytest.raises(HomeNotFoundError, match="no validator key"):
        load_home(home.path)
    home.config_path.write_text("[p2p\n")
    with pytest.raises(ConfigFileError, match="not valid TOML"):
        load_home(home.path)


def test_an_observer_home_has_no_key_and_refuses_one(tmp_path: Path) -> None:
    observer = HomeConfig(role="observer")
    home = create_home(tmp_path / "o", observer, genesis(), None)
    assert load_home(home.path).validator_key is None
    write_key_file(home.validator_key_path, VALIDATOR_KEY, SEED)
    with pytest.raises(KeyFileError, match="observer"):
        load_home(home.path)
    with pytest.raises(ValueError):
        create_home(tmp_path / "x", observer, genesis(), SEED)
    with pytest.raises(ValueError):
        create_home(tmp_path / "y", replace(observer, role="validator"), genesis(), None)


def test_a_directory_without_a_manifest_is_not_a_testnet(tmp_path: Path) -> None:
    with pytest.raises(HomeNotFoundError, match=r"testnet\.json"):
        read_manifest(tmp_path)
    (tmp_path / "testnet.json").write_text('{"chain_id": 1}')
    with pytest.raises(HomeError, match="not a testnet manifest"):
        read_manifest(tmp_path)


def test_the_written_config_explains_its_keys(tmp_path: Path) -> None:
    text = format_config(HomeConfig())
    lines = text.splitlines()
    index = lines.index("commit_wait_ms = 1000")
    assert lines[index - 1].startswith("# ") and "commit" in lines[index - 2].lower()
    assert parse_config(text) == HomeConfig()  # the comments change nothing
