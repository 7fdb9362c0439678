"""One master seed, many independent random streams.

Every subsystem (the topology, each link's jitter, the fault plan, the workload, each node)
draws from its own ``random.Random`` whose seed is ``SHA-256("netsim/v1" | master seed |
name)``. So adding draws to one subsystem never shifts another's, and a stream depends only
on the master seed and its name: never on Python's ``hash()`` (salted per process by
``PYTHONHASHSEED``) nor on the order in which streams are created.

The global ``random`` functions are never used: they share one hidden state with any library
that calls them.
"""

from __future__ import annotations

import hashlib
import random
from typing import Final

MAX_SEED: Final = 2**64 - 1
"""Seeds are 0..2^64-1 (printed in replay commands, so they stay short)."""

_DOMAIN: Final = b"netsim/v1"


def check_seed(seed: object) -> int:
    """``seed`` if it is an int in 0..MAX_SEED, else ValueError naming the range."""
    if type(seed) is not int or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"a seed is an int in 0..{MAX_SEED}, got {seed!r}")
    return seed


def derive_seed(master_seed: int, name: str) -> int:
    """The 256-bit seed of stream ``name`` under ``master_seed`` (a pure function)."""
    check_seed(master_seed)
    material = b"\x00".join((_DOMAIN, str(master_seed).encode(), name.encode()))
    return int.from_bytes(hashlib.sha256(material).digest(), "big")


class RandomStreams:
    """The named streams of one run; asking twice for a name gives the same stream."""

    __slots__ = ("_master_seed", "_streams")

    def __init__(self, master_seed: int) -> None:
        """Streams under ``master_seed`` (ValueError outside 0..MAX_SEED)."""
        self._master_seed = check_seed(master_seed)
        self._streams: dict[str, random.Random] = {}

    @property
    def master_seed(self) -> int:
        """The seed everything derives from."""
        return self._master_seed

    def stream(self, name: str) -> random.Random:
        """The stream called ``name`` (created on first use)."""
        found = self._streams.get(name)
        if found is None:
            found = random.Random(derive_seed(self._master_seed, name))
            self._streams[name] = found
        return found


class PortRng:
    """A ``node.ports.Rng`` over one stream, for the pure node code a simulation drives."""

    __slots__ = ("_random",)

    def __init__(self, stream: random.Random) -> None:
        self._random = stream

    def random_bytes(self, count: int) -> bytes:
        """``count`` pseudo-random bytes (ValueError if negative)."""
        if count < 0:
            raise ValueError(f"count must be >= 0, got {count}")
        return self._random.randbytes(count)

    def randint(self, low: int, high: int) -> int:
        """Uniform in ``[low, high]`` (ValueError if empty)."""
        if low > high:
            raise ValueError(f"empty range [{low}, {high}]")
        return self._random.randint(low, high)
