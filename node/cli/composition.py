"""The composition root: which application modules a node started from the command line runs.

``bighealth run`` builds its node's application with ``chain_registry().build``. This is the
one place that decides the chain's modules: ``node/cli`` is the one node package meant to
import application packages built on ``node.app`` (the health contracts will plug in here),
so the rest of the node stays independent of them.
"""

from __future__ import annotations

from node.chain.application import ModuleRegistry, default_registry


def chain_registry() -> ModuleRegistry:
    """The modules of the chain this command line runs (for now: ``default_registry()``,
    accounts and the key-value module)."""
    return default_registry()
