"""Counters of what the core accepted, ignored and dropped (for metrics and peer scoring)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class CoreStats:
    """Monotonic counters since the core was created. Reading them never changes behaviour."""

    inputs_handled: int = 0
    """Inputs passed to ``handle`` (rejected ones included)."""
    stale_inputs: int = 0
    """Messages or answers for an earlier height or a round no longer tracked."""
    dropped_inputs: int = 0
    """Messages dropped by a limit (future-height buffer, round window, proposal slots)."""
    duplicate_votes: int = 0
    """Votes already counted (same validator, round, type and value)."""
    equivocations: int = 0
    """Votes conflicting with one already counted (evidence was built)."""
    conflicting_proposals: int = 0
    """Further proposals of one proposer for a round it already proposed in."""
    refused_signatures: int = 0
    """Messages the sign guard refused to sign (possible only after a restart)."""
    rejected_buffered_inputs: int = 0
    """Buffered future-height inputs found invalid when their height started."""
