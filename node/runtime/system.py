"""The real world behind the ``Clock`` and ``Rng`` ports: the OS clock and its CSPRNG."""

from __future__ import annotations

import secrets
import time


class SystemClock:
    """Wall-clock milliseconds since the Unix epoch (``node.ports.Clock``), plus
    ``skew_ms`` (0 but in fault campaigns: ``bighealth run --clock-skew-ms``)."""

    def __init__(self, skew_ms: int = 0) -> None:
        self.skew_ms = skew_ms

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000 + self.skew_ms


class SystemRng:
    """The operating system's cryptographic randomness (``node.ports.Rng``)."""

    def random_bytes(self, count: int) -> bytes:
        if count < 0:
            raise ValueError(f"count must be >= 0, got {count}")
        return secrets.token_bytes(count)

    def randint(self, low: int, high: int) -> int:
        if low > high:
            raise ValueError(f"empty range [{low}, {high}]")
        return low + secrets.randbelow(high - low + 1)
