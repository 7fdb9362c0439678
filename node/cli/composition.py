"""The composition root: which application modules a node started from the command line runs.

``bighealth run`` builds its node's application with ``application_for(genesis)``: the
health chain's modules (``health.contracts.registry.health_registry``: identities, consent,
records, audit, governance, care, referrals) when the genesis names the first identities in
``app_state["identity"]``, else the generic chain (``default_registry()``: accounts and the
key-value module, what ``bighealth testnet`` writes today). ``node/cli`` is the one node
package that imports the health domain, so the rest of the node stays independent of it.
"""

from __future__ import annotations

from health.contracts.registry import health_registry, is_health_genesis
from node.app.application import Application
from node.chain.application import ModuleRegistry, default_registry
from node.chain.genesis import Genesis


def chain_registry(genesis: Genesis) -> ModuleRegistry:
    """The modules of the chain ``genesis`` starts: health or generic (module docstring)."""
    return health_registry() if is_health_genesis(genesis) else default_registry()


def application_for(genesis: Genesis) -> Application:
    """The application of ``genesis`` (an ``AppFactory`` for ``NodeCore.open``)."""
    return chain_registry(genesis).build(genesis)
