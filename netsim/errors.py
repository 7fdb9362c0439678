"""Typed errors of the simulator.

Two families, as in the rest of the project: :class:`ConfigError` says the *caller* asked for
something the simulator refuses (a bad option, an impossible topology); :class:`LimitExceeded`
says a run hit one of the explicit limits of :mod:`netsim.limits` (the model ran away: an
event storm, a node scheduling timers without end). A checker failing is *not* an error: it
is a result (``RunResult.violations``), because finding one is what the simulator is for.
"""

from __future__ import annotations


class NetsimError(Exception):
    """Base of every error the simulator raises on purpose."""


class ConfigError(NetsimError, ValueError):
    """An option or a configuration value is out of range or inconsistent."""


class LimitExceeded(NetsimError):
    """A run reached a hard limit (events pending, timers per node, ...); it is aborted."""
