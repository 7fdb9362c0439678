"""A seeded, portable random number generator (a ``node.ports.Rng``).

The stream is SHA-256 in counter mode over the seed, so it is the same on every platform and
Python version (``random.Random`` promises less), and ``fork(label)`` derives independent
streams for subsystems from one master seed, as a replayable simulation needs.
"""

from __future__ import annotations

from crypto_core.signatures import sha256

_BLOCK_BYTES = 32
# randint refuses spans whose rejection sampling would need unbounded bytes.
MAX_RANDINT_SPAN_BITS = 256


class SeededRng:
    """Deterministic randomness from ``seed`` (bytes, or an int/str turned into bytes)."""

    def __init__(self, seed: bytes | int | str) -> None:
        self._key = sha256(b"bighealth/rng/" + _seed_bytes(seed))
        self._counter = 0
        self._buffer = b""

    def fork(self, label: str) -> SeededRng:
        """An independent generator derived from this one's seed and ``label``."""
        return SeededRng(self._key + b"/" + label.encode())

    def random_bytes(self, count: int) -> bytes:
        """``count`` pseudo-random bytes."""
        if count < 0:
            raise ValueError(f"count must be >= 0, got {count}")
        while len(self._buffer) < count:
            block = sha256(self._key + self._counter.to_bytes(8, "big"))
            self._buffer += block
            self._counter += 1
        out, self._buffer = self._buffer[:count], self._buffer[count:]
        return out

    def randint(self, low: int, high: int) -> int:
        """Uniform in ``[low, high]`` by rejection sampling (no modulo bias)."""
        if low > high:
            raise ValueError(f"empty range [{low}, {high}]")
        span = high - low + 1
        bits = (span - 1).bit_length()
        if bits > MAX_RANDINT_SPAN_BITS:
            raise ValueError(f"range wider than 2^{MAX_RANDINT_SPAN_BITS}")
        if bits == 0:
            return low
        nbytes = (bits + 7) // 8
        mask = (1 << bits) - 1
        while True:  # each try succeeds with probability > 1/2
            candidate = int.from_bytes(self.random_bytes(nbytes), "big") & mask
            if candidate < span:
                return low + candidate


def _seed_bytes(seed: bytes | int | str) -> bytes:
    # Distinct prefixes keep the seeds 5, "5" and b"5" apart.
    if isinstance(seed, bytes):
        return b"b:" + seed
    if isinstance(seed, str):
        return b"s:" + seed.encode()
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be bytes, int or str, not {type(seed).__name__}")
    return b"i:" + str(seed).encode()
