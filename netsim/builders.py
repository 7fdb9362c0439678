"""The node code a run can drive, by the name ``--node`` takes.

``core`` is the real chain core (``node.core.NodeCore``) behind the simulator's shell
(:mod:`netsim.core_adapter`). Tests and benchmarks may pass any other
:class:`~netsim.simulation.NodeBuilder` to :class:`~netsim.simulation.Simulation` directly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from netsim.core_adapter import CoreBuilder
from netsim.errors import ConfigError
from netsim.simulation import NodeBuilder

NODE_BUILDERS: Final[dict[str, Callable[[], NodeBuilder]]] = {"core": CoreBuilder}


def builder_for(name: str) -> NodeBuilder:
    """A fresh builder of the node code called ``name`` (ConfigError if unknown)."""
    try:
        return NODE_BUILDERS[name]()
    except KeyError:
        raise ConfigError(
            f"unknown node code {name!r}; choose from {sorted(NODE_BUILDERS)}"
        ) from None
