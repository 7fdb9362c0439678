"""Bytes on the wire between nodes, from the kernel's TCP counters.

The libp2p adapter counts message payloads per topic (``bighealth_p2p_sent_bytes``: each
broadcast once, before gossipsub relays it to every mesh peer, without Noise and Yamux
framing), not what crosses the network. The kernel knows: ``ss -tin`` reports
``bytes_sent`` of every TCP connection (tcp_info). ``tcp_bytes_sent`` sums it over the
connections with one end on a node's libp2p port, so the difference of two readings is
what the nodes sent each other in between, framing, relays and retransmissions included.
A connection that closed in between is not counted (validators keep theirs open).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Collection
from typing import Final

SS_TIMEOUT_S: Final = 10.0
_BYTES_SENT: Final = re.compile(r"\bbytes_sent:(\d+)")

TcpCounters = dict[tuple[str, str], int]
"""``bytes_sent`` by (local address, peer address) of each connection."""


def _port(address: str) -> int | None:
    _, _, port = address.rpartition(":")
    return int(port) if port.isdigit() else None


def tcp_bytes_sent(ports: Collection[int]) -> TcpCounters | None:
    """``bytes_sent`` of every established TCP connection with an end on one of ``ports``;
    ``None`` when ``ss`` (iproute2) is not installed or fails."""
    ss = shutil.which("ss")
    if ss is None:
        return None
    try:
        done = subprocess.run(
            [ss, "-tinH", "state", "established"],
            capture_output=True,
            text=True,
            timeout=SS_TIMEOUT_S,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_ss(done.stdout, ports)


def parse_ss(text: str, ports: Collection[int]) -> TcpCounters:
    """The counters of ``ss -tinH state established`` output (a socket line, then its
    indented tcp_info line) for connections with an end on one of ``ports``."""
    counters: TcpCounters = {}
    current: tuple[str, str] | None = None
    for line in text.splitlines():
        if not line[:1].isspace():
            fields = line.split()
            current = None
            if len(fields) >= 4 and (_port(fields[2]) in ports or _port(fields[3]) in ports):
                current = (fields[2], fields[3])
            continue
        if current is not None:
            match = _BYTES_SENT.search(line)
            counters[current] = int(match.group(1)) if match else 0
            current = None
    return counters


def bytes_between(before: TcpCounters | None, after: TcpCounters | None) -> int | None:
    """Bytes sent between two readings (``None`` if either is missing)."""
    if before is None or after is None:
        return None
    return sum(max(0, sent - before.get(key, 0)) for key, sent in after.items())
