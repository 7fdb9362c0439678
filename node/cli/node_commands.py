"""Commands that run a node or talk to a running one: ``run``, ``status``, ``tx``."""

from __future__ import annotations

import argparse
import functools
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from node.cli.common import (
    EXIT_ERROR,
    EXIT_HALT,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    Subparsers,
    add_home_argument,
    package_version,
    print_json,
)
from node.cli.options import MAX_KV_KEY_BYTES, MAX_KV_VALUE_BYTES

if TYPE_CHECKING:
    from crypto_core.signatures import Ed25519KeyPair
    from node.api.client import ApiClient

# The handlers import what they use when they run: building the parser (``--help``) loads
# none of the node's stack (tests/cli/test_cli_startup.py).

logger = logging.getLogger("node.cli")

API_TIMEOUT_S: Final = 5.0


# -- run ------------------------------------------------------------------------------------


def add_run(sub: Subparsers) -> None:
    parser = sub.add_parser("run", help="run the node of a home until SIGTERM or Ctrl-C")
    add_home_argument(parser)
    parser.add_argument(
        "--log-level", choices=("debug", "info", "warning", "error"), help="override [log] level"
    )
    parser.add_argument("--log-format", choices=("json", "text"), help="override [log] format")
    parser.add_argument(
        "--keystores",
        type=Path,
        metavar="DIR",
        help="keystores the health API's sessions unlock (default: HOME/keystores)",
    )
    faults = "for fault campaigns: refused unless BIGHEALTH_ALLOW_FAULTS=1"
    parser.add_argument(
        "--fault-gate", action="store_true", help=f"obey HOME/chaos-gate.json ({faults})"
    )
    parser.add_argument(
        "--clock-skew-ms",
        type=int,
        default=0,
        metavar="N",
        help=f"skew the clock by N ms ({faults})",
    )
    parser.add_argument(
        "--byzantine",
        metavar="KIND[,KIND...]",
        help="lie to peers: equivocate, invalid-block, oversized, malformed, tx-flood, "
        "stale-replay (attack tests: refused unless BIGHEALTH_ALLOW_BYZANTINE=1, test chains)",
    )
    parser.set_defaults(handler=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    """Run the node; 0 after a graceful stop, 1 if it cannot start, 3 if its chain halted
    (2 for fault-injection flags without ``BIGHEALTH_ALLOW_FAULTS=1``)."""
    from node.runtime.fault_gate import FaultOptions, faults_allowed  # noqa: PLC0415

    faults = FaultOptions(gate=args.fault_gate, clock_skew_ms=args.clock_skew_ms)
    if faults != FaultOptions() and not faults_allowed():
        print(
            "bighealth run: --fault-gate and --clock-skew-ms need BIGHEALTH_ALLOW_FAULTS=1",
            file=sys.stderr,
        )
        return EXIT_USAGE
    import trio  # noqa: PLC0415

    from node.chain.errors import ChainHaltError  # noqa: PLC0415
    from node.cli.composition import application_for  # noqa: PLC0415
    from node.cli.health_net import health_extensions  # noqa: PLC0415
    from node.home import load_home  # noqa: PLC0415
    from node.runtime.logs import configure_logging  # noqa: PLC0415

    loaded = load_home(args.home)
    from node.runtime.byzantine import ByzantineModeError, byzantine_kinds  # noqa: PLC0415

    try:
        byzantine = byzantine_kinds(args.byzantine, loaded.genesis.chain_id)
    except ByzantineModeError as exc:
        print(f"bighealth run: {exc}", file=sys.stderr)
        return EXIT_USAGE
    log = loaded.config.log
    level, form = args.log_level or log.level, args.log_format or log.format
    configure_logging(level, form, loaded.config.moniker)
    # libp2p takes ~0.8 s to import: only `run` loads the runtime that needs it.
    from node.runtime.launch import NodeStartError, run_node  # noqa: PLC0415

    try:
        trio.run(
            functools.partial(
                run_node,
                loaded,
                version=package_version(),
                app_factory=application_for,
                extensions=functools.partial(health_extensions, keystores=args.keystores),
                faults=faults,
                byzantine=byzantine,
            )
        )
    except NodeStartError as exc:
        logger.error("cannot start: %s", exc)
        print(f"bighealth run: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except ChainHaltError as exc:
        logger.critical("chain halted: %s", exc, exc_info=True)
        print(f"bighealth run: the chain halted on this node: {exc}", file=sys.stderr)
        return EXIT_HALT
    except KeyboardInterrupt:  # Ctrl-C before the signal handler was installed
        return EXIT_INTERRUPTED
    logger.info("stopped")
    return EXIT_OK


# -- status ---------------------------------------------------------------------------------


def add_status(sub: Subparsers) -> None:
    parser = sub.add_parser("status", help="the running node's status (JSON)")
    add_home_argument(parser)
    parser.add_argument("--api", metavar="HOST:PORT", help="ask this address, not the home's")
    parser.set_defaults(handler=cmd_status)


def cmd_status(args: argparse.Namespace) -> int:
    """Ask the node's API (``[api] listen`` of its home) for ``/status``."""
    print_json(api_client(args.home, args.api).get("/status"))
    return EXIT_OK


def api_client(home: Path, override: str | None = None) -> ApiClient:
    """A client of the API of the node at ``home`` (or at ``override``)."""
    from node.api.client import ApiClient  # noqa: PLC0415
    from node.home import load_config, parse_host_port  # noqa: PLC0415

    address = override if override is not None else load_config(home).api.listen
    host, port = parse_host_port(address)
    if host in ("0.0.0.0", "::"):  # listening everywhere: reach it on loopback
        host = "127.0.0.1" if host == "0.0.0.0" else "::1"
    return ApiClient(host, port, API_TIMEOUT_S)


# -- tx -------------------------------------------------------------------------------------


def add_tx(sub: Subparsers) -> None:
    parser = sub.add_parser("tx", help="submit a transaction to a running node")
    tx = parser.add_subparsers(dest="tx_command", metavar="ACTION", required=True)
    submit = tx.add_parser("submit", help="an encoded transaction (hex or a file)")
    add_home_argument(submit)
    source = submit.add_mutually_exclusive_group(required=True)
    source.add_argument("--hex", help="the transaction's canonical bytes in hex")
    source.add_argument("--file", type=Path, help="a file holding the canonical bytes")
    submit.set_defaults(handler=cmd_tx_submit)
    kv = tx.add_parser("kv-set", help="sign and submit kv.set (store a value under a key)")
    add_home_argument(kv)
    kv.add_argument("--key-file", type=Path, required=True, help="the sender's account key")
    kv.add_argument("--key", required=True, help=f"the key (UTF-8, <= {MAX_KV_KEY_BYTES} bytes)")
    kv.add_argument("--value", required=True, help=f"the value (<= {MAX_KV_VALUE_BYTES} bytes)")
    kv.add_argument("--nonce", type=int, help="the sender's nonce (default: asked of the node)")
    kv.set_defaults(handler=cmd_tx_kv_set)


def cmd_tx_submit(args: argparse.Namespace) -> int:
    raw = _raw_tx(args.hex, args.file)
    return _print_verdict(api_client(args.home).submit_tx(raw))


def cmd_tx_kv_set(args: argparse.Namespace) -> int:
    from node.home import ACCOUNT_KEY, HomeError, parse_genesis, read_key_file  # noqa: PLC0415
    from node.home.layout import NodeHome  # noqa: PLC0415

    home = NodeHome(args.home)
    if not home.genesis_path.is_file():
        raise HomeError(f"{args.home} has no genesis.json: is it a node home?")
    chain_id = parse_genesis(home.genesis_path.read_bytes(), str(home.genesis_path)).chain_id
    signer = read_key_file(args.key_file, ACCOUNT_KEY)
    client = api_client(args.home)
    nonce = args.nonce
    if nonce is None:
        nonce = int(client.get(f"/accounts/{signer.public_key.hex()}/nonce")["next_nonce"])
    key, value = args.key.encode(), args.value.encode()
    if not 1 <= len(key) <= MAX_KV_KEY_BYTES or len(value) > MAX_KV_VALUE_BYTES:
        raise HomeError(
            f"--key must be 1..{MAX_KV_KEY_BYTES} bytes, --value <= {MAX_KV_VALUE_BYTES}"
        )
    raw = kv_set_transaction(chain_id, signer, nonce, key, value)
    return _print_verdict(client.submit_tx(raw))


def kv_set_transaction(
    chain_id: str, signer: Ed25519KeyPair, nonce: int, key: bytes, value: bytes
) -> bytes:
    """The canonical bytes of a signed ``kv.set`` transaction."""
    from node.app.kv import set_payload  # noqa: PLC0415
    from node.codec import TX_CODEC, sign_transaction  # noqa: PLC0415
    from node.types import UnsignedTransaction  # noqa: PLC0415

    unsigned = UnsignedTransaction(
        chain_id=chain_id,
        sender=signer.public_key,
        nonce=nonce,
        kind="kv.set",
        payload=set_payload(key, value),
        priority=0,
    )
    return TX_CODEC.encode(sign_transaction(unsigned, signer))


def _raw_tx(hex_text: str | None, path: Path | None) -> bytes:
    from node.codec import MAX_TX_BYTES  # noqa: PLC0415
    from node.home import HomeError  # noqa: PLC0415

    if path is not None:
        if not path.is_file() or path.stat().st_size > MAX_TX_BYTES:
            raise HomeError(f"{path} is not a file of at most {MAX_TX_BYTES} bytes")
        return path.read_bytes()
    assert hex_text is not None
    try:
        return bytes.fromhex(hex_text)
    except ValueError:
        raise HomeError("--hex is not hexadecimal") from None


def _print_verdict(verdict: dict[str, Any]) -> int:
    print_json(verdict)
    return EXIT_OK if verdict.get("accepted") else EXIT_ERROR
