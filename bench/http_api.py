"""HTTP server benchmark: the node's h11 server against an ASGI framework on trio.

    python -m bench.http_api [--json PATH] [--seconds S] [--connections N] [--repeat N]
                             [--smoke]

Each server runs in its own OS process on 127.0.0.1 and answers ``GET /ping`` with a small
JSON document; this process drives it with ``--connections`` keep-alive connections (trio
and h11 as the client, the same for both servers), one request at a time on each, for
``--seconds``, ``--repeat`` times against the same server process, and reports requests
per second (least, median and greatest over the runs) and the median and p99 latency (the
median over the runs of each run's figure), with the machine's facts (bench/common.py):

- ``h11``: ``node.api.http.serve_http`` (the node's server, its limits on);
- ``starlette-hypercorn``: a Starlette app under Hypercorn's trio worker, run only when both
  are importable (they are not dependencies of the project: install them in another
  environment and point ``PYTHONPATH`` at it to compare).

``--smoke`` runs the h11 server once for a fraction of a second, for the test suite. No target is
enforced: the figures depend on the machine (docs/API.md has one run and the decision).
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

import h11
import trio

from bench.common import (
    Column,
    Stats,
    machine_facts,
    machine_line,
    mode_of,
    render_table,
    sizes_for,
    write_json,
)

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
class Run:
    """One run's figures."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class Result:
    """One server's figures over its runs."""

    server: str
    runs: int
    requests: int
    """Requests answered over all runs."""
    seconds: float
    requests_per_s: Stats
    p50_ms: float
    """The median over the runs of each run's median latency."""
    p99_ms: float
    """The median over the runs of each run's 99th-percentile latency."""

    @classmethod
    def of(cls, server: str, runs: Sequence[Run]) -> Result:
        return cls(
            server=server,
            runs=len(runs),
            requests=sum(r.requests for r in runs),
            seconds=round(sum(r.seconds for r in runs), 3),
            requests_per_s=Stats.of(r.requests_per_s for r in runs),
            p50_ms=round(statistics.median(r.p50_ms for r in runs), 3),
            p99_ms=round(statistics.median(r.p99_ms for r in runs), 3),
        )


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


def measure(server: str, seconds: float, connections: int, repeat: int = 1) -> Result:
    """Start ``server`` in its own process, drive it ``repeat`` times, stop it."""
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
        runs = [_run(port, seconds, connections) for _ in range(max(1, repeat))]
    finally:
        process.terminate()
        process.wait(10)
    return Result.of(server, runs)


def _run(port: int, seconds: float, connections: int) -> Run:
    started = time.perf_counter()
    latencies = trio.run(_drive, port, seconds, connections)
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    if not ordered:
        raise RuntimeError(f"no request was answered in {seconds} s: is the server up?")
    return Run(
        requests=len(ordered),
        seconds=elapsed,
        p50_ms=1000 * statistics.median(ordered),
        p99_ms=1000 * ordered[int(0.99 * (len(ordered) - 1))],
    )


COLUMNS = (
    Column("server", 20),
    Column("runs", 4, ">"),
    Column("requests", 9, ">"),
    Column("req/s min", 10, ">", ",.1f"),
    Column("median", 10, ">", ",.1f"),
    Column("max", 10, ">", ",.1f"),
    Column("p50 ms", 8, ">", ".3f"),
    Column("p99 ms", 8, ">", ".3f"),
)


def render(
    results: Sequence[Result], missing: Sequence[str], info: dict[str, Any], connections: int
) -> str:
    """The table: one line per server measured, then the servers not installed here."""
    heading = (
        f"{machine_line(info)}\n{connections} keep-alive connection(s); req/s: min / median / "
        "max over the runs; p50, p99: the median over the runs"
    )
    table = render_table(
        COLUMNS,
        (
            (
                r.server,
                r.runs,
                r.requests,
                r.requests_per_s.min,
                r.requests_per_s.median,
                r.requests_per_s.max,
                r.p50_ms,
                r.p99_ms,
            )
            for r in results
        ),
    )
    absent = [f"{name}: not installed here (see the module docstring)" for name in missing]
    return "\n".join([heading, table, *absent])


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print a table (and write JSON with ``--json``)."""
    parser = argparse.ArgumentParser(prog="python -m bench.http_api", description=__doc__)
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--seconds", type=float, default=5.0, help="of each run")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3, help="runs per server")
    parser.add_argument("--smoke", action="store_true", help="a fraction of a second, h11 only")
    args = parser.parse_args(argv)
    seconds, repeat = sizes_for(args.smoke, 0.3, args.seconds, args.repeat)
    servers = ("h11",) if args.smoke else SERVERS
    missing = [server for server in servers if not available(server)]
    results = [
        measure(server, seconds, args.connections, repeat)
        for server in servers
        if server not in missing
    ]
    info = machine_facts(connections=args.connections)
    print(render(results, missing, info, args.connections))
    if args.json is not None:
        write_json(
            args.json,
            "http_api",
            info,
            [asdict(r) for r in results],
            mode=mode_of(args.smoke),
            repeat=repeat,
            seconds_per_run=seconds,
            not_installed=missing,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
