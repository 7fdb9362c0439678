"""A one-line progress bar on a terminal: heights decided, virtual time, events, wall time.

It only reads the simulation's progress reports and a wall clock (to redraw at most a few
times a second); nothing it does feeds back into the run.
"""

from __future__ import annotations

import time
from typing import Final, TextIO

from netsim.simulation import Progress

BAR_CELLS: Final = 30
REDRAW_S: Final = 0.2


class ProgressBar:
    """Draws :class:`~netsim.simulation.Progress` reports on ``stream`` (a TTY, usually)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._started = time.monotonic()
        self._last_draw = 0.0
        self._drawn = False

    def __call__(self, progress: Progress) -> None:
        """Redraw if enough wall time passed since the last draw."""
        now = time.monotonic()
        if now - self._last_draw < REDRAW_S:
            return
        self._last_draw = now
        done = min(1.0, progress.height / max(1, progress.target_height))
        filled = int(done * BAR_CELLS)
        bar = "#" * filled + "." * (BAR_CELLS - filled)
        failures = f" | {progress.violations} violation(s)" if progress.violations else ""
        self._stream.write(
            f"\r[{bar}] height {progress.height}/{progress.target_height} | "
            f"sim {progress.time_us / 1e6:,.1f}s | {progress.events:,} events | "
            f"{now - self._started:,.1f}s wall{failures}   "
        )
        self._stream.flush()
        self._drawn = True

    def close(self) -> None:
        """End the bar's line (if anything was drawn)."""
        if self._drawn:
            self._stream.write("\n")
            self._stream.flush()
