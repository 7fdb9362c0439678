"""``SimClock``: a node's wall clock in virtual time, with an offset and a drift.

A real node's clock is wrong in two ways: it is off by some amount (``offset_ms``) and it
runs a little fast or slow (``drift_ppm``, parts per million). Both matter to the node: block
times are proposed from it and checked against it, and its timeouts last what *its* clock
says. ``now_ms`` is what the node reads (a ``node.ports.Clock``); ``virtual_delay_us`` turns a
duration the node measures into virtual time, so a fast clock fires its timers early.

All arithmetic is on integers, so a drifting clock reads the same on every machine.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from netsim.limits import MAX_CLOCK_DRIFT_PPM, MAX_CLOCK_OFFSET_MS

DEFAULT_EPOCH_MS: Final = 1_700_000_000_000
"""Wall-clock time at virtual time 0 (a fixed date, so runs are reproducible)."""

_PPM: Final = 1_000_000


class SimClock:
    """The clock of one node (implements ``node.ports.Clock``)."""

    __slots__ = ("_drift_ppm", "_epoch_ms", "_now_us", "_offset_ms")

    def __init__(
        self,
        now_us: Callable[[], int],
        *,
        epoch_ms: int = DEFAULT_EPOCH_MS,
        offset_ms: int = 0,
        drift_ppm: int = 0,
    ) -> None:
        """A clock reading ``epoch_ms + offset_ms`` at virtual time 0, running at
        ``1 + drift_ppm / 10^6`` times virtual speed. ``now_us`` reads virtual time.

        Raises ValueError for |offset| > MAX_CLOCK_OFFSET_MS or |drift| > MAX_CLOCK_DRIFT_PPM.
        """
        _check_offset(offset_ms)
        if type(drift_ppm) is not int or abs(drift_ppm) > MAX_CLOCK_DRIFT_PPM:
            raise ValueError(f"drift must be an int within ±{MAX_CLOCK_DRIFT_PPM} ppm")
        self._now_us = now_us
        self._epoch_ms = epoch_ms
        self._offset_ms = offset_ms
        self._drift_ppm = drift_ppm

    @property
    def drift_ppm(self) -> int:
        """How much faster than virtual time this clock runs, in parts per million."""
        return self._drift_ppm

    @property
    def offset_ms(self) -> int:
        """The offset added to the drifting reading, in milliseconds."""
        return self._offset_ms

    def now_ms(self) -> int:
        """Milliseconds since the Unix epoch, as this node's clock says."""
        elapsed_us = self._now_us() * (_PPM + self._drift_ppm) // _PPM
        return self._epoch_ms + self._offset_ms + elapsed_us // 1_000

    def virtual_delay_us(self, local_ms: int) -> int:
        """Virtual microseconds until this clock has advanced ``local_ms`` (>= 0), rounded up."""
        if local_ms < 0:
            raise ValueError(f"a duration must be >= 0 ms, got {local_ms}")
        return -(-local_ms * 1_000 * _PPM // (_PPM + self._drift_ppm))

    def step(self, delta_ms: int) -> None:
        """Jump by ``delta_ms`` (either way), as an NTP step does; the offset stays bounded."""
        _check_offset(self._offset_ms + delta_ms)
        self._offset_ms += delta_ms


def _check_offset(offset_ms: int) -> None:
    if type(offset_ms) is not int or abs(offset_ms) > MAX_CLOCK_OFFSET_MS:
        raise ValueError(f"clock offset must be an int within ±{MAX_CLOCK_OFFSET_MS} ms")
