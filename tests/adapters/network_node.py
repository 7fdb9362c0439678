"""A node in its own OS process, for the cross-process tests (and to poke at by hand).

    python -m tests.adapters.network_node --home DIR --chain ID [--bootstrap ADDR ...]

It prints ``LISTEN <multiaddr>`` once serving, then: answers ``/bighealth/echo/1`` requests
with their own bytes and ``/bighealth/ctl/1`` requests ``mesh <topic>`` with its mesh peers
(comma-separated); echoes each direct message on ``direct`` back to its sender on
``direct-reply``; answers each broadcast on ``ping`` with a broadcast on ``pong`` of
``<its peer id>:<data>``. It stops cleanly when its stdin closes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import trio

from node.adapters.config import Libp2pNetworkConfig
from node.adapters.libp2p import Libp2pNetwork
from node.testing import SeededRng

ECHO = "/bighealth/echo/1"
CONTROL = "/bighealth/ctl/1"
RECEIVE_BATCH = 256


async def serve_until_stdin_closes(network: Libp2pNetwork) -> None:
    async def echo(peer: str, data: bytes) -> bytes:
        return data

    async def control(peer: str, data: bytes) -> bytes:
        command, _, topic = data.decode().partition(" ")
        if command != "mesh":
            raise ValueError(f"unknown command {command!r}")
        return ",".join(network.mesh_peers(topic)).encode()

    network.register_handler(ECHO, echo)
    network.register_handler(CONTROL, control)
    for topic in ("ping", "pong"):
        network.subscribe(topic)
    async with trio.open_nursery() as nursery:
        await nursery.start(network.serve)
        print("LISTEN", network.listen_addrs[0], flush=True)
        nursery.start_soon(answer_messages, network)
        stdin = trio.wrap_file(sys.stdin)
        while await stdin.readline():
            pass
        nursery.cancel_scope.cancel()


async def answer_messages(network: Libp2pNetwork) -> None:
    while True:
        seen = network.arrivals
        for message in network.receive(RECEIVE_BATCH):
            if message.topic == "direct":
                network.send(message.sender, "direct-reply", message.data)
            elif message.topic == "ping":
                network.broadcast("pong", network.local_peer.encode() + b":" + message.data)
        await network.wait_arrival(seen)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.adapters.network_node")
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--chain", required=True)
    parser.add_argument("--bootstrap", action="append", default=[])
    args = parser.parse_args()
    config = Libp2pNetworkConfig(
        chain_id=args.chain, home=args.home, bootstrap=tuple(args.bootstrap)
    )
    network = Libp2pNetwork(config, rng=SeededRng(str(args.home)))
    trio.run(serve_until_stdin_closes, network)


if __name__ == "__main__":
    main()
