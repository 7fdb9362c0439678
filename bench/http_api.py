"""HTTP server benchmark: the node's h11 server against an ASGI framework on trio.

    python -m bench.http_api [--json PATH] [--seconds S] [--connections N] [--smoke]

Each server runs in its own OS process on 127.0.0.1 and answers ``GET /ping`` with a small
JSON document; this process drives it with ``--connections`` keep-alive connections (trio
and h11 as the client, the same for both servers), one request at a time on each, for
``--seconds``, and reports requests per second and the median and p99 latency:

- ``h11``: ``node.api.http.serve_http`` (the node's server, its limits on);
- ``starlette-hypercorn``: a Starlette app under Hypercorn's trio worker, run only when both
  are importable (they are not dependencies of the project: install them in another
  environment and point ``PYTHONPATH`` at it to compare).

``--smoke`` runs the h11 server for a fraction of a second, for the test suite. No target is
enforced: the figures depend on the machine (docs/API.md has one run and the decision).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final

import h11
import trio

SERVERS: Final = ("h11", "starlette-hypercorn")
BODY: Final = b'{"status":"ok","height":42}'
H11_SERVER: Final = """
import sys, trio
from node.api.http import HttpLimits, Response, serve_http
async def handler(request):
    return Response(200, %(body)r)
async def main():
    async with trio.open_nursery() as nursery:
        limits = HttpLimits(max_connections=256, max_connections_per_client=256)
        host, port = await nursery.start(serve_http, "127.0.0.1", 0, handler, limits)
        print(port, flush=True)
trio.run(main)
"""
ASGI_SERVER: Final = """
import socket, sys, trio
from hypercorn.config import Config
from hypercorn.trio import serve
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route
async def ping(request):
    return Response(%(body)r, media_type="application/json")
app = Starlette(routes=[Route("/ping", ping)])
probe = socket.socket(); probe.bind(("127.0.0.1", 0)); port = probe.getsockname()[1]; probe.close()
config = Config(); config.bind = [f"127.0.0.1:{port}"]; config.accesslog = None
config.errorlog = None
print(port, flush=True)
trio.run(serve, app, config)
"""


@dataclass(frozen=True)
class Result:
    """One server's figures."""

    server: str
    requests: int
    seconds: float
    requests_per_s: float
    p50_ms: float
    p99_ms: float


def available(server: str) -> bool:
    """True when ``server`` can run here."""
    if server == "h11":
        return True
    return all(importlib.util.find_spec(name) for name in ("starlette", "hypercorn"))


async def _connection(port: int, until: float, latencies: list[float]) -> None:
    """Requests one at a time on a keep-alive connection, a new one when the server closes
    it (the node's server serves at most 1,000 requests a connection)."""
    request = h11.Request(method="GET", target="/ping", headers=[("host", "bench")])
    while time.perf_counter() < until:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        client = h11.Connection(h11.CLIENT)
        async with stream:
            while time.perf_counter() < until:
                started = time.perf_counter()
                data = client.send(request) or b""
                data += client.send(h11.EndOfMessage()) or b""
                await stream.send_all(data)
                while not isinstance(event := client.next_event(), h11.EndOfMessage):
                    if event is h11.NEED_DATA:
                        client.receive_data(await stream.receive_some(65536))
                latencies.append(time.perf_counter() - started)
                if client.our_state is not h11.DONE or client.their_state is not h11.DONE:
                    break  # the server closes this connection
                client.start_next_cycle()


async def _wait_listening(port: int, timeout_s: float = 10.0) -> None:
    """Return once ``port`` accepts connections (a server process is starting)."""
    with trio.fail_after(timeout_s):
        while True:
            try:
                stream = await trio.open_tcp_stream("127.0.0.1", port)
            except OSError:
                await trio.sleep(0.05)
                continue
            await stream.aclose()
            return


async def _drive(port: int, seconds: float, connections: int) -> list[float]:
    latencies: list[float] = []
    until = time.perf_counter() + seconds
    async with trio.open_nursery() as nursery:
        for _ in range(connections):
            nursery.start_soon(_connection, port, until, latencies)
    return latencies


def measure(server: str, seconds: float, connections: int) -> Result:
    """Start ``server`` in its own process, drive it, stop it."""
    source = (H11_SERVER if server == "h11" else ASGI_SERVER) % {"body": BODY}
    root = str(Path(__file__).resolve().parent.parent)
    process = subprocess.Popen(
        [sys.executable, "-c", source], stdout=subprocess.PIPE, text=True, cwd=root
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        trio.run(_wait_listening, port)
        trio.run(_drive, port, min(0.2, seconds), connections)  # warm up, connect
        started = time.perf_counter()
        latencies = trio.run(_drive, port, seconds, connections)
        elapsed = time.perf_counter() - started
    finally:
        process.terminate()
        process.wait(10)
    ordered = sorted(latencies)
    return Result(
        server=server,
        requests=len(ordered),
        seconds=round(elapsed, 3),
        requests_per_s=round(len(ordered) / elapsed, 1),
        p50_ms=round(1000 * statistics.median(ordered), 3),
        p99_ms=round(1000 * ordered[int(0.99 * (len(ordered) - 1))], 3),
    )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print a table (and write JSON with ``--json``)."""
    parser = argparse.ArgumentParser(prog="python -m bench.http_api", description=__doc__)
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--smoke", action="store_true", help="a fraction of a second, h11 only")
    args = parser.parse_args(argv)
    seconds = 0.3 if args.smoke else args.seconds
    servers = ("h11",) if args.smoke else SERVERS
    results = []
    print(f"{'server':22} {'requests':>9} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for server in servers:
        if not available(server):
            print(f"{server:22} not installed here (see the module docstring)")
            continue
        result = measure(server, seconds, args.connections)
        results.append(result)
        print(
            f"{server:22} {result.requests:9d} {result.requests_per_s:9.1f} "
            f"{result.p50_ms:8.3f} {result.p99_ms:8.3f}"
        )
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
