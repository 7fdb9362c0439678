"""``bighealth --help`` starts fast: building the parser and printing any command's help
loads none of the heavy stack (checked by module, never by time), and the literal defaults
the parsers show (``node.cli.options``) are the values of their owners."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from health.contracts.common import ID_BYTES
from health.demo.story import DEFAULT_READINGS, DEFAULT_SPEED
from health.meter import TraceKind
from health.meter.runner import DEFAULT_RETRIES, DEFAULT_RETRY_DELAY_S
from node.app.kv import MAX_KV_KEY_BYTES, MAX_KV_VALUE_BYTES
from node.cli import build_parser, options
from node.cli.health_net import DEFAULT_TESTNET_PASSPHRASE
from node.home.config import LOG_LEVELS, ApiConfig, P2PConfig

HEAVY = ("pydantic", "health", "libp2p", "multiaddr", "plyvel", "trio", "nacl", "msgpack")
"""Top-level packages that ``--help`` must not import (the health stack, the I/O libraries,
the node's dependencies)."""

HELP_OF_EVERY_COMMAND = """
import contextlib, io, json, sys
import node.cli
for argv in %s:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
        node.cli.main(argv)
print(json.dumps(sorted(sys.modules)))
"""


def _help_argvs(parser: argparse.ArgumentParser, prefix: list[str]) -> list[list[str]]:
    """``--help`` of ``parser`` and of every command and action below it."""
    argvs = [[*prefix, "--help"]]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                argvs += _help_argvs(sub, [*prefix, name])
    return argvs


def test_help_of_every_command_loads_no_heavy_module() -> None:
    argvs = _help_argvs(build_parser(), [])
    assert ["meter", "simulate", "--help"] in argvs and ["demo", "--help"] in argvs
    script = HELP_OF_EVERY_COMMAND % json.dumps(argvs)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = json.loads(done.stdout)
    heavy = sorted(m for m in loaded if m.split(".")[0] in HEAVY)
    assert heavy == []
    node_modules = sorted(m for m in loaded if m.startswith(("node.", "crypto_core", "consensus")))
    assert not [m for m in node_modules if not m.startswith(("node.cli", "node.errors"))]


def test_the_parsers_literal_defaults_are_their_owners_values() -> None:
    assert P2PConfig().listen == options.P2P_LISTEN
    assert ApiConfig().listen == options.API_LISTEN
    assert options.LOG_LEVELS == LOG_LEVELS
    assert (options.MAX_KV_KEY_BYTES, options.MAX_KV_VALUE_BYTES) == (
        MAX_KV_KEY_BYTES,
        MAX_KV_VALUE_BYTES,
    )
    assert options.TESTNET_PASSPHRASE == DEFAULT_TESTNET_PASSPHRASE
    assert (options.DEMO_SPEED, options.DEMO_READINGS) == (DEFAULT_SPEED, DEFAULT_READINGS)
    assert tuple(kind.value for kind in TraceKind) == options.TRACE_KINDS
    assert (options.METER_RETRIES, options.METER_RETRY_DELAY_S) == (
        DEFAULT_RETRIES,
        DEFAULT_RETRY_DELAY_S,
    )
    assert options.IDENTITY_ID_BYTES == ID_BYTES
