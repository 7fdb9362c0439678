"""The node key file: created once (0600, atomically), loaded after, refused when unsafe."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from node.adapters.errors import InsecureKeyFileError, KeyFileError
from node.adapters.identity import (
    SEED_BYTES,
    format_node_key,
    load_node_key,
    load_or_create_node_key,
    node_key_path,
    parse_node_key,
)
from node.testing import SeededRng


def test_a_new_home_gets_a_private_key_that_later_opens_find_again(tmp_path: Path) -> None:
    home = tmp_path / "node"
    seed = load_or_create_node_key(home, SeededRng("k"))
    assert len(seed) == SEED_BYTES
    mode = stat.S_IMODE(node_key_path(home).stat().st_mode)
    assert mode == 0o600
    assert load_or_create_node_key(home, SeededRng("other")) == seed  # loaded, not remade
    assert sorted(p.name for p in home.iterdir()) == ["node_key"]  # no temporary left behind


def test_the_default_key_comes_from_the_os(tmp_path: Path) -> None:
    a = load_or_create_node_key(tmp_path / "a")
    b = load_or_create_node_key(tmp_path / "b")
    assert a != b


def test_a_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    load_or_create_node_key(tmp_path, SeededRng(1))
    os.chmod(node_key_path(tmp_path), 0o644)
    with pytest.raises(InsecureKeyFileError, match="chmod 600"):
        load_or_create_node_key(tmp_path)


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"\xff\xfe", "ASCII"),
        (b"something else\n00\n", "header"),
        (b"bighealth-node-key/1 ed25519\nzz\n", "hexadecimal"),
        (b"bighealth-node-key/1 ed25519\n" + b"00" * 31 + b"\n", "31 bytes"),
    ],
)
def test_malformed_key_files_are_refused(content: bytes, why: str) -> None:
    with pytest.raises(KeyFileError, match=why):
        parse_node_key(content)


def test_key_file_format_round_trips_and_oddities_are_refused(tmp_path: Path) -> None:
    seed = bytes(range(32))
    assert parse_node_key(format_node_key(seed)) == seed
    with pytest.raises(KeyFileError, match="no node key"):
        load_node_key(tmp_path / "missing")
    (tmp_path / "dir").mkdir()
    with pytest.raises(KeyFileError, match="regular file"):
        load_node_key(tmp_path / "dir")
    big = tmp_path / "big"
    big.write_bytes(b"x" * 5000)
    big.chmod(0o600)
    with pytest.raises(KeyFileError, match="too large"):
        load_node_key(big)
