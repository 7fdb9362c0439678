"""Where a benchmark ran and what its processes used: machine facts, /proc samples,
percentiles.

``machine_facts`` is the same record ``bench/common.py`` writes (CPU model, cores, Python,
platform, 1-minute load average). ``ProcessSample`` reads a process's CPU ticks and resident
memory from ``/proc/<pid>/stat`` and ``/proc/<pid>/status`` (Linux; elsewhere the figures
are ``None``), so the CPU share of a node over a window is the difference of two samples.
"""

from __future__ import annotations

import math
import os
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

CPUINFO: Final = Path("/proc/cpuinfo")
PROC: Final = Path("/proc")
PERCENTILES: Final = (50, 95, 99)


def cpuinfo_field(name: str) -> str:
    """The first ``name`` line of /proc/cpuinfo, or "" where there is none."""
    if not CPUINFO.exists():
        return ""
    for line in CPUINFO.read_text().splitlines():
        key, _, value = line.partition(":")
        if key.strip() == name:
            return value.strip()
    return ""


def machine_facts(**extra: Any) -> dict[str, Any]:
    """Where the figures were measured; ``extra`` adds a benchmark's own facts."""
    load = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
    return {
        "cpu": cpuinfo_field("model name") or platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "load_1m": load,
        **extra,
    }


def load_average() -> list[float] | None:
    """The 1, 5 and 15-minute load averages (``None`` where the OS has none)."""
    if not hasattr(os, "getloadavg"):
        return None
    return [round(value, 2) for value in os.getloadavg()]


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile of ``ordered`` (sorted, non-empty), ``fraction`` in 0..1."""
    if not ordered:
        raise ValueError("no values")
    rank = max(1, math.ceil(fraction * len(ordered)))
    return float(ordered[rank - 1])


def percentiles(values: Sequence[float]) -> dict[str, float | None]:
    """``{"p50", "p95", "p99"}`` of ``values`` in their unit, rounded to 0.1 (``None`` each
    when there are no values)."""
    ordered = sorted(values)
    return {
        f"p{p}": round(percentile(ordered, p / 100), 1) if ordered else None for p in PERCENTILES
    }


@dataclass(frozen=True, slots=True)
class ProcessSample:
    """A process's CPU seconds (user + system) and memory at one moment (``at_s``,
    ``time.monotonic``)."""

    cpu_s: float
    rss_mb: float
    peak_rss_mb: float
    at_s: float

    @classmethod
    def read(cls, pid: int) -> ProcessSample | None:
        """The sample of ``pid`` now; ``None`` when it is gone or /proc is not there."""
        at_s = time.monotonic()
        try:
            stat = (PROC / str(pid) / "stat").read_text()
            status = (PROC / str(pid) / "status").read_text()
        except OSError:
            return None
        # the command name (field 2) may hold spaces: the fields that follow start after ")"
        fields = stat.rpartition(")")[2].split()
        ticks_per_s = os.sysconf("SC_CLK_TCK")
        cpu_s = (int(fields[11]) + int(fields[12])) / ticks_per_s  # utime, stime
        memory = _status_kib(status)
        return cls(cpu_s, memory.get("VmRSS", 0) / 1024, memory.get("VmHWM", 0) / 1024, at_s)


def _status_kib(status: str) -> dict[str, int]:
    values = {}
    for line in status.splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if len(parts) == 2 and parts[1] == "kB" and parts[0].isdigit():
            values[key] = int(parts[0])
    return values


def cpu_percent(before: ProcessSample | None, after: ProcessSample | None) -> float | None:
    """The CPU share (100 = one core busy) between two samples."""
    if before is None or after is None or after.at_s <= before.at_s:
        return None
    wall_s = after.at_s - before.at_s
    return round(100 * (after.cpu_s - before.cpu_s) / wall_s, 1)
