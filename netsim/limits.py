"""Every bound of the simulator in one place, with its unit in its name.

Nothing in a run grows without one of these limits: the event heap, the bytes in flight on a
link, the backlog of a paused node, the timers of a node, the samples kept for statistics.
A limit reached on a *network* path drops the message and counts it, as a real network drops
under load; a limit reached on the simulator's own structures raises
:class:`netsim.errors.LimitExceeded`, because then the model itself ran away.
"""

from __future__ import annotations

from typing import Final

# --- sizes of a run --------------------------------------------------------------------------

MAX_NODES: Final = 4_096
"""Most nodes (validators and non-validators) in one run."""

MAX_VALIDATORS: Final = 256
"""Most validators in one run (each one's votes reach every other validator)."""

MAX_HEIGHTS: Final = 100_000
"""Most heights one run may aim for."""

MAX_HEIGHTS_RECORDED: Final = 2 * 100_000
"""Most heights whose decision a run records (a run stops soon after its target height)."""

MAX_SIM_TIME_MS: Final = 7 * 24 * 3_600_000
"""Longest virtual time of one run, in milliseconds (a week)."""

# --- the event engine ------------------------------------------------------------------------

MAX_PENDING_EVENTS: Final = 4_000_000
"""Events waiting in the heap (deliveries, timers, faults, workload arrivals)."""

MAX_TIMERS_PER_NODE: Final = 4_096
"""Timers one node may have pending; stale consensus timeouts fire and are ignored, so a
handful per round is normal and thousands mean a runaway node."""

MAX_TIMER_DELAY_MS: Final = 24 * 3_600_000
"""Longest timer a node may set, in milliseconds of its own clock."""

# --- the network -----------------------------------------------------------------------------

MAX_IN_FLIGHT_BYTES_PER_LINK: Final = 16 * 1024 * 1024
"""Bytes sent on one directed link and not yet delivered; more is tail-dropped."""

MAX_UPLINK_BACKLOG_US: Final = 30_000_000
"""Transmission time queued on a node's uplink, in microseconds; more is tail-dropped."""

MAX_PAUSED_BACKLOG_EVENTS: Final = 20_000
"""Messages and timer firings a paused node accumulates until it resumes (a kernel socket
buffer and the timer wheel of a stopped process); more messages are dropped."""

MAX_MESSAGE_BYTES: Final = 8 * 1024 * 1024
"""Largest message the simulated network carries (larger sends raise ValueError)."""

MAX_LATENCY_MS: Final = 60_000
"""Largest one-way latency (base plus jitter) of one message, in milliseconds."""

# --- clocks ----------------------------------------------------------------------------------

MAX_CLOCK_DRIFT_PPM: Final = 50_000
"""Largest drift of a node's clock, in parts per million (5 %)."""

MAX_CLOCK_OFFSET_MS: Final = 3_600_000
"""Largest offset of a node's clock from virtual time, in milliseconds (an hour)."""

# --- faults and workload ---------------------------------------------------------------------

MAX_FAULT_EVENTS: Final = 10_000
"""Most scheduled fault events (starts and ends) in one fault plan."""

MAX_WORKLOAD_TXS: Final = 2_000_000
"""Most transactions one workload submits in a run."""

MAX_TX_RATE_PER_S: Final = 100_000
"""Highest transaction arrival rate of the generic workload, per second of virtual time."""

# --- checkers and statistics -----------------------------------------------------------------

MAX_LATENCY_SAMPLES: Final = 200_000
"""Commit-latency samples kept for percentiles (reservoir sampling beyond)."""

MAX_PENDING_TX_TRACKED: Final = 500_000
"""Submitted, not yet committed transactions whose submit time is remembered."""

MAX_VIOLATIONS_KEPT: Final = 100
"""Checker violations kept per run (the first one usually tells the story)."""

DOUBLE_SIGN_WINDOW_HEIGHTS: Final = 64
"""Heights below the highest decided one whose signatures the double-sign checker keeps."""

MAX_TRACE_TAIL_EVENTS: Final = 64
"""Most recent trace events kept for the failure report."""

MAX_SIGNATURE_CACHE_ENTRIES: Final = 200_000
"""Verified signatures memoised across simulated nodes (verification is a pure function)."""
